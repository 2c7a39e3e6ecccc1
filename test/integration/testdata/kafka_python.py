"""Moldau driven by kafka-python (a pure Python client, Debian's python3-kafka).

Run by kafka_python_test.go against the built binary:

    /usr/bin/python3 testdata/kafka_python.py 127.0.0.1:9092

Prints one line per check and ends with 'N passed, N failed'; exits 1 when a check failed.
Waits are for conditions with deadlines (poll loops), never fixed sleeps.
"""
import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
run = uuid.uuid4().hex[:8]
topic = "kafka-python-" + run
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail else ""), flush=True)


def poll_until(consumer, want, timeout_s):
    """Polls consumer until want records arrived or timeout_s passed; returns the records."""
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=500).values():
            got.extend(recs)
    return got


def main():
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="moldau-kafka-python")
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    check("create_topics makes a 3-partition topic", topic in admin.list_topics())

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    before = int(time.time() * 1000)
    futures = [producer.send(topic, key=b"k%d" % (i % 30), value=b"v%d" % i) for i in range(300)]
    producer.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    check("300 keyed records acknowledged with acks=all", len(metas) == 300 and all(m.offset >= 0 for m in metas))
    by_key = {}
    stable = True
    for i, m in enumerate(metas):
        stable &= by_key.setdefault(i % 30, m.partition) == m.partition
    check("a key always lands on the same partition", stable and len(set(by_key.values())) > 1,
          "partitions used: %s" % sorted(set(by_key.values())))

    # A consumer group reads everything once and commits; a second instance resumes after it.
    group = "kp-g-" + run
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    recs = poll_until(c, 300, 30)
    check("a group consumer reads all 300 records", len(recs) == 300, "got %d" % len(recs))
    c.commit()
    c.close()
    producer.send(topic, key=b"late", value=b"after-commit").get(timeout=30)
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    recs = poll_until(c, 1, 30)
    check("the group resumes from its committed offsets", [r.value for r in recs] == [b"after-commit"],
          "got %r" % [r.value for r in recs])
    c.close()

    # Replay by time and by offset, with manual assignment.
    tps = [TopicPartition(topic, p) for p in range(3)]
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    found = c.offsets_for_times({tp: before for tp in tps})
    check("offsets_for_times finds the first offset at or after a timestamp",
          all(found[tp] is not None and found[tp].offset == 0 for tp in tps),
          "%r" % {tp.partition: found[tp] for tp in tps})
    tp = TopicPartition(topic, metas[0].partition)
    c.assign([tp])
    c.seek(tp, 2)
    ends = c.end_offsets([tp])
    recs = poll_until(c, ends[tp] - 2, 30)
    check("assign() and seek() read a partition from an offset",
          len(recs) == ends[tp] - 2 and recs[0].offset == 2, "got %d from %s" % (len(recs), recs[0].offset if recs else None))
    c.close()
    producer.close()
    admin.delete_topics([topic])
    admin.close()


try:
    main()
except Exception as e:  # a client exception is a failed check, with its message
    check("kafka-python run", False, "%s: %s" % (type(e).__name__, e))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or not passed else 0)
