package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
)

// offsetsStore keeps the group coordinator's state in the internal topic __consumer_offsets,
// partitioned by group as Kafka does (abs(javaHashCode(group)) % partitions), in Kafka's record
// format, through the same partition and log code as every other topic.
type offsetsStore struct {
	b          *Broker
	partitions int32
}

// newOffsetsStore opens the group coordinator's store. A single node creates __consumer_offsets
// on first start; in a cluster it is created on the first FindCoordinator (EnsureOffsetsTopic),
// as Kafka does, so its partitions spread over the brokers running by then.
func newOffsetsStore(ctx context.Context, b *Broker) (*offsetsStore, error) {
	n := b.cfg.OffsetsTopicNumPartitions
	if t, ok := b.meta.Image().Topic(metadata.ConsumerOffsetsTopic); ok {
		n = int32(len(t.Partitions))
	} else if !b.clustered() {
		if err := b.EnsureOffsetsTopic(ctx); err != nil {
			return nil, err
		}
	}
	return &offsetsStore{b: b, partitions: n}, nil
}

// EnsureOffsetsTopic creates __consumer_offsets if it does not exist yet (another node may be
// creating it at the same time: that is fine) and opens its local partitions. It implements
// handler.Cluster.
func (b *Broker) EnsureOffsetsTopic(ctx context.Context) error {
	if t, ok := b.meta.Image().Topic(metadata.ConsumerOffsetsTopic); ok {
		if b.offsets != nil && int32(len(t.Partitions)) != b.offsets.partitions {
			b.log.Error("__consumer_offsets has another partition count than this broker's offsets.topic.num.partitions: groups may be served by the wrong broker; give every node the same setting",
				"partitions", len(t.Partitions), "offsets.topic.num.partitions", b.offsets.partitions)
		}
		return nil
	}
	_, err := b.meta.CreateTopic(ctx, metadata.CreateTopic{
		Name:              metadata.ConsumerOffsetsTopic,
		Partitions:        b.cfg.OffsetsTopicNumPartitions,
		ReplicationFactor: b.cfg.OffsetsTopicReplicationFactor,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"segment.bytes":    "104857600",
			"compression.type": "producer",
		},
		Internal: true,
	})
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return fmt.Errorf("create %s: %w", metadata.ConsumerOffsetsTopic, err)
	}
	return b.Sync()
}

func (s *offsetsStore) partition(p int32) (*partition.Partition, error) {
	part := s.b.parts.Get(metadata.ConsumerOffsetsTopic, p)
	if part == nil {
		return nil, fmt.Errorf("%s-%d is not hosted on this broker", metadata.ConsumerOffsetsTopic, p)
	}
	return part, nil
}

// Append writes the records as one batch to the group's partition. It returns once the batch is in
// the log (written to the file), so a process crash after it returns does not lose it, and, when
// the partition's flush policy is fsync before ack (the default), once a group-committed sync of
// its log dir covered it, so a power cut does not lose it either: the coordinator answers an
// OffsetCommit only after Append returns, as a produce is answered only after its sync.
//
// The coordinator calls Append with the group's lock held, so a group's commits wait for their
// syncs one after the other; commits of different groups, and produces, share each sync.
func (s *offsetsStore) Append(groupID string, kvs []group.KV) error {
	return s.append(groupID, kvs, record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, partition.VerificationGuard{})
}

// AppendTxn writes the records of a TxnOffsetCommit as Append does, as one transactional batch
// of the producer without a sequence (BaseSequence -1, Kafka's NO_SEQUENCE: the group
// coordinator's transactional writes are not idempotent produces). The partition tracks the
// producer's transaction from it; the marker WriteTxnMarkers appends ends it. guard is the
// partition.VerificationGuard the TxnOffsetCommit handler registered before it verified the
// transaction (KIP-890; nil: none): a batch that starts the producer's transaction here must
// still hold it, so a marker between the verification and the write refuses it.
func (s *offsetsStore) AppendTxn(groupID string, producerID int64, producerEpoch int16, guard any, kvs []group.KV) error {
	g, _ := guard.(partition.VerificationGuard)
	return s.append(groupID, kvs, record.BatchSpec{
		Transactional: true, ProducerID: producerID, ProducerEpoch: producerEpoch, BaseSequence: -1,
	}, g)
}

