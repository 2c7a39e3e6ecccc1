#!/bin/bash
# Runs the Java-side compatibility suites against a broker: the one at BOOTSTRAP if set, else a
# fresh one started by test/lib.sh (BROKER_IMPL=kfake for franz-go's fake broker):
#   1. test/java/official_tools_test.sh   the official kafka-topics / console producer and
#                                          consumer / consumer-groups tools (kafka-tools 4.x)
#   2. test/java: mvn test                ClientCompatTest (kafka-clients 4.x, JUnit 5)
#   3. examples/spring-kafka              Spring Boot + spring-kafka send/receive
#   4. test/java: mvn test                TransactionsTest (kafka-clients 4.x transactions with
#                                          TV2, sendOffsetsToTransaction with a group, fencing)
#   5. examples/spring-kafka-transactions Spring Boot 4 + spring-kafka KafkaTransactionManager
#                                          (TXN=0 or BROKER_IMPL=kfake leaves 4 and 5 out)
#   6. test/java/cluster_test.sh          the same tools and the Java client (ClusterFailoverTest)
#                                          against a 3-node Moldau cluster it starts itself, with a
#                                          leader stopped (not with BROKER_IMPL=kfake, one broker;
#                                          CLUSTER=0 leaves it out)
# Maven work that needs no broker (resolving jars, compiling, packaging) runs first, once.
# Ends with 'N passed, N failed'; exits 1 when any suite failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
MVN=(mvn -B -q -Dstyle.color=never --no-transfer-progress)
spring_dir=$REPO_ROOT/examples/spring-kafka
spring_jar=$spring_dir/target/spring-kafka-example.jar
spring_tx_dir=$REPO_ROOT/examples/spring-kafka-transactions
spring_tx_jar=$spring_tx_dir/target/spring-kafka-transactions-example.jar
txn=${TXN:-1}
{ [ "$txn" = 0 ] || [ "$BROKER_IMPL" = kfake ]; } && txn=

# quietly RUN...: runs a command with its output in a log, shown only when it fails.
quietly() {
  local out rc
  out=$(mktemp)
  "$@" >"$out" 2>&1
  rc=$?
  [ "$rc" = 0 ] || sed 's/\x1b\[[0-9;]*m//g' "$out"
  rm -f "$out"
  return $rc
}

prepare() {
  log "preparing Maven projects (jars, test classes, spring example)"
  quietly "$here/java/kafka-tool.sh" kafka-topics --version || return 1
  (cd "$here/java" && quietly "${MVN[@]}" test-compile) || return 1
  if [ ! -f "$spring_jar" ] || [ -n "$(find "$spring_dir/pom.xml" "$spring_dir/src" -newer "$spring_jar" -print -quit)" ]; then
    (cd "$spring_dir" && quietly "${MVN[@]}" package -DskipTests) || return 1
  fi
  if [ -n "$txn" ] && { [ ! -f "$spring_tx_jar" ] || [ -n "$(find "$spring_tx_dir/pom.xml" "$spring_tx_dir/src" -newer "$spring_tx_jar" -print -quit)" ]; }; then
    (cd "$spring_tx_dir" && quietly "${MVN[@]}" package -DskipTests) || return 1
  fi
  log "Maven projects ready"
}

# client_test [CLASS]: runs the JUnit class CLASS (default ClientCompatTest) of test/java.
client_test() {
  # surefire's own 'Tests run:' lines are the counts; translate them into the plain closing line.
  local out rc class=${1:-ClientCompatTest}
  out=$(mktemp)
  (cd "$here/java" && timeout 300 mvn -B -Dstyle.color=never --no-transfer-progress surefire:test -Dtest="$class" -Dbootstrap="$BOOTSTRAP") 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' | grep -Ev '^\[INFO\] (Download|-+$|$)' | tee "$out"
  rc=${PIPESTATUS[0]}
  local line run f e
  line=$(grep -E 'Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$' "$out" | tail -n1)
  rm -f "$out"
  if [[ $line =~ Tests\ run:\ ([0-9]+),\ Failures:\ ([0-9]+),\ Errors:\ ([0-9]+) ]]; then
    run=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} e=${BASH_REMATCH[3]}
    echo "$class: $((run - f - e)) passed, $((f + e)) failed"
  fi
  return "$rc"
}

spring_example() {
  local args=()
  # kfake answers CreateTopics with a null Configs array that the Java admin client cannot read;
  # against Moldau a failed topic creation must be fatal.
  [ "$BROKER_IMPL" = kfake ] || args+=(--spring.kafka.admin.fail-fast=true)
  SPRING_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP timeout 150 \
    java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$spring_jar" "${args[@]}"
}

spring_tx_example() {
  SPRING_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP timeout 150 \
    java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$spring_tx_jar" --spring.kafka.admin.fail-fast=true
}

if ! prepare; then
  echo "Maven preparation failed"
  echo "0 passed, 1 failed"
  exit 1
fi
use_or_start_broker || { echo "0 passed, 1 failed"; exit 1; }

status=0
run_suite "official Kafka tools" env TOOL_TIMEOUT=45 timeout 300 "$here/java/official_tools_test.sh" || status=1
run_suite "Java client (ClientCompatTest)" client_test || status=1
run_suite "Spring Boot spring-kafka example" spring_example || status=1
if [ -n "$txn" ]; then
  run_suite "Java transactions (TransactionsTest)" client_test TransactionsTest || status=1
  run_suite "Spring Kafka transactions example" spring_tx_example || status=1
else
  log "transaction suites left out (TXN=${TXN:-1}, BROKER_IMPL=$BROKER_IMPL)"
fi
if [ "$BROKER_IMPL" = kfake ] || [ "${CLUSTER:-1}" = 0 ]; then
  log "3-node cluster suite left out (BROKER_IMPL=$BROKER_IMPL, CLUSTER=${CLUSTER:-1})"
else
  run_suite "3-node cluster: tools and Java client" env -u BOOTSTRAP TOOL_TIMEOUT=45 timeout 420 "$here/java/cluster_test.sh" || status=1
fi
print_suites java
exit $status
