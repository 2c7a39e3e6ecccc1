#!/bin/bash
# Runs an official Apache Kafka command-line tool (from the kafka-tools jar on Maven Central)
# without a Kafka distribution:
#
#   test/java/kafka-tool.sh kafka-topics --list --bootstrap-server 127.0.0.1:9092
#   test/java/kafka-tool.sh org.apache.kafka.tools.TopicCommand --list --bootstrap-server ...
#
# The first run resolves the jars of pom.xml into target/lib (cached; redone when pom.xml changes).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib=$here/target/lib
stamp=$here/target/lib.stamp

if [ $# -lt 1 ]; then
  echo "usage: $0 <kafka-topics|kafka-console-producer|kafka-console-consumer|kafka-consumer-groups|CLASS> args..." >&2
  exit 2
fi

if [ ! -f "$stamp" ] || [ "$here/pom.xml" -nt "$stamp" ]; then
  # Serialize concurrent first runs.
  mkdir -p "$here/target"
  exec 9>"$here/target/lib.lock"
  flock 9
  if [ ! -f "$stamp" ] || [ "$here/pom.xml" -nt "$stamp" ]; then
    rm -rf "$lib"
    (cd "$here" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
      -DoutputDirectory=target/lib -DincludeScope=runtime) >&2
    touch "$stamp"
  fi
  exec 9>&-
fi

tool=$1
shift
case $tool in
  kafka-topics|kafka-topics.sh)                 class=org.apache.kafka.tools.TopicCommand ;;
  kafka-console-producer|kafka-console-producer.sh) class=org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer|kafka-console-consumer.sh) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-consumer-groups|kafka-consumer-groups.sh)   class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-configs|kafka-configs.sh)               class=org.apache.kafka.tools.ConfigCommand ;;
  kafka-metadata-quorum|kafka-metadata-quorum.sh) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
  kafka-features|kafka-features.sh)             class=org.apache.kafka.tools.FeatureCommand ;;
  kafka-get-offsets|kafka-get-offsets.sh)       class=org.apache.kafka.tools.GetOffsetShell ;;
  kafka-broker-api-versions|kafka-broker-api-versions.sh) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  kafka-producer-perf-test|kafka-producer-perf-test.sh)   class=org.apache.kafka.tools.ProducerPerformance ;;
  kafka-consumer-perf-test|kafka-consumer-perf-test.sh)   class=org.apache.kafka.tools.ConsumerPerformance ;;
  kafka-leader-election|kafka-leader-election.sh) class=org.apache.kafka.tools.LeaderElectionCommand ;;
  kafka-reassign-partitions|kafka-reassign-partitions.sh) class=org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
  kafka-features|kafka-features.sh)             class=org.apache.kafka.tools.FeatureCommand ;;
  kafka-transactions|kafka-transactions.sh)     class=org.apache.kafka.tools.TransactionsCommand ;;
  *.*) class=$tool ;;
  *) echo "kafka-tool.sh: unknown tool $tool (give a class name instead)" >&2; exit 2 ;;
esac

# Short-lived JVMs on 2 cores: C1 only, serial GC, quiet logging.
exec java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss1m \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="${KAFKA_TOOL_LOG_LEVEL:-warn}" \
  -Dlog4j2.level=WARN -Dlog4j2.StatusLogger.level=OFF \
  ${KAFKA_TOOL_JAVA_OPTS:-} \
  -cp "$lib/*" "$class" "$@"
