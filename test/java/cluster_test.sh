#!/bin/bash
# Kafka's own tools (kafka-tools 4.x through kafka-tool.sh) and the Java client (ClusterFailoverTest,
# kafka-clients 4.x) against a three-node Moldau cluster this script starts (test/lib.sh
# start_cluster: bin/moldau, built if missing):
#
#   test/java/cluster_test.sh
#
# kafka-topics --create --partitions 6 --replication-factor 3 and --describe (Leader, Replicas, Isr,
# Elr, LastKnownElr per partition, as Kafka 4.4 prints them for a fresh topic: each node leads two
# partitions, the leader is the first replica, Isr = Replicas); console producer and consumer
# through the cluster; the leader of partition 0 stopped (SIGTERM): --describe shows new leaders
# and the node out of every Isr, --under-replicated-partitions lists all six, producer and a
# consumer group still work; the node started again rejoins every Isr; then the Java client
# produces with acks=all while another leader is stopped. Operating the cluster with Kafka's own
# tools: kafka-leader-election --election-type PREFERRED --all-topic-partitions puts the
# restarted node's leaderships back (and answers 'Valid replica already elected' the second
# time); kafka-reassign-partitions --execute --throttle moves a topic from nodes 1,2 to 2,3 and
# --verify reports it completed and clears the throttles; the moved records read back.
# kafka-configs sets the replication throttle rate of one broker and of the cluster default.
#
# Prints one line per check and ends with 'N passed, N failed'; exits 1 when a check failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../lib.sh"
TOPIC=t
GROUP=cluster-tools-$$-$RANDOM
out=$(mktemp -d)
pass=0 fail=0
CLUSTER_PROPS="broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
replica.lag.time.max.ms=4000
offsets.topic.num.partitions=3"

finish() {
  local rc=$?
  cleanup_cluster
  rm -rf "$out"
  return $rc
}
trap finish EXIT

kt() { timeout "${TOOL_TIMEOUT:-90}" "$here/kafka-tool.sh" "$@"; }

# check NAME COMMAND-STRING [LOGFILE]: runs the command with eval; on failure shows the log.
check() {
  if eval "$2"; then
    echo "ok   $1"; pass=$((pass + 1))
  else
    echo "FAIL $1"; fail=$((fail + 1))
    if [ -n "${3:-}" ] && [ -s "$3" ]; then
      grep -v '^\s*at ' "$3" | head -n 12 | sed 's/^/       | /'
    fi
  fi
}

# describe FILE: kafka-topics --describe of TOPIC into FILE.
describe() { kt kafka-topics --describe --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" >"$1" 2>&1; }

# partition_lines FILE: the partition lines of a describe output, as "P LEADER REPLICAS ISR ELR LASTKNOWNELR"
# (empty lists as -); nothing for a line not in Kafka's format.
partition_lines() {
  local re=$'^\tTopic: '"$TOPIC"$'\tPartition: ([0-9]+)\tLeader: ([0-9]+|none)\tReplicas: ([0-9,]*)\tIsr: ([0-9,]*)\tElr: ([0-9,]*)\tLastKnownElr: ([0-9,]*)$'
  local line
  while IFS= read -r line; do
    if [[ $line =~ $re ]]; then
      echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]:--} ${BASH_REMATCH[4]:--} ${BASH_REMATCH[5]:--} ${BASH_REMATCH[6]:--}"
    fi
  done <"$1"
}

# fresh_layout FILE: six partitions in Kafka's format, leader = first replica, three distinct
# replicas, Isr = Replicas, empty Elr and LastKnownElr, each node leading two partitions.
fresh_layout() {
  local p l r i e k n=0
  declare -A leads=()
  while read -r p l r i e k; do
    n=$((n + 1))
    [ "$l" = "${r%%,*}" ] || return 1
    [ "$(tr , '\n' <<<"$r" | sort -u | tr '\n' ' ')" = "1 2 3 " ] || return 1
    [ "$i" = "$r" ] && [ "$e" = - ] && [ "$k" = - ] || return 1
    leads[$l]=$((${leads[$l]:-0} + 1))
  done < <(partition_lines "$1")
  [ "$n" = 6 ] && [ "$(partition_lines "$1" | cut -d' ' -f1 | tr '\n' ' ')" = "0 1 2 3 4 5 " ] &&
    [ "${leads[1]:-0}" = 2 ] && [ "${leads[2]:-0}" = 2 ] && [ "${leads[3]:-0}" = 2 ]
}

