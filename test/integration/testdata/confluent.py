"""confluent-kafka-python (librdkafka) driver for the Go integration tests.

  confluent.py produce BOOTSTRAP TOPIC COMPRESSION < records.jsonl
      Produces one record per input line with acks=all and enable.idempotence=true, waits for every
      delivery report and prints one JSON line per record, in input order (the records of one
      run go out as one batch per partition):
      {"partition": p, "offset": o}. Exits 1 if any record failed.

  confluent.py consume BOOTSTRAP TOPIC [FROM_TIMESTAMP_MS]
      Reads every partition of TOPIC from the beginning (or from offsets_for_times(FROM_TIMESTAMP_MS))
      to its end and prints one JSON line per record.

  confluent.py offsets-for-times BOOTSTRAP TOPIC PARTITION TIMESTAMP_MS
      Prints offsets_for_times' answer: {"offset": o} (-1: no record at or after the timestamp).

  confluent.py failover BOOTSTRAP TOPIC GROUP N
      The leader-failover protocol the cluster tests drive (test/kafkajs/failover.js speaks it too):
      a member of consumer group GROUP subscribes to TOPIC; an acks=all idempotent producer sends
      N keyed records and waits for them, prints "PAUSE" and reads one line from stdin (the test
      stops a partition leader meanwhile), sends N more and waits for them. The consumer reads
      until it has seen every acknowledged value (or 40 s pass) and commits. Ends with one JSON
      line: {"acked": [values], "errors": [delivery errors], "consumed": [values, in read order],
      "commit_error": ""}.

A record is {"partition", "offset", "key", "value", "headers": [[name, value], ...], "timestamp",
"timestamp_type"}; keys, values and header values are UTF-8 strings or null. Input records may
leave out partition (the default partitioner decides), timestamp (now) and headers.
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition


def enc(s):
    return None if s is None else s.encode()


def dec(b):
    return None if b is None else b.decode()


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def produce(bootstrap, topic, compression):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "compression.type": compression,
        "acks": "all",
        "enable.idempotence": True,
        # Every record of one run goes into one batch per partition: linger longer than the run,
        # and flush() sends at once without waiting for linger.ms.
        "linger.ms": 5000,
        "message.timeout.ms": 30000,
    })
    records = [json.loads(line) for line in sys.stdin if line.strip()]
    reports = [None] * len(records)

    def reporter(i):
        def report(err, msg):
            if err is not None:
                reports[i] = {"error": str(err)}
            else:
                reports[i] = {"partition": msg.partition(), "offset": msg.offset()}
        return report

    for i, r in enumerate(records):
        kwargs = {}
        if "partition" in r:
            kwargs["partition"] = r["partition"]
        if "timestamp" in r:
            kwargs["timestamp"] = r["timestamp"]
        headers = [(name, enc(value)) for name, value in r.get("headers") or []]
        if headers:
            kwargs["headers"] = headers
        p.produce(topic, value=enc(r.get("value")), key=enc(r.get("key")), on_delivery=reporter(i), **kwargs)
        p.poll(0)
    left = p.flush(30)
    if left:
        fail(f"{left} records not delivered within 30 s")
    for rep in reports:
        print(json.dumps(rep))
    if any(rep is None or "error" in rep for rep in reports):
        fail("some records failed")


def consumer(bootstrap, topic):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "integration-" + topic,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    })


def partitions(c, topic):
    md = c.list_topics(topic, timeout=10)
    tm = md.topics[topic]
    if tm.error is not None:
        fail(f"metadata of {topic}: {tm.error}")
    return sorted(tm.partitions)


def consume(bootstrap, topic, from_ts=None):
    c = consumer(bootstrap, topic)
    parts = partitions(c, topic)
    if from_ts is None:
        tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
    else:
        tps = c.offsets_for_times([TopicPartition(topic, p, from_ts) for p in parts], timeout=10)
        for tp in tps:
            if tp.error is not None:
                fail(f"offsets_for_times {tp}: {tp.error}")
        tps = [tp for tp in tps if tp.offset >= 0]  # -1: nothing at or after from_ts
    pending = {tp.partition for tp in tps}
    c.assign(tps)
    def show(msg):
        ts_type, ts = msg.timestamp()
        print(json.dumps({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": dec(msg.key()),
            "value": dec(msg.value()),
            "headers": [[name, dec(value)] for name, value in msg.headers() or []],
            "timestamp": ts,
            "timestamp_type": ts_type,
        }))
    read_to_end(c, pending, show)
    c.close()


def read_to_end(c, pending, on_record):
    """Polls the assigned consumer c, handing each record to on_record, until every partition
    in the set pending reached its end (partition EOF); fails after 30 s."""
    deadline = time.monotonic() + 30
    while pending:
        if time.monotonic() > deadline:
            fail(f"partitions {sorted(pending)} did not reach their end within 30 s")
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error() is not None:
            if msg.error().code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
                continue
            fail(f"consume: {msg.error()}")
        on_record(msg)


def offsets_for_times(bootstrap, topic, partition, ts):
    c = consumer(bootstrap, topic)
    [tp] = c.offsets_for_times([TopicPartition(topic, partition, ts)], timeout=10)
    if tp.error is not None:
        fail(f"offsets_for_times: {tp.error}")
    print(json.dumps({"offset": tp.offset}))
    c.close()


def failover(bootstrap, topic, group, n):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    })
    acked, errors, consumed = [], [], []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append(msg.value().decode())

    def consume_some(timeout):
        msg = c.poll(timeout)
        if msg is None:
            return
        if msg.error() is not None:
            # Leadership and coordinator moves are retriable: librdkafka reports and recovers.
            print(f"consumer: {msg.error()}", file=sys.stderr)
            return
        consumed.append(msg.value().decode())

    def send(first):
        for i in range(first, first + n):
            p.produce(topic, key=f"k{i}".encode(), value=f"v{i:06d}".encode(), on_delivery=report)
            p.poll(0)
        deadline = time.monotonic() + 40
        while len(p) > 0 and time.monotonic() < deadline:
            p.poll(0.05)
            consume_some(0)
        if len(p) > 0:
            fail(f"{len(p)} records not delivered within 40 s")

    send(0)
    print("PAUSE", flush=True)
    sys.stdin.readline()
    send(n)
    want = set(acked)
    deadline = time.monotonic() + 40
    while not want.issubset(set(consumed)) and time.monotonic() < deadline:
        consume_some(0.2)
    commit_error = ""
    try:
        c.commit(asynchronous=False)
    except Exception as e:  # reported in the output, checked by the test
        commit_error = str(e)
    c.close()
    print(json.dumps({"acked": acked, "errors": errors, "consumed": consumed, "commit_error": commit_error}), flush=True)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "produce":
        produce(*args)
    elif cmd == "consume":
        consume(args[0], args[1], int(args[2]) if len(args) > 2 else None)
    elif cmd == "offsets-for-times":
        offsets_for_times(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "failover":
        failover(args[0], args[1], args[2], int(args[3]))
    else:
        fail(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
