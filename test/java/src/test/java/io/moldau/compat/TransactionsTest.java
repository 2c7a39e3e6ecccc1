package io.moldau.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

/**
 * Transactions with the official Java client (kafka-clients 4.x) against a running broker (the
 * system property {@code bootstrap}, else the environment variable {@code BOOTSTRAP}, else
 * 127.0.0.1:9092), on a cluster with {@code transaction.version=2} finalized (KIP-890 part 2:
 * the producer then bumps its epoch on every EndTxn, adds partitions implicitly with Produce
 * v12 and the group with TxnOffsetCommit v5).
 *
 * <p>Every test uses its own topics, transactional ids and groups, so they run in any order.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class TransactionsTest {
    private final String run = UUID.randomUUID().toString().substring(0, 8);
    private String bootstrap;
    private Admin admin;

    @BeforeAll
    void connect() {
        bootstrap = System.getProperty("bootstrap");
        if (bootstrap == null || bootstrap.isEmpty() || bootstrap.startsWith("${")) {
            bootstrap = System.getenv().getOrDefault("BOOTSTRAP", "127.0.0.1:9092");
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        admin = Admin.create(p);
    }

    @AfterAll
    void close() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
    }

    private String topic(String name, int partitions) throws Exception {
        String t = "java-txn-" + name + "-" + run;
        admin.createTopics(List.of(new NewTopic(t, partitions, (short) -1))).all().get(30, TimeUnit.SECONDS);
        return t;
    }

    private KafkaProducer<String, String> producer(String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 30000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    private KafkaConsumer<String, String> consumer(String group, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    /** Sends values to partition 0 of topic in the open transaction and waits for every ack. */
    private List<Long> send(KafkaProducer<String, String> p, String topic, List<String> values) throws Exception {
        List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
        for (String v : values) {
            fs.add(p.send(new ProducerRecord<>(topic, 0, "k", v)));
        }
        List<Long> offsets = new ArrayList<>();
        for (var f : fs) {
            offsets.add(f.get(30, TimeUnit.SECONDS).offset());
        }
        return offsets;
    }

    private static List<String> values(String prefix, int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(prefix + "-" + i);
        }
        return out;
    }

    /**
     * Reads every partition of topic from the beginning to its end at isolation (end: the last
     * stable offset for read_committed, the log end for read_uncommitted) and returns the values.
     */
    private List<String> readAll(String topic, String isolation) {
        try (KafkaConsumer<String, String> c = consumer(null, isolation)) {
            List<TopicPartition> tps = new ArrayList<>();
            c.partitionsFor(topic, Duration.ofSeconds(30)).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            List<String> got = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (tps.stream().anyMatch(tp -> c.position(tp, Duration.ofSeconds(30)) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline, "read " + topic + " to " + end + " within 30 s (" + isolation + ")");
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    got.add(r.value());
                }
            }
            return got;
        }
    }

    private TransactionDescription describe(String txnId) throws Exception {
        return admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
    }

    /** The cluster finalizes transaction.version 2: the producer speaks KIP-890 part 2. */
    @Test
    void transactionVersion2IsFinalized() throws Exception {
        FeatureMetadata features = admin.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS);
        FinalizedVersionRange tv = features.finalizedFeatures().get("transaction.version");
        assertNotNull(tv, "finalized features " + features.finalizedFeatures() + " lack transaction.version");
        assertEquals(2, tv.maxVersionLevel(), "finalized transaction.version");
        assertTrue(features.supportedFeatures().get("transaction.version").maxVersion() >= 2, "supported transaction.version");
    }

    /**
     * Commit, abort, commit: read_committed sees exactly the committed records, read_uncommitted
     * all; each transaction's marker takes one offset; under TV2 every EndTxn bumps the producer
     * epoch (DescribeTransactions shows it) and the transaction ends CompleteCommit.
     */
    @Test
    void commitAbortCommit() throws Exception {
        String topic = topic("cac", 1);
        String txnId = "java-cac-" + run;
        try (KafkaProducer<String, String> p = producer(txnId)) {
            p.initTransactions();
            int epoch0 = describe(txnId).producerEpoch();
            p.beginTransaction();
            assertEquals(List.of(0L, 1L, 2L), send(p, topic, values("commit1", 3)));
            p.commitTransaction();
            p.beginTransaction();
            assertEquals(List.of(4L, 5L, 6L), send(p, topic, values("abort", 3)), "after commit1 and its marker");
            p.abortTransaction();
            p.beginTransaction();
            assertEquals(List.of(8L, 9L, 10L), send(p, topic, values("commit2", 3)), "after the abort marker");
            p.commitTransaction();
            // commitTransaction returns once the coordinator has PrepareCommit; the markers follow.
            TransactionDescription d = describe(txnId);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (d.state() == TransactionState.PREPARE_COMMIT && System.nanoTime() < deadline) {
                Thread.sleep(50); // polling interval of the wait for the markers
                d = describe(txnId);
            }
            assertEquals(TransactionState.COMPLETE_COMMIT, d.state(), "state after the last commit");
            assertEquals(epoch0 + 3, (int) d.producerEpoch(), "TV2: one epoch bump per EndTxn (3 transactions from epoch " + epoch0 + ")");
        }
        List<String> committed = new ArrayList<>(values("commit1", 3));
        committed.addAll(values("commit2", 3));
        assertEquals(committed, readAll(topic, "read_committed"));
        List<String> all = new ArrayList<>(values("commit1", 3));
        all.addAll(values("abort", 3));
        all.addAll(values("commit2", 3));
        assertEquals(all, readAll(topic, "read_uncommitted"));
        Map<TopicPartition, Long> end;
        try (KafkaConsumer<String, String> c = consumer(null, "read_committed")) {
            end = c.endOffsets(List.of(new TopicPartition(topic, 0)), Duration.ofSeconds(30));
        }
        assertEquals(12L, end.get(new TopicPartition(topic, 0)), "last stable offset: 9 records and 3 markers");
    }

    /**
     * Consume-transform-produce with sendOffsetsToTransaction and a consumer group: the group's
     * offsets commit with the transaction (and not with an aborted one), and the output holds
     * every input once.
     */
    @Test
    void sendOffsetsToTransactionWithGroup() throws Exception {
        String in = topic("in", 2);
        String out = topic("out", 2);
        String group = "java-txn-group-" + run;
        int n = 40;
        try (KafkaProducer<String, String> plain = producer("java-txn-input-" + run)) {
            plain.initTransactions();
            plain.beginTransaction();
            for (int i = 0; i < n; i++) {
                plain.send(new ProducerRecord<>(in, i % 2, "k" + i, "v" + i));
            }
            plain.commitTransaction();
        }
        String txnId = "java-ctp-" + run;
        Map<String, Integer> outputs = new HashMap<>();
        try (KafkaConsumer<String, String> c = consumer(group, "read_committed");
                KafkaProducer<String, String> p = producer(txnId)) {
            p.initTransactions();
            c.subscribe(List.of(in));
            int consumed = 0;
            boolean abortedOnce = false;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (consumed < n) {
                assertTrue(System.nanoTime() < deadline, "consumed " + consumed + " of " + n + " within 60 s");
                var recs = c.poll(Duration.ofMillis(500));
                if (recs.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                p.beginTransaction();
                for (ConsumerRecord<String, String> r : recs) {
                    p.send(new ProducerRecord<>(out, r.partition(), r.key(), (abortedOnce ? "out-" : "aborted-") + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                if (!abortedOnce) {
                    // The first batch is aborted: its offsets must not commit, and the consumer
                    // goes back to the group's committed offsets to process it again.
                    p.flush();
                    p.abortTransaction();
                    abortedOnce = true;
                    Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                            .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                    for (TopicPartition tp : offsets.keySet()) {
                        assertTrue(committed.get(tp) == null, "offset of " + tp + " committed by an aborted transaction: " + committed);
                    }
                    for (TopicPartition tp : c.assignment()) {
                        OffsetAndMetadata om = committed.get(tp);
                        c.seek(tp, om == null ? 0 : om.offset());
                    }
                    continue;
                }
                p.commitTransaction();
                consumed += recs.count();
            }
        }
        Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        long sum = 0;
        for (int part = 0; part < 2; part++) {
            OffsetAndMetadata om = committed.get(new TopicPartition(in, part));
            assertNotNull(om, "group offset of " + in + "-" + part + ": " + committed);
            sum += om.offset();
        }
        // one past the last input record of each partition (its transaction's marker follows)
        assertEquals(n, sum, "the group's committed offsets: one past every input record");
        for (String v : readAll(out, "read_committed")) {
            outputs.merge(v, 1, Integer::sum);
        }
        for (int i = 0; i < n; i++) {
            assertEquals(1, outputs.getOrDefault("out-v" + i, 0), "out-v" + i + " in " + out + " (" + outputs + ")");
        }
        assertEquals(n, outputs.size(), "read_committed output: exactly the committed transforms, no aborted one: " + outputs.keySet());
        assertTrue(readAll(out, "read_uncommitted").stream().anyMatch(v -> v.startsWith("aborted-")),
                "read_uncommitted shows the aborted transaction's records");
    }

    /**
     * A second producer with the same transactional.id fences the first: its commit fails with
     * ProducerFencedException (or InvalidProducerEpochException, as KIP-890 clients may report
     * it) and its open transaction is aborted; the new producer's transaction commits.
     */
    @Test
    void zombieIsFenced() throws Exception {
        String topic = topic("fence", 1);
        String txnId = "java-fence-" + run;
        try (KafkaProducer<String, String> zombie = producer(txnId)) {
            zombie.initTransactions();
            zombie.beginTransaction();
            send(zombie, topic, values("zombie", 2));
            try (KafkaProducer<String, String> fresh = producer(txnId)) {
                fresh.initTransactions();
                fresh.beginTransaction();
                send(fresh, topic, values("fresh", 2));
                fresh.commitTransaction();
            }
            Exception e = assertThrows(Exception.class, zombie::commitTransaction);
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            assertTrue(cause instanceof ProducerFencedException || cause instanceof InvalidProducerEpochException,
                    "the zombie's commit: " + cause);
        }
        assertEquals(values("fresh", 2), readAll(topic, "read_committed"));
        List<String> all = readAll(topic, "read_uncommitted");
        assertTrue(all.containsAll(values("zombie", 2)) && all.containsAll(values("fresh", 2)), "read_uncommitted: " + all);
        assertFalse(Set.copyOf(readAll(topic, "read_committed")).contains("zombie-0"));
    }
}
