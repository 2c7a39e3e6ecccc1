package io.moldau.examples.springkafkatx;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.config.TopicBuilder;
import org.springframework.kafka.core.ConsumerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.core.ProducerFactory;
import org.springframework.kafka.transaction.KafkaTransactionManager;
import org.springframework.stereotype.Component;
import org.springframework.transaction.annotation.EnableTransactionManagement;
import org.springframework.transaction.annotation.Transactional;

/**
 * Kafka transactions the Spring way, against Moldau:
 * <ol>
 *   <li>a {@link KafkaTransactionManager} on the transactional producer factory
 *       ({@code spring.kafka.producer.transaction-id-prefix});</li>
 *   <li>{@link Orders#send} is {@code @Transactional}: two calls commit {@code app.messages}
 *       records to the input topic, one between them sends {@code app.rolled-back} records and
 *       throws, so the transaction manager aborts them;</li>
 *   <li>a {@link KafkaListener} in a transactional container (read_committed) turns every input
 *       record into an output record with the same {@link KafkaTemplate}: the output and the
 *       group's offsets commit together (sendOffsetsToTransaction); its first attempt at one
 *       record throws, so that transaction rolls back and the record is delivered again.</li>
 * </ol>
 * Exits 0 when a read_committed reader of the output sees every committed input exactly once and
 * nothing of the rolled-back transaction (while read_uncommitted shows the rolled-back records in
 * the input), within {@code app.timeout-seconds}; 1 otherwise.
 */
@SpringBootApplication
@EnableTransactionManagement
public class SpringKafkaTransactionsExample {
    private static final Logger log = LoggerFactory.getLogger(SpringKafkaTransactionsExample.class);

    public static void main(String[] args) throws Exception {
        // Fresh topics and group per run unless app.run is given, so a re-run never sees old records.
        if (System.getProperty("app.run") == null && System.getenv("APP_RUN") == null) {
            System.setProperty("app.run", UUID.randomUUID().toString().substring(0, 8));
        }
        ConfigurableApplicationContext ctx = SpringApplication.run(SpringKafkaTransactionsExample.class, args);
        int code = ctx.getBean(Checker.class).run(ctx.getBean(Orders.class), ctx.getBean(Transformer.class));
        System.exit(SpringApplication.exit(ctx, () -> code));
    }

    /** The transaction manager of the @Transactional methods and of the listener container. */
    @Bean
    KafkaTransactionManager<String, String> kafkaTransactionManager(ProducerFactory<String, String> pf) {
        return new KafkaTransactionManager<>(pf);
    }

    /** Listener containers that run every delivery in a transaction of kafkaTransactionManager. */
    @Bean
    ConcurrentKafkaListenerContainerFactory<String, String> kafkaListenerContainerFactory(
            ConsumerFactory<String, String> consumerFactory, KafkaTransactionManager<String, String> tm) {
        ConcurrentKafkaListenerContainerFactory<String, String> f = new ConcurrentKafkaListenerContainerFactory<>();
        f.setConsumerFactory(consumerFactory);
        f.getContainerProperties().setKafkaAwareTransactionManager(tm);
        return f;
    }

    @Bean
    NewTopic input(@Value("${app.input}") String topic, @Value("${app.partitions}") int partitions) {
        return TopicBuilder.name(topic).partitions(partitions).build();
    }

    @Bean
    NewTopic output(@Value("${app.output}") String topic, @Value("${app.partitions}") int partitions) {
        return TopicBuilder.name(topic).partitions(partitions).build();
    }

    @Component
    static class Orders {
        private final KafkaTemplate<String, String> template;
        private final String input;

        Orders(KafkaTemplate<String, String> template, @Value("${app.input}") String input) {
            this.template = template;
            this.input = input;
        }

        /**
         * Sends prefix-from .. prefix-(to-1) in one transaction; with fail, throws after every
         * record was written, so the transaction manager rolls the transaction back (an abort).
         */
        @Transactional("kafkaTransactionManager")
        public void send(String prefix, int from, int to, boolean fail) {
            for (int i = from; i < to; i++) {
                template.send(input, "key-" + i, prefix + "-" + i);
            }
            template.flush();
            if (fail) {
                throw new IllegalStateException("rolled back on purpose");
            }
        }
    }

    @Component
    static class Transformer {
        private final KafkaTemplate<String, String> template;
        private final String output;
        private final AtomicBoolean failedOnce = new AtomicBoolean();