// append writes kvs as one batch of spec's producer fields, acks=all.
func (s *offsetsStore) append(groupID string, kvs []group.KV, spec record.BatchSpec, guard partition.VerificationGuard) error {
	if len(kvs) == 0 {
		return nil
	}
	part, err := s.partition(group.OffsetsPartition(groupID, s.partitions))
	if err != nil {
		return err
	}
	recs := make([]record.Record, len(kvs))
	for i, kv := range kvs {
		recs[i] = record.Record{Key: kv.Key, Value: kv.Value}
	}
	spec.BaseTimestamp = time.Now().UnixMilli()
	spec.Records = recs
	batch := record.Build(spec)
	res, err := part.AppendVerified(batch, -1, partition.OriginCoordinator, guard)
	if err != nil {
		return fmt.Errorf("append to %s: %w", metadata.ConsumerOffsetsTopic, err)
	}
	if syncer := part.AckSyncer(); syncer != nil {
		if err := syncer.Sync(); err != nil {
			return fmt.Errorf("%s-%d: fsync before ack: %v: %w", metadata.ConsumerOffsetsTopic, part.Index, err, kerr.KafkaStorageError)
		}
	}
	// As Kafka's offsets.commit.required.acks=-1: the commit is answered once every in-sync
	// replica has it, so a coordinator that fails next loses no committed offset or group state.
	ctx, cancel := context.WithTimeout(context.Background(), offsetsCommitTimeout)
	defer cancel()
	if err := part.WaitReplicated(ctx, res.LastOffset); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%v: %w", err, kerr.RequestTimedOut)
		}
		return fmt.Errorf("%s-%d: replicate: %w", metadata.ConsumerOffsetsTopic, part.Index, err)
	}
	return nil
}

// offsetsCommitTimeout is Kafka's offsets.commit.timeout.ms default: how long a group write waits
// for the in-sync replicas.
const offsetsCommitTimeout = 5 * time.Second

// Load replays every partition of __consumer_offsets in offset order. It hands a batch it cannot
// decode to fn as a record with Err set and goes on with the next batch; when the framing itself is
// broken, so that the next batch cannot be found, the rest of that partition is handed over the
// same way. Only a failed read ends the load.
func (s *offsetsStore) Load(fn func(r group.StoredRecord) error) error {
	for p := int32(0); p < s.partitions; p++ {
		part, err := s.partition(p)
		if err != nil {
			return err
		}
		if err := loadPartition(part, p, fn); err != nil {
			return err
		}
	}
	return nil
}

// LoadPartition replays one partition of __consumer_offsets (group.PartitionStore): the group
// coordinator loads a partition when this broker becomes its leader.
func (s *offsetsStore) LoadPartition(p int32, fn func(r group.StoredRecord) error) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	return loadPartition(part, p, fn)
}

func loadPartition(part *partition.Partition, p int32, fn func(r group.StoredRecord) error) error {
	skip := func(off int64, err error) error {
		return fn(group.StoredRecord{Partition: p, Offset: off,
			Err: fmt.Errorf("%s-%d at offset %d: %w", metadata.ConsumerOffsetsTopic, p, off, err)})
	}
	// Up to the log end, not the high watermark, as Kafka's loader: a new leader's high
	// watermark can lag what its log holds, and the group's latest records are in the log.
	off := part.LogStartOffset()
	for end := part.LogEndOffset(); off < end; {
		rr, err := part.Log().Read(off, 1<<20, end, true)
		data := rr.Data
		if err != nil {
			return fmt.Errorf("load %s-%d at %d: %w", metadata.ConsumerOffsetsTopic, p, off, err)
		}
		if len(data) == 0 {
			return nil
		}
		batches, splitErr := record.Split(data)
		start := off
		for _, b := range batches {
			h, recs, err := record.Records(b)
			if next := h.LastOffset() + 1; next <= off || h.LastOffsetDelta < 0 {
				// The header does not move forward: nothing after it can be trusted to.
				return skip(off, fmt.Errorf("rest of the partition: batch header at offset %d has last offset delta %d (%v)",
					h.BaseOffset, h.LastOffsetDelta, err))
			}
			if err != nil {
				if err := skip(h.BaseOffset, err); err != nil {
					return err
				}
			} else if h.Control() {
				// A transaction marker ends the producer's pending offsets in this partition;
				// other control records (Kafka reserves more types) are not the coordinator's.
				if h.Transactional() {
					m, err := record.ParseMarker(h, recs)
					if err != nil {
						err = skip(h.BaseOffset, err)
					} else {
						err = fn(group.StoredRecord{Partition: p, Offset: h.BaseOffset, ProducerID: m.ProducerID,
							Transactional: true, Marker: markerOf(m)})
					}
					if err != nil {
						return err
					}
				}
			} else {
				for _, r := range recs {
					sr := group.StoredRecord{Partition: p, Offset: h.BaseOffset + int64(r.OffsetDelta), Key: r.Key, Value: r.Value,
						Transactional: h.Transactional(), ProducerID: h.ProducerID}
					if err := fn(sr); err != nil {
						return err
					}
				}
			}
			off = h.LastOffset() + 1
		}
		if splitErr != nil || off == start {
			if splitErr == nil {
				splitErr = errors.New("the read returned no whole batch")
			}
			return skip(off, fmt.Errorf("rest of the partition: %w", splitErr))
		}
	}
	return nil
}

func markerOf(m record.Marker) group.TxnMarker {
	if m.Commit {
		return group.MarkerCommit
	}
	return group.MarkerAbort
}