# preferred_leaders FILE: six partitions, each led by its first replica with all three in the Isr
# (in any order: a replica that rejoined is appended), each node leading two.
preferred_leaders() {
  local p l r i e k
  declare -A leads=()
  full_isr "$1" || return 1
  while read -r p l r i e k; do
    [ "$l" = "${r%%,*}" ] || return 1
    leads[$l]=$((${leads[$l]:-0} + 1))
  done < <(partition_lines "$1")
  [ "${leads[1]:-0}" = 2 ] && [ "${leads[2]:-0}" = 2 ] && [ "${leads[3]:-0}" = 2 ]
}

# without_node FILE BEFORE ID: every partition of FILE is led by a node other than ID, keeps the
# Replicas of BEFORE, and its Isr is those Replicas without ID (in their order); Elr empty (two
# in-sync replicas, min.insync.replicas=2).
without_node() {
  local id=$3 p l r i e k want
  [ "$(partition_lines "$1" | wc -l)" = 6 ] || return 1
  while read -r p l r i e k; do
    want=$(partition_lines "$2" | awk -v p="$p" '$1 == p {print $3}')
    [ "$r" = "$want" ] || return 1
    [ "$l" != none ] && [ "$l" != "$id" ] || return 1
    [ "$i" = "$(tr , '\n' <<<"$r" | grep -vx "$id" | paste -sd,)" ] || return 1
    [ "$e" = - ] || return 1
  done < <(partition_lines "$1")
}

# full_isr FILE: six partitions, each with a leader and Isr holding all three replicas.
full_isr() {
  local p l r i e k
  [ "$(partition_lines "$1" | wc -l)" = 6 ] || return 1
  while read -r p l r i e k; do
    [ "$l" != none ] && [ "$(tr , '\n' <<<"$i" | sort | paste -sd,)" = 1,2,3 ] || return 1
  done < <(partition_lines "$1")
}

# Tool output goes to stdout; the Java clients' WARN lines (e.g. "Connection to node -3 ... could
# not be established" for a stopped node in --bootstrap-server, as against Kafka) to stderr, which
# describe keeps in FILE (partition_lines skips them) and the other checks keep apart.

