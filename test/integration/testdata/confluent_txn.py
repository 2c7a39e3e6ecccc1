"""confluent-kafka-python (librdkafka) transactions for the Go integration tests (txn_confluent_test.go).

  confluent_txn.py sequence BOOTSTRAP TOPIC TXNID N
      One transactional producer (transactional.id TXNID): init_transactions, then three
      transactions of N records each to partition 0 of TOPIC: "commit1-i" committed, "abort-i"
      written (every delivery report waited for) and aborted, "commit2-i" committed. Prints one JSON
      line per transaction: {"txn": name, "outcome": "commit"|"abort", "offsets": [o, ...]}.

  confluent_txn.py open BOOTSTRAP TOPIC TXNID N TIMEOUT_MS
      init_transactions (transaction.timeout.ms TIMEOUT_MS), begin, N records "open-i" to
      partition 0 delivered, then prints {"offsets": [...]} and "OPEN" and blocks reading stdin:
      the test kills the process with the transaction still open.

  confluent_txn.py consume BOOTSTRAP TOPIC ISOLATION
      Reads every partition of TOPIC from the beginning to its end (partition EOF: the last
      stable offset under read_committed, the high watermark under read_uncommitted) with
      isolation.level ISOLATION and prints one JSON line per record: {"partition", "offset",
      "value"}.
"""

import json
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from confluent import dec, fail, partitions, read_to_end


def producer(bootstrap, txn_id, timeout_ms=60000):
    return Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout_ms,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": min(30000, timeout_ms),
    })


def send(p, topic, prefix, n):
    """Produces n records to partition 0 and waits for every delivery report; returns the offsets."""
    offsets = [None] * n

    def reporter(i):
        def report(err, msg):
            if err is not None:
                fail(f"delivery of {prefix}-{i}: {err}")
            offsets[i] = msg.offset()
        return report

    for i in range(n):
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=0, on_delivery=reporter(i))
        p.poll(0)
    if p.flush(30):
        fail(f"{prefix}: records not delivered within 30 s")
    return offsets


def sequence(bootstrap, topic, txn_id, n):
    p = producer(bootstrap, txn_id)
    p.init_transactions(30)
    for name, outcome in (("commit1", "commit"), ("abort", "abort"), ("commit2", "commit")):
        p.begin_transaction()
        offsets = send(p, topic, name, n)
        if outcome == "commit":
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
        print(json.dumps({"txn": name, "outcome": outcome, "offsets": offsets}), flush=True)


def open_txn(bootstrap, topic, txn_id, n, timeout_ms):
    p = producer(bootstrap, txn_id, timeout_ms)
    p.init_transactions(30)
    p.begin_transaction()
    offsets = send(p, topic, "open", n)
    print(json.dumps({"offsets": offsets}), flush=True)
    print("OPEN", flush=True)
    sys.stdin.read()


def consume(bootstrap, topic, isolation):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"txn-{topic}-{isolation}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "isolation.level": isolation,
    })
    parts = partitions(c, topic)
    pending = set(parts)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    read_to_end(c, pending, lambda msg: print(json.dumps(
        {"partition": msg.partition(), "offset": msg.offset(), "value": dec(msg.value())})))
    c.close()


def main():
    if len(sys.argv) < 2:
        fail(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sequence" and len(args) == 4:
        sequence(args[0], args[1], args[2], int(args[3]))
    elif cmd == "open" and len(args) == 5:
        open_txn(args[0], args[1], args[2], int(args[3]), int(args[4]))
    elif cmd == "consume" and len(args) == 3:
        consume(*args)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()