        Transformer(KafkaTemplate<String, String> template, @Value("${app.output}") String output) {
            this.template = template;
            this.output = output;
        }

        @KafkaListener(topics = "${app.input}", groupId = "${app.group}")
        void onRecord(ConsumerRecord<String, String> r) {
            template.send(output, r.key(), "out-" + r.value());
            if (r.value().equals("committed-7") && failedOnce.compareAndSet(false, true)) {
                // The output record above is aborted with this transaction; the record comes again.
                throw new IllegalStateException("first attempt at committed-7 fails on purpose");
            }
        }
    }

    @Component
    static class Checker {
        private final String bootstrap;
        private final String input;
        private final String output;
        private final int messages;
        private final int rolledBack;
        private final int timeoutSeconds;

        Checker(@Value("${spring.kafka.bootstrap-servers}") String bootstrap, @Value("${app.input}") String input,
                @Value("${app.output}") String output, @Value("${app.messages}") int messages,
                @Value("${app.rolled-back}") int rolledBack, @Value("${app.timeout-seconds}") int timeoutSeconds) {
            this.bootstrap = bootstrap;
            this.input = input;
            this.output = output;
            this.messages = messages;
            this.rolledBack = rolledBack;
            this.timeoutSeconds = timeoutSeconds;
        }

        int run(Orders orders, Transformer transformer) {
            List<String> problems = new ArrayList<>();
            orders.send("committed", 0, messages / 2, false);
            try {
                orders.send("rolledback", 0, rolledBack, true);
                problems.add("the failing @Transactional send did not throw");
            } catch (IllegalStateException expected) {
                log.info("transaction rolled back: {}", expected.getMessage());
            }
            orders.send("committed", messages / 2, messages, false);
            log.info("sent {} committed records and {} rolled back to {}", messages, rolledBack, input);

            Map<String, Integer> out = new HashMap<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            // Until every committed input is in the output, then once more to the end.
            while (System.nanoTime() < deadline && countPrefix(out, "out-committed-") < messages) {
                out = readAll(output, "read_committed");
            }
            out = readAll(output, "read_committed");
            for (int i = 0; i < messages; i++) {
                int n = out.getOrDefault("out-committed-" + i, 0);
                if (n != 1 && problems.size() < 10) {
                    problems.add("out-committed-" + i + " is " + n + " times in " + output);
                }
            }
            if (countPrefix(out, "out-rolledback-") > 0) {
                problems.add("read_committed output holds records of the rolled-back transaction: " + out.keySet());
            }
            if (!transformer.failedOnce.get()) {
                problems.add("the listener's failing first attempt at committed-7 never ran");
            }
            Map<String, Integer> in = readAll(input, "read_uncommitted");
            if (countPrefix(in, "rolledback-") != rolledBack) {
                problems.add("read_uncommitted input holds " + countPrefix(in, "rolledback-") + " rolled-back records, want " + rolledBack);
            }
            if (countPrefix(readAll(input, "read_committed"), "rolledback-") != 0) {
                problems.add("read_committed input holds rolled-back records");
            }
            String summary = String.format("committed %d, rolled back %d; output read_committed: %d records, %d distinct",
                    messages, rolledBack, out.values().stream().mapToInt(Integer::intValue).sum(), out.size());
            problems.forEach(p -> log.error("problem: {}", p));
            System.out.println("spring-kafka transactions example: " + (problems.isEmpty() ? "OK " : "FAILED ") + summary);
            return problems.isEmpty() ? 0 : 1;
        }

        private static int countPrefix(Map<String, Integer> values, String prefix) {
            return values.entrySet().stream().filter(e -> e.getKey().startsWith(prefix)).mapToInt(Map.Entry::getValue).sum();
        }

        /** Every value in topic from the beginning to its end at isolation, with its count. */
        private Map<String, Integer> readAll(String topic, String isolation) {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            Map<String, Integer> values = new HashMap<>();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
                List<TopicPartition> tps = new ArrayList<>();
                c.partitionsFor(topic, Duration.ofSeconds(30)).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
                c.assign(tps);
                c.seekToBeginning(tps);
                Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (System.nanoTime() < deadline && tps.stream().anyMatch(tp -> c.position(tp, Duration.ofSeconds(30)) < end.get(tp))) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        values.merge(r.value(), 1, Integer::sum);
                    }
                }
            }
            return values;
        }
    }
}
