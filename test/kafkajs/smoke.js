// Moldau driven by kafkajs 2.2.4, a pure JavaScript client that shares no code with librdkafka,
// the Java client or franz-go. Run by test/integration/kafkajs_test.go against the built binary:
//
//   BOOTSTRAP=127.0.0.1:9092 node smoke.js
//
// Prints one line per check and ends with 'N passed, N failed'; exits 1 when a check failed.
// Every wait is for a condition with a deadline, never a fixed sleep.
const { Kafka, logLevel } = require('kafkajs')

const bootstrap = process.env.BOOTSTRAP || '127.0.0.1:9092'
const kafka = new Kafka({ clientId: 'moldau-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING })
const run = Math.random().toString(16).slice(2, 10)
const topic = `kafkajs-${run}`
const group = `kafkajs-g-${run}`
const total = 2000

let passed = 0
let failed = 0
function check (name, ok, detail = '') {
  ok ? passed++ : failed++
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`)
}

// waitFor polls cond every 50 ms until it holds or timeoutMs passes; returns whether it held.
async function waitFor (cond, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return true
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true })
  check('createTopics creates a 4-partition topic', created === true)
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  check('fetchTopicMetadata lists 4 partitions with leaders',
    meta.topics[0].partitions.length === 4 && meta.topics[0].partitions.every(p => p.leader >= 0))

  // Two members of one group. Each reports its assignment on every join; the test starts
  // producing once both hold partitions and the assignments cover all four.
  const seen = [new Map(), new Map()]
  const assigned = [[], []]
  const consumers = [0, 1].map(() => kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 }))
  for (const [i, c] of consumers.entries()) {
    c.on(c.events.GROUP_JOIN, e => { assigned[i] = e.payload.memberAssignment[topic] || [] })
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => { seen[i].set(`${partition}/${message.offset}`, message.key.toString()) } })
  }
  const settled = await waitFor(() => assigned[0].length > 0 && assigned[1].length > 0 &&
    new Set([...assigned[0], ...assigned[1]]).size === 4, 30000)
  check('two group members split the 4 partitions', settled, `m0=[${assigned[0]}] m1=[${assigned[1]}]`)

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  let acked = 0
  for (let i = 0; i < total; i += 200) {
    const messages = Array.from({ length: 200 }, (_, j) => ({ key: `k${i + j}`, value: `v${i + j}` }))
    const res = await producer.send({ topic, acks: -1, messages })
    acked += res.length > 0 ? 200 : 0
  }
  check(`idempotent producer sends ${total} keyed records with acks=-1`, acked === total)

  const received = () => seen[0].size + seen[1].size
  const all = await waitFor(() => received() >= total, 30000)
  const keys = new Set([...seen[0].values(), ...seen[1].values()])
  check(`the members read ${total} records between them, none twice`, all && received() === total && keys.size === total,
    `m0=${seen[0].size} m1=${seen[1].size} distinct keys=${keys.size}`)
  const parts = i => new Set([...seen[i].keys()].map(k => k.split('/')[0]))
  const p0 = parts(0)
  const p1 = parts(1)
  check('each member read only its own partitions', p0.size > 0 && p1.size > 0 && [...p0].every(p => !p1.has(p)),
    `m0=[${[...p0]}] m1=[${[...p1]}]`)
  for (const c of consumers) await c.disconnect()

  // kafkajs commits what it processed when it leaves the group.
  let committed = -1
  const commits = await waitFor(async () => {
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    committed = offsets[0].partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0)
    return committed === total
  }, 15000)
  check(`the group's committed offsets add up to ${total}`, commits, `sum=${committed}`)
  const described = await admin.describeGroups([group])
  check('describeGroups answers for the group', described.groups.length === 1 && described.groups[0].errorCode === 0,
    JSON.stringify(described.groups.map(g => ({ state: g.state, errorCode: g.errorCode }))))

  // Another group with seek: partition 0 from its second record reads the rest of partition 0.
  const p0offsets = await admin.fetchTopicOffsets(topic)
  const end0 = Number(p0offsets.find(p => p.partition === 0).high)
  const reader = kafka.consumer({ groupId: `${group}-seek` })
  const fromSeek = []
  await reader.connect()
  await reader.subscribe({ topic, fromBeginning: true })
  let seeked = false
  reader.on(reader.events.GROUP_JOIN, () => { if (!seeked) { seeked = true; reader.seek({ topic, partition: 0, offset: '1' }) } })
  await reader.run({ eachMessage: async ({ partition, message }) => { if (partition === 0) fromSeek.push(Number(message.offset)) } })
  const seekDone = await waitFor(() => fromSeek.length >= end0 - 1, 30000)
  check('seek to offset 1 of partition 0 replays from there', seekDone && fromSeek[0] === 1 && fromSeek.length === end0 - 1,
    `first=${fromSeek[0]} n=${fromSeek.length} end=${end0}`)
  await reader.disconnect()

  await producer.disconnect()
  await admin.deleteTopics({ topics: [topic] })
  const gone = await waitFor(async () => !(await admin.listTopics()).includes(topic), 10000)
  check('deleteTopics removes the topic', gone)
  await admin.disconnect()
}

main().catch(e => check('kafkajs run', false, String((e && e.stack) || e))).finally(() => {
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed || !passed ? 1 : 0)
})
