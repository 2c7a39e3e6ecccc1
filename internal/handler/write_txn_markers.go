package handler

// WriteTxnMarkers: v1-2 (what Kafka 4.x serves; v2 carries the marker's TransactionVersion).
//
// The transaction coordinator's request to a partition leader to end a transaction: for each
// marker, a commit or abort control batch is appended to every listed partition this broker
// leads (partition.WriteTxnMarker, Kafka's epoch rules), as an acks=all produce of the
// coordinator: synced under the flush policy, then waited for until the high watermark covers it
// (request.timeout.ms, 30 s, as Kafka's appendRecords with requiredAcks -1). Then, for each
// __consumer_offsets partition whose marker is in, the group coordinator applies or drops the
// producer's pending transactional offsets (group.Coordinator.CompleteTxn), as KafkaApis does.
//
// Per-partition errors, as Kafka answers them: UNKNOWN_TOPIC_OR_PARTITION (no local replica),
// NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS(_AFTER_APPEND), INVALID_PRODUCER_EPOCH,
// TRANSACTION_COORDINATOR_FENCED, REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR. Markers of the same
// producer id are answered in one response marker (Kafka keys its answer by producer id).

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.WriteTxnMarkers, 1, 2, (*Handler).handleWriteTxnMarkers) }

// markerTimeout is Kafka's request.timeout.ms default, how long a marker waits for replication.
const markerTimeout = 30 * time.Second

func (h *Handler) handleWriteTxnMarkers(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)

	// written is a marker appended to a partition: where its answer goes, and what to wait on.
	type written struct {
		marker, topic, part int
		p                   *partition.Partition
		last                int64
		commit              bool
		producerID          int64
	}
	var appended []written
	byProducer := map[int64]int{}
	toSync := map[*log.Syncer][]int{} // syncer -> indexes into appended
	for _, rm := range r.Markers {
		mi, ok := byProducer[rm.ProducerID]
		if !ok {
			mi = len(resp.Markers)
			byProducer[rm.ProducerID] = mi
			m := kmsg.NewWriteTxnMarkersResponseMarker()
			m.ProducerID = rm.ProducerID
			resp.Markers = append(resp.Markers, m)
		}
		tv := int16(0)
		if r.Version >= 2 {
			tv = int16(rm.TransactionVersion)
		}
		marker := record.Marker{ProducerID: rm.ProducerID, ProducerEpoch: rm.ProducerEpoch, Commit: rm.Committed,
			CoordinatorEpoch: rm.CoordinatorEpoch}
		for _, rt := range rm.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = rt.Topic
			ti := len(resp.Markers[mi].Topics)
			for _, index := range rt.Partitions {
				sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = index
				p := h.parts.Get(rt.Topic, index)
				var err error
				if p == nil {
					err = fmt.Errorf("%s-%d has no replica here: %w", rt.Topic, index, kerr.UnknownTopicOrPartition)
				} else {
					var res partition.AppendResult
					res, err = p.WriteTxnMarker(marker, tv)
					if err == nil {
						w := written{marker: mi, topic: ti, part: len(st.Partitions), p: p, last: res.LastOffset,
							commit: rm.Committed, producerID: rm.ProducerID}
						if s := p.AckSyncer(); s != nil {
							toSync[s] = append(toSync[s], len(appended))
						}
						appended = append(appended, w)
					}
				}
				if err != nil {
					h.log.Debug("transaction marker not written", "topic", rt.Topic, "partition", index, "producer", rm.ProducerID, "err", err)
				}
				sp.ErrorCode = errorCode(err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Markers[mi].Topics = append(resp.Markers[mi].Topics, st)
		}
	}
	code := func(w written) *int16 {
		return &resp.Markers[w.marker].Topics[w.topic].Partitions[w.part].ErrorCode
	}
	for syncer, idx := range toSync {
		if err := syncer.Sync(); err != nil {
			err = fmt.Errorf("fsync transaction markers: %v: %w", err, kerr.KafkaStorageError)
			h.log.Error("transaction markers not durable", "err", err)
			for _, i := range idx {
				*code(appended[i]) = errorCode(err)
			}
		}
	}
	if len(appended) > 0 {
		wctx, cancel := context.WithTimeout(ctx, markerTimeout)
		for _, w := range appended {
			if *code(w) != 0 {
				continue
			}
			if err := w.p.WaitReplicated(wctx, w.last); err != nil {
				h.log.Debug("transaction marker not replicated", "err", err)
				*code(w) = errorCode(err)
				continue
			}
			if w.p.Topic == metadata.ConsumerOffsetsTopic && h.groups != nil {
				h.groups.CompleteTxn(w.p.Index, w.producerID, w.commit)
			}
		}
		cancel()
	}
	return resp, nil
}