# wait_describe FILE SECONDS CONDITION...: describes into FILE until CONDITION FILE ... holds.
wait_describe() {
  local file=$1 deadline=$((SECONDS + $2))
  shift 2
  while :; do
    describe "$file"
    "$1" "$file" "${@:2}" && return 0
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

"$here/kafka-tool.sh" kafka-topics --version >"$out/version" 2>&1 || { cat "$out/version"; echo "0 passed, 1 failed"; exit 1; }
build_broker || { echo "0 passed, 1 failed"; exit 1; }
start_cluster 3 || { echo "0 passed, 1 failed"; exit 1; }
echo "# kafka-tools $(sed "s/\x1b\[[0-9;]*m//g" "$out/version" | tail -n1) against a 3-node cluster at $BOOTSTRAP"

kt kafka-topics --create --topic "$TOPIC" --partitions 6 --replication-factor 3 --config min.insync.replicas=2 \
  --bootstrap-server "$BOOTSTRAP" >"$out/create" 2>&1
check "kafka-topics --create --partitions 6 --replication-factor 3 prints 'Created topic $TOPIC.'" \
  '[ "$(cat "$out/create")" = "Created topic $TOPIC." ]' "$out/create"

kt kafka-metadata-quorum --bootstrap-server "$BOOTSTRAP" describe --status >"$out/quorum" 2>"$out/quorum.err"
check "kafka-metadata-quorum describe --status through a broker: a leader among the three voters, no observers" \
  'grep -Eq "^LeaderId: +[123]$" "$out/quorum" && grep -Eq "^CurrentVoters: +\[{\"id\": 1}, {\"id\": 2}, {\"id\": 3}\]" "$out/quorum" && grep -Eq "^CurrentObservers: +\[\]" "$out/quorum"' "$out/quorum"

kt kafka-features --bootstrap-server "$BOOTSTRAP" describe >"$out/features" 2>"$out/features.err"
check "kafka-features describe through a broker: metadata.version finalized at 4.1-IV1, the four features listed" \
  'grep -Eq "^Feature: metadata.version +SupportedMinVersion: 3.3-IV3 +SupportedMaxVersion: 4.1-IV1 +FinalizedVersionLevel: 4.1-IV1 +Epoch: [0-9]+$" "$out/features" && [ "$(grep -c "^Feature: " "$out/features")" = 4 ]' "$out/features"

# Replication quota configs (KIP-73) with kafka-configs: broker 2's own rate set through the
# bootstrap node (Kafka's admin client sends a broker-N resource to broker N), the cluster
# default, broker 2 described with its value over the default (Kafka's sources and synonyms),
# both deleted again (the tool deletes only what the describe lists).
rate_syn() { echo "DYNAMIC_BROKER_CONFIG:leader.replication.throttled.rate=1048576, DYNAMIC_DEFAULT_BROKER_CONFIG:leader.replication.throttled.rate=2097152, DEFAULT_CONFIG:leader.replication.throttled.rate=9223372036854775807"; }
kt kafka-configs --bootstrap-server "$BOOTSTRAP" --entity-type brokers --entity-name 2 --alter \
  --add-config leader.replication.throttled.rate=1048576 >"$out/cfg.broker" 2>"$out/cfg.broker.err"
check "kafka-configs --entity-type brokers --entity-name 2 --alter --add-config leader.replication.throttled.rate=1048576 prints 'Completed updating config for broker 2.'" \
  '[ "$(cat "$out/cfg.broker")" = "Completed updating config for broker 2." ]' "$out/cfg.broker.err"
kt kafka-configs --bootstrap-server "$BOOTSTRAP" --entity-type brokers --entity-default --alter \
  --add-config leader.replication.throttled.rate=2097152,follower.replication.throttled.rate=2097152 >"$out/cfg.default" 2>"$out/cfg.default.err"
check "kafka-configs --entity-default --alter --add-config leader/follower.replication.throttled.rate=2097152 prints 'Completed updating default config for brokers in the cluster.'" \
  '[ "$(cat "$out/cfg.default")" = "Completed updating default config for brokers in the cluster." ]' "$out/cfg.default.err"
kt kafka-configs --bootstrap-server "$BOOTSTRAP" --entity-type brokers --entity-name 2 --describe >"$out/cfg.describe" 2>"$out/cfg.describe.err"
check "kafka-configs --entity-name 2 --describe: 'Dynamic configs for broker 2 are:' and the broker's rate over the default, synonyms in Kafka's order" \
  '[ "$(cat "$out/cfg.describe")" = "Dynamic configs for broker 2 are:
  leader.replication.throttled.rate=1048576 sensitive=false synonyms={$(rate_syn)}" ]' "$out/cfg.describe"
kt kafka-configs --bootstrap-server "$BOOTSTRAP" --entity-type brokers --entity-name 2 --alter \
  --delete-config leader.replication.throttled.rate >"$out/cfg.delete" 2>"$out/cfg.delete.err"
kt kafka-configs --bootstrap-server "$BOOTSTRAP" --entity-type brokers --entity-default --alter \
  --delete-config leader.replication.throttled.rate,follower.replication.throttled.rate >>"$out/cfg.delete" 2>>"$out/cfg.delete.err"
check "kafka-configs --delete-config of broker 2's rate and of the defaults" \
  '[ "$(cat "$out/cfg.delete")" = "Completed updating config for broker 2.
Completed updating default config for brokers in the cluster." ]' "$out/cfg.delete.err"

wait_describe "$out/describe" 20 full_isr
check "kafka-topics --describe: the topic line, as Kafka prints it (TopicId, PartitionCount: 6, ReplicationFactor: 3, Configs: min.insync.replicas=2)" \
  '[[ "$(head -n1 "$out/describe")" =~ ^Topic:\ $TOPIC$'\''\t'\''TopicId:\ [A-Za-z0-9_-]{22}$'\''\t'\''PartitionCount:\ 6$'\''\t'\''ReplicationFactor:\ 3$'\''\t'\''Configs:\ min\.insync\.replicas=2$ ]]' "$out/describe"
check "kafka-topics --describe: 6 partition lines 'Leader: L  Replicas: a,b,c  Isr: a,b,c  Elr:   LastKnownElr: ', leader = first replica, each node leads 2" \
  'fresh_layout "$out/describe"' "$out/describe"
cp "$out/describe" "$out/describe.before"
sed "s/^/  describe| /" "$out/describe"

for i in $(seq 1 60); do echo "key-$i:value-$i"; done >"$out/sent"
kt kafka-console-producer --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" \
  --property parse.key=true --property key.separator=: <"$out/sent" >"$out/produce" 2>&1
