#!/bin/bash
# Runs the official Apache Kafka command-line tools (kafka-tools 4.x, through kafka-tool.sh)
# against a broker, with the commands a Kafka quickstart uses, and checks what they print.
#
#   BOOTSTRAP=127.0.0.1:9092 test/java/official_tools_test.sh
#
# Prints one line per check and ends with 'N passed, N failed'; exits 1 when a check failed.
# Uses the topic 'topic1' (TOPIC overrides) and deletes it at the end, so it can be re-run.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BOOTSTRAP=${BOOTSTRAP:-127.0.0.1:9092}
TOPIC=${TOPIC:-topic1}
GROUP=tools-group-$$-$RANDOM
RUN=$$-$RANDOM
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pass=0 fail=0

kt() { timeout "${TOOL_TIMEOUT:-90}" "$here/kafka-tool.sh" "$@"; }

# check NAME COMMAND-STRING [LOGFILE]: runs the command with eval; on failure shows the log.
check() {
  if eval "$2"; then
    echo "ok   $1"; pass=$((pass + 1))
  else
    echo "FAIL $1"; fail=$((fail + 1))
    if [ -n "${3:-}" ] && [ -s "$3" ]; then
      grep -v '^\s*at ' "$3" | head -n 8 | sed 's/^/       | /'
    fi
  fi
}

# Resolve the jars before timing anything (a no-op once cached).
"$here/kafka-tool.sh" kafka-topics --version >"$out/version" 2>&1 || { cat "$out/version"; echo "0 passed, 1 failed"; exit 1; }
echo "# kafka-tools $(head -n1 "$out/version") against $BOOTSTRAP"

# A leftover from an earlier, interrupted run would make --create fail.
if kt kafka-topics --list --bootstrap-server "$BOOTSTRAP" 2>/dev/null | grep -qx "$TOPIC"; then
  kt kafka-topics --delete --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" >/dev/null 2>&1
  sleep 2
fi

kt kafka-topics --create --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" --replication-factor 1 --partitions 1 >"$out/create" 2>&1
check "kafka-topics --create prints 'Created topic $TOPIC.'" 'grep -qx "Created topic $TOPIC." "$out/create"' "$out/create"

kt kafka-topics --describe --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" >"$out/describe" 2>&1
check "kafka-topics --describe shows Topic, Partition 0, Leader, Replicas, Isr" \
  'grep -q "Topic: $TOPIC" "$out/describe" && grep "Partition: 0" "$out/describe" | grep "Leader:" | grep "Replicas:" | grep -q "Isr:"' "$out/describe"

# Kafka 4.x's kafka-topics describes with DescribeTopicPartitions (API 75); a broker without it
# makes the tool fall back to Metadata and print "Elr: N/A  LastKnownElr: N/A". Kafka 4.4 prints
# both empty for a partition whose ISR is complete.
check "kafka-topics --describe prints empty Elr and LastKnownElr, as Kafka 4.4 does (DescribeTopicPartitions)" \
  'grep "Partition: 0" "$out/describe" | grep -q "$(printf '\''\tElr: \tLastKnownElr: $'\'')"' "$out/describe"

kt kafka-topics --list --bootstrap-server "$BOOTSTRAP" >"$out/list" 2>&1
check "kafka-topics --list lists $TOPIC" 'grep -qx "$TOPIC" "$out/list"' "$out/list"

printf 'first %s\nsecond %s\nthird %s\n' "$RUN" "$RUN" "$RUN" >"$out/sent"
kt kafka-console-producer --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" <"$out/sent" >"$out/produce" 2>&1
rc=$?
check "kafka-console-producer sends 3 lines from stdin (exit $rc)" '[ $rc = 0 ]' "$out/produce"

kt kafka-console-consumer --topic "$TOPIC" --from-beginning --max-messages 3 --bootstrap-server "$BOOTSTRAP" >"$out/consumed" 2>"$out/consume.err"
check "kafka-console-consumer --from-beginning --max-messages 3 prints the 3 lines in order" \
  'cmp -s "$out/sent" "$out/consumed"' "$out/consumed"
check "kafka-console-consumer reports 'Processed a total of 3 messages'" \
  'grep -q "Processed a total of 3 messages" "$out/consume.err"' "$out/consume.err"

kt kafka-console-consumer --topic "$TOPIC" --from-beginning --max-messages 3 --group "$GROUP" \
  --formatter-property print.key=true --bootstrap-server "$BOOTSTRAP" >"$out/consumed-group" 2>"$out/consume-group.err"
check "kafka-console-consumer --group $GROUP reads the 3 lines (null keys)" \
  '[ "$(cut -f2- "$out/consumed-group")" = "$(cat "$out/sent")" ] && [ "$(cut -f1 "$out/consumed-group" | sort -u)" = null ]' "$out/consume-group.err"

kt kafka-consumer-groups --list --bootstrap-server "$BOOTSTRAP" >"$out/groups" 2>&1
check "kafka-consumer-groups --list lists $GROUP" 'grep -qx "$GROUP" "$out/groups"' "$out/groups"

kt kafka-consumer-groups --describe --group "$GROUP" --bootstrap-server "$BOOTSTRAP" >"$out/group" 2>&1
# GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
check "kafka-consumer-groups --describe shows offset 3, log end 3, lag 0 on $TOPIC-0" \
  'awk -v g="$GROUP" -v t="$TOPIC" '\''$1==g && $2==t && $3==0 && $4==3 && $5==3 && $6==0 {ok=1} END {exit !ok}'\'' "$out/group"' "$out/group"

kt kafka-features --bootstrap-server "$BOOTSTRAP" describe >"$out/features" 2>&1
check "kafka-features describe: metadata.version 3.3-IV3..4.1-IV1 finalized at 4.1-IV1, kraft/group.version at 0, transaction.version 0..2 finalized at 2" \
  'grep -Eq "^Feature: metadata.version +SupportedMinVersion: 3.3-IV3 +SupportedMaxVersion: 4.1-IV1 +FinalizedVersionLevel: 4.1-IV1 +Epoch: [0-9]+$" "$out/features" && [ "$(grep -Ec "^Feature: (group|kraft).version +SupportedMinVersion: 0 +SupportedMaxVersion: 0 +FinalizedVersionLevel: 0 " "$out/features")" = 2 ] && grep -Eq "^Feature: transaction.version +SupportedMinVersion: 0 +SupportedMaxVersion: 2 +FinalizedVersionLevel: 2 " "$out/features"' "$out/features"
kt kafka-features --bootstrap-server "$BOOTSTRAP" downgrade --feature metadata.version=25 --dry-run >"$out/features-dry" 2>&1
check "kafka-features downgrade --dry-run: 'metadata.version can be downgraded to 25.'" 'grep -qx "metadata.version can be downgraded to 25." "$out/features-dry"' "$out/features-dry"

kt kafka-topics --delete --topic "$TOPIC" --bootstrap-server "$BOOTSTRAP" >"$out/delete" 2>&1
rc=$?
check "kafka-topics --delete exits 0" '[ $rc = 0 ]' "$out/delete"

gone=no
for _ in 1 2 3 4 5; do
  kt kafka-topics --list --bootstrap-server "$BOOTSTRAP" >"$out/list2" 2>&1
  if ! grep -qx "$TOPIC" "$out/list2"; then gone=yes; break; fi
  sleep 1
done
check "kafka-topics --list no longer lists $TOPIC after --delete" '[ $gone = yes ]' "$out/list2"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
