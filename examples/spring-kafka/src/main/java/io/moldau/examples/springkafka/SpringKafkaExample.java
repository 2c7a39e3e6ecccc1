package io.moldau.examples.springkafka;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.config.TopicBuilder;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.support.SendResult;
import org.springframework.stereotype.Component;

/**
 * Sends {@code app.messages} records with {@link KafkaTemplate} and receives them in a
 * {@link KafkaListener}. Exits 0 when every record arrived exactly once and, per partition, in
 * offset order (and so, per key, in send order) within {@code app.timeout-seconds}; 1 otherwise.
 */
@SpringBootApplication
public class SpringKafkaExample {
    private static final Logger log = LoggerFactory.getLogger(SpringKafkaExample.class);

    public static void main(String[] args) throws Exception {
        // One fresh topic per run unless app.topic is given, so a re-run never sees old records.
        if (System.getProperty("app.topic") == null && System.getenv("APP_TOPIC") == null) {
            System.setProperty("app.topic", "spring-kafka-example-" + UUID.randomUUID().toString().substring(0, 8));
        }
        ConfigurableApplicationContext ctx = SpringApplication.run(SpringKafkaExample.class, args);
        int code = ctx.getBean(Receiver.class).awaitAndVerify(ctx.getBean(Sender.class).send());
        System.exit(SpringApplication.exit(ctx, () -> code));
    }

    @Bean
    NewTopic exampleTopic(@Value("${app.topic}") String topic, @Value("${app.partitions}") int partitions) {
        return TopicBuilder.name(topic).partitions(partitions).replicas(1).build();
    }

    @Component
    static class Sender {
        private final KafkaTemplate<String, String> template;
        private final String topic;
        private final int messages;
        private final int keys;

        Sender(KafkaTemplate<String, String> template, @Value("${app.topic}") String topic,
                @Value("${app.messages}") int messages, @Value("${app.keys}") int keys) {
            this.template = template;
            this.topic = topic;
            this.messages = messages;
            this.keys = keys;
        }

        /** Sends all records and waits for their acknowledgements; returns how many were acked. */
        int send() throws Exception {
            log.info("sending {} records to {}", messages, topic);
            List<CompletableFuture<SendResult<String, String>>> futures = new ArrayList<>(messages);
            for (int i = 0; i < messages; i++) {
                futures.add(template.send(topic, "key-" + (i % keys), Integer.toString(i)));
            }
            template.flush();
            int acked = 0;
            for (CompletableFuture<SendResult<String, String>> f : futures) {
                try {
                    f.get(30, TimeUnit.SECONDS);
                    acked++;
                } catch (Exception e) {
                    log.error("send failed: {}", e.toString());
                }
            }
            log.info("{} of {} records acknowledged", acked, messages);
            return acked;
        }
    }

    @Component
    static class Receiver {
        private final int messages;
        private final int timeoutSeconds;
        private final CountDownLatch all;
        private final Set<Integer> seen = new HashSet<>();
        private final Map<Integer, Long> lastOffsetOfPartition = new HashMap<>();
        private final Map<String, Integer> lastValueOfKey = new HashMap<>();
        private final List<String> problems = new ArrayList<>();
        private int received;

        Receiver(@Value("${app.messages}") int messages, @Value("${app.timeout-seconds}") int timeoutSeconds) {
            this.messages = messages;
            this.timeoutSeconds = timeoutSeconds;
            this.all = new CountDownLatch(messages);
        }

        @KafkaListener(topics = "${app.topic}", groupId = "${app.group}")
        synchronized void onRecord(ConsumerRecord<String, String> r) {
            received++;
            int v = Integer.parseInt(r.value());
            if (!seen.add(v)) {
                problem("record " + v + " arrived twice (partition " + r.partition() + " offset " + r.offset() + ")");
            }
            Long lastOffset = lastOffsetOfPartition.put(r.partition(), r.offset());
            if (lastOffset != null && r.offset() <= lastOffset) {
                problem("partition " + r.partition() + ": offset " + r.offset() + " after " + lastOffset);
            }
            Integer lastValue = lastValueOfKey.put(r.key(), v);
            if (lastValue != null && v <= lastValue) {
                problem(r.key() + ": record " + v + " after " + lastValue);
            }
            all.countDown();
        }

        private void problem(String p) {
            if (problems.size() < 10) {
                problems.add(p);
            }
        }

        int awaitAndVerify(int acked) throws InterruptedException {
            boolean complete = all.await(timeoutSeconds, TimeUnit.SECONDS);
            Thread.sleep(1000); // catch late duplicates
            synchronized (this) {
                boolean ok = complete && acked == messages && seen.size() == messages
                        && received == messages && problems.isEmpty();
                problems.forEach(p -> log.error("problem: {}", p));
                String summary = String.format("sent %d, acked %d, received %d (%d distinct) over %d partitions",
                        messages, acked, received, seen.size(), lastOffsetOfPartition.size());
                if (ok) {
                    log.info("OK: {}", summary);
                    System.out.println("spring-kafka example: OK " + summary);
                } else {
                    log.error("FAILED: {}", summary);
                    System.out.println("spring-kafka example: FAILED " + summary);
                }
                return ok ? 0 : 1;
            }
        }
    }
}