rc=$?
check "kafka-console-producer sends 60 keyed lines through the cluster (exit $rc)" '[ $rc = 0 ]' "$out/produce"

kt kafka-console-consumer --topic "$TOPIC" --from-beginning --max-messages 60 --formatter-property print.key=true \
  --bootstrap-server "$BOOTSTRAP" >"$out/consumed" 2>"$out/consume.err"
check "kafka-console-consumer --from-beginning --max-messages 60 reads the 60 records, keys included" \
  '[ "$(sort "$out/consumed")" = "$(tr : '\''\t'\'' <"$out/sent" | sort)" ]' "$out/consume.err"

leader=$(partition_lines "$out/describe.before" | awk '$1 == 0 {print $2}')
leader=${leader:-1} # the describe checks above failed already
stop_node "$leader"
rc=$?
check "node $leader (leader of $TOPIC-0) stops cleanly on SIGTERM (controlled shutdown, exit $rc)" '[ $rc = 0 ]'

wait_describe "$out/describe.stopped" 20 without_node "$out/describe.before" "$leader"
sed "s/^/  describe| /" "$out/describe.stopped"
check "kafka-topics --describe with node $leader stopped: a running leader for each partition, Replicas unchanged, Isr without $leader, Elr empty" \
  'without_node "$out/describe.stopped" "$out/describe.before" "$leader"' "$out/describe.stopped"

kt kafka-topics --describe --under-replicated-partitions --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" >"$out/urp" 2>"$out/urp.err"
check "kafka-topics --describe --under-replicated-partitions lists all 6 partitions (each has a replica on node $leader), no topic line" \
  '[ "$(partition_lines "$out/urp" | wc -l)" = 6 ] && [ "$(wc -l <"$out/urp")" = 6 ]' "$out/urp"
kt kafka-topics --describe --unavailable-partitions --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" >"$out/unavailable" 2>"$out/unavailable.err"
rc=$?
check "kafka-topics --describe --unavailable-partitions lists none (exit $rc)" '[ $rc = 0 ] && [ ! -s "$out/unavailable" ]' "$out/unavailable"

for i in $(seq 61 90); do echo "key-$i:value-$i"; done >"$out/sent2"
kt kafka-console-producer --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" \
  --property parse.key=true --property key.separator=: <"$out/sent2" >"$out/produce2" 2>&1
rc=$?
check "kafka-console-producer (acks=all) sends 30 more with node $leader stopped (exit $rc)" '[ $rc = 0 ]' "$out/produce2"

kt kafka-console-consumer --topic "$TOPIC" --from-beginning --max-messages 90 --group "$GROUP" --formatter-property print.key=true \
  --bootstrap-server "$BOOTSTRAP" >"$out/consumed2" 2>"$out/consume2.err"
check "kafka-console-consumer --group reads all 90 records with node $leader stopped" \
  '[ "$(sort "$out/consumed2")" = "$(cat "$out/sent" "$out/sent2" | tr : '\''\t'\'' | sort)" ]' "$out/consume2.err"

start_node "$leader"
rc=$?
check "node $leader starts again on its data" '[ $rc = 0 ]'
wait_describe "$out/describe.back" 30 full_isr
check "kafka-topics --describe: node $leader is back in every Isr" 'full_isr "$out/describe.back"' "$out/describe.back"

# Leadership stays where failover put it until a preferred election moves it back (the
# automatic rebalance runs every leader.imbalance.check.interval.seconds, 300 s by default).
kt kafka-leader-election --bootstrap-server "$BOOTSTRAP" --election-type PREFERRED --all-topic-partitions >"$out/elect" 2>"$out/elect.err"
rc=$?
sed "s/^/  elect| /" "$out/elect"
check "kafka-leader-election --election-type PREFERRED --all-topic-partitions: 'Successfully completed leader election (PREFERRED) for partitions $TOPIC-…' (exit $rc)" \
  '[ $rc = 0 ] && grep -Eq "^Successfully completed leader election \(PREFERRED\) for partitions .*$TOPIC-[0-9]" "$out/elect"' "$out/elect.err"
wait_describe "$out/describe.elected" 20 preferred_leaders
check "kafka-topics --describe after the preferred election: the first replica leads every partition again, each node leads 2" \
  'preferred_leaders "$out/describe.elected"' "$out/describe.elected"
