package io.moldau.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * The official Java client (kafka-clients 4.x) against a running broker.
 *
 * <p>The broker comes from the system property {@code bootstrap}, else the environment variable
 * {@code BOOTSTRAP}, else 127.0.0.1:9092. An unreachable broker fails the run: nothing here is
 * skipped or assumed.
 *
 * <p>The tests share one topic and run in order: create, describe, produce, consume, replay.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ClientCompatTest {
    private static final int PARTITIONS = 3;
    private static final int RECORDS = 300;
    private static final int KEYS = 10;
    private static final String RETENTION_MS = "3600000";

    private final String run = UUID.randomUUID().toString().substring(0, 8);
    private final String topic = "java-compat-" + run;
    private String bootstrap;
    private Admin admin;

    /** What the producer was told: key, value and partition of every acknowledged record. */
    private final Map<String, Integer> partitionOfKey = new HashMap<>();

    static String bootstrap() {
        for (String v : new String[] {System.getProperty("bootstrap"), System.getenv("BOOTSTRAP")}) {
            // Maven leaves ${env.BOOTSTRAP} unexpanded when the variable is not set.
            if (v != null && !v.isBlank() && !v.startsWith("${")) {
                return v.trim();
            }
        }
        return "127.0.0.1:9092";
    }

    @BeforeAll
    void connect() {
        bootstrap = bootstrap();
        System.out.println("ClientCompatTest: broker " + bootstrap + ", topic " + topic);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        admin = Admin.create(p);
        // Fail the whole class at once (an error, not a skip) when no broker answers.
        try {
            admin.describeCluster().nodes().get(20, TimeUnit.SECONDS);
        } catch (Exception e) {
            fail("broker at " + bootstrap + " is unreachable: " + e, e);
        }
    }

    @AfterAll
    void close() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
    }

    @Test
    @Order(1)
    void brokerIsReachable() throws Exception {
        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = cluster.nodes().get(20, TimeUnit.SECONDS);
        assertFalse(nodes.isEmpty(), "describeCluster returned no nodes");
        assertNotNull(cluster.clusterId().get(10, TimeUnit.SECONDS), "cluster id");
    }

    @Test
    @Order(2)
    void createTopicWithConfig() throws Exception {
        NewTopic t = new NewTopic(topic, PARTITIONS, (short) 1)
                .configs(Map.of("retention.ms", RETENTION_MS, "cleanup.policy", "delete"));
        admin.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
        assertTrue(admin.listTopics().names().get(20, TimeUnit.SECONDS).contains(topic),
                "listTopics does not list " + topic);
    }

    @Test
    @Order(3)
    void describeTopic() throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                .get(20, TimeUnit.SECONDS).get(topic);
        assertNotNull(d, "no description of " + topic);
        assertEquals(topic, d.name());
        assertNotNull(d.topicId(), "topic id");
        assertEquals(PARTITIONS, d.partitions().size(), "partition count");
        for (TopicPartitionInfo p : d.partitions()) {
            assertNotNull(p.leader(), "partition " + p.partition() + " has no leader");
            assertEquals(1, p.replicas().size(), "replicas of partition " + p.partition());
            assertEquals(1, p.isr().size(), "isr of partition " + p.partition());
        }
    }

    @Test
    @Order(4)
    void describeTopicConfig() throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = admin.describeConfigs(List.of(r)).all().get(20, TimeUnit.SECONDS).get(r);
        assertNotNull(c.get("retention.ms"), "retention.ms not described");
        assertEquals(RETENTION_MS, c.get("retention.ms").value(), "retention.ms");
        assertEquals("delete", c.get("cleanup.policy").value(), "cleanup.policy");
    }

    @Test
    @Order(5)
    void idempotentProducerWithKeysAndHeaders() throws Exception {
        List<RecordMetadata> acked = produce(0, RECORDS);
        assertEquals(RECORDS, acked.size());
        Set<TopicPartition> seen = new HashSet<>();
        for (int i = 0; i < RECORDS; i++) {
            RecordMetadata m = acked.get(i);
            assertTrue(m.hasOffset(), "record " + i + " has no offset");
            seen.add(new TopicPartition(m.topic(), m.partition()));
            Integer prev = partitionOfKey.putIfAbsent(key(i), m.partition());
            if (prev != null) {
                assertEquals(prev.intValue(), m.partition(), "key " + key(i) + " moved partitions");
            }
        }
        assertTrue(seen.size() > 1, "all keys landed in one partition: " + seen);
    }

    @Test
    @Order(6)
    void groupConsumerReadsEverythingOnceAndCommits() throws Exception {
        String group = "java-compat-group-" + run;
        try (KafkaConsumer<String, String> c = consumer(group)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollUntil(c, RECORDS, Duration.ofSeconds(45));
            assertEquals(RECORDS, got.size(), "records read by group " + group);

            Map<Integer, Long> lastOffset = new HashMap<>();
            Set<String> values = new HashSet<>();
            for (ConsumerRecord<String, String> r : got) {
                Long last = lastOffset.put(r.partition(), r.offset());
                assertTrue(last == null || r.offset() > last, "partition " + r.partition() + " out of order");
                int i = Integer.parseInt(r.value().substring("value-".length()));
                assertEquals(key(i), r.key(), "key of " + r.value());
                assertEquals(partitionOfKey.get(r.key()).intValue(), r.partition(), "partition of " + r.key());
                assertEquals(run, header(r, "run"), "header run of " + r.value());
                assertEquals(Integer.toString(i), header(r, "seq"), "header seq of " + r.value());
                assertTrue(values.add(r.value()), "duplicate " + r.value());
            }

            c.commitSync(Duration.ofSeconds(20));
            Set<TopicPartition> tps = partitions();
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(tps, Duration.ofSeconds(20));
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(20));
            for (TopicPartition tp : tps) {
                assertNotNull(committed.get(tp), "no committed offset for " + tp);
                assertEquals(end.get(tp).longValue(), committed.get(tp).offset(), "committed offset of " + tp);
            }
        }

        // A new member of the same group resumes from the committed offsets: nothing left to read.
        try (KafkaConsumer<String, String> c = consumer(group)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> again = pollUntil(c, 1, Duration.ofSeconds(8));
            assertEquals(0, again.size(), "group re-read records after commitSync");
        }
    }

    @Test
    @Order(7)
    void offsetsForTimesReplaysOnlyNewerRecords() throws Exception {
        long before = System.currentTimeMillis();
        Thread.sleep(1100);
        long mark = System.currentTimeMillis();
        produce(RECORDS, 20);

        try (KafkaConsumer<String, String> c = consumer(null)) {
            Set<TopicPartition> tps = partitions();
            c.assign(tps);
            Map<TopicPartition, Long> query = tps.stream().collect(Collectors.toMap(tp -> tp, tp -> mark));
            Map<TopicPartition, OffsetAndTimestamp> found = c.offsetsForTimes(query, Duration.ofSeconds(20));
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(20));
            for (TopicPartition tp : tps) {
                OffsetAndTimestamp ot = found.get(tp);
                if (ot == null) {
                    c.seek(tp, end.get(tp));
                } else {
                    assertTrue(ot.timestamp() >= mark, "offsetsForTimes returned an older record on " + tp);
                    c.seek(tp, ot.offset());
                }
            }
            List<ConsumerRecord<String, String>> replay = pollUntil(c, 20, Duration.ofSeconds(30));
            // a short drain to catch anything older slipping in
            replay.addAll(pollUntil(c, 1, Duration.ofMillis(1500)));
            assertEquals(20, replay.size(), "records replayed from the timestamp");
            for (ConsumerRecord<String, String> r : replay) {
                assertTrue(r.timestamp() > before, "replayed an old record " + r.value());
                int i = Integer.parseInt(r.value().substring("value-".length()));
                assertTrue(i >= RECORDS, "replayed an old record " + r.value());
            }
        }
    }

    // --- helpers ---

    private static String key(int i) {
        return "key-" + (i % KEYS);
    }

    private static String header(ConsumerRecord<String, String> r, String name) {
        Header h = r.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private Set<TopicPartition> partitions() {
        Set<TopicPartition> tps = new HashSet<>();
        for (int p = 0; p < PARTITIONS; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        return tps;
    }

    private List<RecordMetadata> produce(int start, int n) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = start; i < start + n; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, key(i), "value-" + i);
                r.headers().add("run", run.getBytes(StandardCharsets.UTF_8));
                r.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                futures.add(producer.send(r));
            }
            producer.flush();
            List<RecordMetadata> acked = new ArrayList<>();
            for (Future<RecordMetadata> f : futures) {
                acked.add(f.get(30, TimeUnit.SECONDS));
            }
            return acked;
        }
    }

    private KafkaConsumer<String, String> consumer(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    private static List<ConsumerRecord<String, String>> pollUntil(
            KafkaConsumer<String, String> c, int want, Duration max) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long deadline = System.nanoTime() + max.toNanos();
        while (got.size() < want && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.add(r);
            }
        }
        return got;
    }
}
