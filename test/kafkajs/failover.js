// kafkajs 2.2.4 through a partition leader's failure, driven by test/integration's cluster tests
// (the protocol of testdata/confluent.py failover):
//
//   BOOTSTRAP=host:port,host:port TOPIC=t GROUP=g N=300 node failover.js
//
// A member of consumer group GROUP subscribes to TOPIC from the beginning; an idempotent acks=-1
// producer sends N keyed records and waits for them, prints "PAUSE" and reads one line from stdin
// (the test stops a partition leader meanwhile), then sends N more. The consumer reads until it has
// seen every acknowledged value (or 40 s pass), then leaves the group, committing. Ends with one
// JSON line: {"acked": [values], "errors": [send errors], "consumed": [values, in read order]}.
const readline = require('readline')
const { Kafka, logLevel } = require('kafkajs')

const brokers = (process.env.BOOTSTRAP || '127.0.0.1:9092').split(',')
const topic = process.env.TOPIC
const group = process.env.GROUP
const n = Number(process.env.N || 300)
const kafka = new Kafka({
  clientId: 'moldau-kafkajs-failover',
  brokers,
  logLevel: logLevel.NOTHING,
  // Reconnect attempts to a killed broker fail fast; retries outlast an election.
  connectionTimeout: 1000,
  retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 30 }
})

// waitFor polls cond every 50 ms until it holds or timeoutMs passes; returns whether it held.
async function waitFor (cond, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return true
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const lines = readline.createInterface({ input: process.stdin })
const nextLine = () => new Promise(resolve => lines.once('line', resolve))

async function main () {
  const acked = []
  const errors = []
  const consumed = []
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 })
  // Group events go to stderr, for a failing test's log.
  for (const ev of ['GROUP_JOIN', 'CRASH', 'REBALANCING']) {
    consumer.on(consumer.events[ev], e => {
      const err = e.payload.error
      const cause = err ? ` error=${err.name}: ${err.message} cause=${err.originalError ? `${err.originalError.name}: ${err.originalError.message}` : '-'}` : ''
      console.error(`${new Date().toISOString()} ${ev} ${JSON.stringify(e.payload)}${cause}`)
    })
  }
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { consumed.push(message.value.toString()) } })

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const send = async first => {
    for (let i = first; i < first + n; i += 50) {
      const messages = Array.from({ length: Math.min(50, first + n - i) }, (_, j) => ({
        key: `k${i + j}`, value: `v${String(i + j).padStart(6, '0')}`
      }))
      try {
        await producer.send({ topic, acks: -1, messages })
        acked.push(...messages.map(m => m.value))
      } catch (e) {
        errors.push(String((e && e.message) || e))
      }
    }
  }
  await send(0)
  console.log('PAUSE')
  await nextLine()
  await send(n)
  await producer.disconnect()

  await waitFor(() => { const got = new Set(consumed); return acked.every(v => got.has(v)) }, 40000)
  await consumer.disconnect()
  lines.close()
  console.log(JSON.stringify({ acked, errors, consumed }))
}

main().then(() => process.exit(0), e => {
  console.error(String((e && e.stack) || e))
  process.exit(1)
})