kt kafka-leader-election --bootstrap-server "$BOOTSTRAP" --election-type PREFERRED --topic "$TOPIC" --partition 0 >"$out/elect2" 2>"$out/elect2.err"
rc=$?
check "kafka-leader-election for $TOPIC-0 again: 'Valid replica already elected for partitions $TOPIC-0' (exit $rc)" \
  '[ $rc = 0 ] && grep -q "^Valid replica already elected for partitions $TOPIC-0$" "$out/elect2"' "$out/elect2.err"

# kafka-reassign-partitions: move a two-replica topic from nodes 1,2 to nodes 2,3 with a throttle.
MOVED=moved
kt kafka-topics --create --topic "$MOVED" --replica-assignment 1:2 --bootstrap-server "$BOOTSTRAP" >"$out/create.moved" 2>&1
for i in $(seq 1 200); do echo "m-$i"; done >"$out/sent.moved"
kt kafka-console-producer --topic "$MOVED" --bootstrap-server "$BOOTSTRAP" <"$out/sent.moved" >"$out/produce.moved" 2>&1
printf '{"version":1,"partitions":[{"topic":"%s","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}\n' "$MOVED" >"$out/move.json"
kt kafka-reassign-partitions --bootstrap-server "$BOOTSTRAP" --reassignment-json-file "$out/move.json" --execute --throttle 50000000 >"$out/execute" 2>"$out/execute.err"
rc=$?
sed "s/^/  reassign| /" "$out/execute"
check "kafka-reassign-partitions --execute --throttle: 'Successfully started partition reassignment for $MOVED-0' (exit $rc)" \
  '[ $rc = 0 ] && grep -q "^Successfully started partition reassignment for $MOVED-0$" "$out/execute"' "$out/execute.err"
verify_done() {
  kt kafka-reassign-partitions --bootstrap-server "$BOOTSTRAP" --reassignment-json-file "$out/move.json" --verify >"$out/verify" 2>"$out/verify.err"
  grep -q "^Reassignment of partition $MOVED-0 is completed.$" "$out/verify"
}
deadline=$((SECONDS + 60))
until verify_done || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
sed "s/^/  verify| /" "$out/verify"
check "kafka-reassign-partitions --verify: 'Reassignment of partition $MOVED-0 is completed.', then the throttle is removed" \
  'grep -q "^Reassignment of partition $MOVED-0 is completed.$" "$out/verify" && grep -q "^Clearing broker-level throttles on brokers" "$out/verify"' "$out/verify.err"
kt kafka-topics --describe --topic "$MOVED" --bootstrap-server "$BOOTSTRAP" >"$out/describe.moved" 2>&1
check "kafka-topics --describe $MOVED: Replicas: 2,3 and Isr of both" \
  'grep -Eq $'\''\tPartition: 0\tLeader: [23]\tReplicas: 2,3\tIsr: (2,3|3,2)\t'\'' "$out/describe.moved"' "$out/describe.moved"
kt kafka-console-consumer --topic "$MOVED" --from-beginning --max-messages 200 --bootstrap-server "$BOOTSTRAP" >"$out/consumed.moved" 2>"$out/consume.moved.err"
check "kafka-console-consumer reads the 200 records of $MOVED from its new replicas" \
  '[ "$(cat "$out/consumed.moved")" = "$(cat "$out/sent.moved")" ]' "$out/consume.moved.err"


# The Java client: ClusterFailoverTest stops a leader itself, through its pid file.
stop_cmd="pid=\$(cat $CLUSTER_DIR/node-%d/pid); kill -TERM \$pid; while kill -0 \$pid 2>/dev/null; do sleep 0.1; done"
(cd "$here" && timeout 300 mvn -B -Dstyle.color=never --no-transfer-progress surefire:test -Dtest=ClusterFailoverTest \
  -Dbootstrap="$BOOTSTRAP" -Dcluster.stopCommand="$stop_cmd") >"$out/java" 2>&1
rc=$?
sed 's/\x1b\[[0-9;]*m//g' "$out/java" | grep -E '^stopped node|Tests run:' | sed 's/^/  java| /'
check "Java client (ClusterFailoverTest): acks=all idempotent producer keeps going while the leader is stopped, every record read once" \
  '[ $rc = 0 ]' "$out/java"
for id in 1 2 3; do
  if ! node_running "$id"; then reap_node "$id"; start_node "$id" || true; fi
done
wait_describe "$out/describe.end" 30 full_isr
check "every node back in every Isr of $TOPIC after the Java client's stop" 'full_isr "$out/describe.end"' "$out/describe.end"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
