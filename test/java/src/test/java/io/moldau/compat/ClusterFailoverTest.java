package io.moldau.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The official Java client (kafka-clients 4.x) against a three-node Moldau cluster while one node
 * is stopped: run by test/java/cluster_test.sh, which starts the nodes.
 *
 * <p>System properties: {@code bootstrap} (every node's address) and {@code cluster.stopCommand},
 * a bash command with {@code %d} for a node id that stops that node (SIGTERM) and returns once it
 * has exited. The node stays stopped; cluster_test.sh starts it again afterwards.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ClusterFailoverTest {
    private static final int PARTITIONS = 3;
    private static final int RECORDS = 500;

    @Test
    void acksAllProducerKeepsGoingWhileABrokerIsStopped() throws Exception {
        String bootstrap = System.getProperty("bootstrap");
        String stopCommand = System.getProperty("cluster.stopCommand");
        assertTrue(bootstrap != null && bootstrap.contains(","), "-Dbootstrap must name the cluster's nodes, got " + bootstrap);
        assertTrue(stopCommand != null && stopCommand.contains("%d"), "-Dcluster.stopCommand must be given, with %d for the node id");
        String topic = "java-failover-" + UUID.randomUUID().toString().substring(0, 8);

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 3)
                    .configs(Map.of("min.insync.replicas", "2")))).all().get(30, TimeUnit.SECONDS);
            TopicDescription before = waitForDescription(admin, topic, d -> d.partitions().stream()
                    .allMatch(p -> p.leader() != null && p.isr().size() == 3), "every partition with a leader and 3 in-sync replicas");

            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            Map<String, RecordMetadata> acked = new HashMap<>();
            int stopped;
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                send(producer, topic, 0, RECORDS, acked);

                stopped = before.partitions().get(0).leader().id();
                String cmd = String.format(stopCommand, stopped);
                Process proc = new ProcessBuilder("bash", "-c", cmd).inheritIO().start();
                assertTrue(proc.waitFor(60, TimeUnit.SECONDS), "stopping node " + stopped + " took over 60 s");
                assertEquals(0, proc.exitValue(), "stop command for node " + stopped + ": " + cmd);
                System.out.println("stopped node " + stopped + ", the leader of " + topic + "-0");

                // The same producer, with the leader of partition 0 gone: acks=all with
                // min.insync.replicas=2 still succeeds on the two nodes left.
                send(producer, topic, RECORDS, RECORDS, acked);
            }
            assertEquals(2 * RECORDS, acked.size(), "acknowledged records");

            final int gone = stopped;
            TopicDescription after = waitForDescription(admin, topic, d -> d.partitions().stream()
                    .allMatch(p -> p.leader() != null && p.leader().id() != gone
                            && p.isr().stream().noneMatch(n -> n.id() == gone) && p.isr().size() == 2),
                    "every partition led by a running node, node " + gone + " out of every ISR");
            for (TopicPartitionInfo p : after.partitions()) {
                assertEquals(3, p.replicas().size(), "partition " + p.partition() + " keeps its 3 replicas: " + p);
                assertNotEquals(gone, p.leader().id());
            }

            // Every acknowledged record, once, at its acknowledged offset, read while the node is
            // still stopped.
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            Map<String, Integer> seen = new HashMap<>();
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = new ArrayList<>();
                for (int p = 0; p < PARTITIONS; p++) tps.add(new TopicPartition(topic, p));
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (!seen.keySet().containsAll(acked.keySet())) {
                    if (System.nanoTime() > deadline) {
                        fail("read " + seen.size() + " of " + acked.size() + " acknowledged records within 60 s");
                    }
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        seen.merge(r.value(), 1, Integer::sum);
                        RecordMetadata m = acked.get(r.value());
                        if (m != null && (m.partition() != r.partition() || m.offset() != r.offset())) {
                            fail(r.value() + " read at " + r.partition() + "/" + r.offset() + ", acknowledged at " + m.partition() + "/" + m.offset());
                        }
                    }
                }
            }
            List<String> twice = seen.entrySet().stream().filter(e -> e.getValue() != 1).map(Map.Entry::getKey).collect(Collectors.toList());
            assertTrue(twice.isEmpty(), "records read more than once: " + twice);
        }
    }

    /** Sends n records with values v{from}..v{from+n-1} and waits for every acknowledgement. */
    private static void send(KafkaProducer<String, String> producer, String topic, int from, int n,
                             Map<String, RecordMetadata> acked) throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        for (int i = from; i < from + n; i++) {
            futures.add(producer.send(new ProducerRecord<>(topic, "k" + i, String.format("v%06d", i))));
        }
        producer.flush();
        for (int i = 0; i < futures.size(); i++) {
            acked.put(String.format("v%06d", from + i), futures.get(i).get(60, TimeUnit.SECONDS));
        }
    }

    private static TopicDescription waitForDescription(Admin admin, String topic,
                                                       java.util.function.Predicate<TopicDescription> cond, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        TopicDescription d = null;
        for (;;) {
            try {
                d = admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
                if (cond.test(d)) return d;
            } catch (java.util.concurrent.ExecutionException e) {
                // retriable while metadata settles; the last description is in the failure
            }
            if (System.nanoTime() > deadline) fail(what + ": not within 30 s; last description " + d);
            Thread.sleep(100);
        }
    }
}
