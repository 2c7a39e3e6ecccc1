package handler

// Fetch: v4-17.
//
// Record data goes from the segment files to the socket with sendfile (encodeFetch), never
// through user space.
//
// Reads whole batches below the high watermark (or the last stable offset for read_committed,
// with the aborted transactions of the range read: AbortedTransactions, null for
// read_uncommitted, followers and partition errors, as Kafka answers),
// bounded by each partition's max bytes and the response's max bytes; the first batch returned is
// sent whole even when it is larger (KIP-74). When fewer than min bytes are ready, the request
// waits up to max wait for any of its partitions to receive data, then answers with what it has.
//
// Fetch sessions (v7+, KIP-227) are kept in a broker-wide cache (fetch_session.go); an
// incremental fetch reads, and waits on, every partition of its session, and answers with the
// partitions that changed. v13+ names topics by id. v9+ CurrentLeaderEpoch is checked
// (FENCED/UNKNOWN_LEADER_EPOCH).
//
// A fetch from a follower replica (v15+ ReplicaState.ID >= 0; ReplicaID before) reads up to the
// log end offset, not the high watermark, and reports its fetch offset to the leader
// (partition.FollowerFetched), which answers DivergingEpoch when the follower's log stopped
// matching (then nothing is read) and moves the high watermark. Only the leader serves either
// kind of fetch: a non-leader answers NOT_LEADER_OR_FOLLOWER, with CurrentLeader and the leader's
// endpoint (KIP-951) when the metadata knows it; so does FENCED_LEADER_EPOCH.
//
// Replication quota (KIP-73, Options.LeaderQuota): a follower not in the ISR gets no records for
// a throttled partition while the leader quota is exceeded (ReplicaManager.shouldLeaderThrottle),
// and the bytes of every throttled partition of a follower's answer are recorded against it.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.Fetch, 4, 17, (*Handler).handleFetch) }

func (h *Handler) handleFetch(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.FetchRequest)
	fc, code := h.sessions.newContext(r)
	if code != 0 {
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	topics := groupFetchItems(fc.items, fc.byID)

	deadline := time.Now().Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	var wake chan struct{}
	var unwatch []func()
	defer func() {
		for _, u := range unwatch {
			u()
		}
	}()
	for {
		resp, secs, size, stop, parts := h.fetchOnce(req, r, topics)
		if stop || size >= int64(r.MinBytes) || r.MaxWaitMillis <= 0 || !time.Now().Before(deadline) {
			if q := h.opts.LeaderQuota; q != nil && fetchReplicaID(r) >= 0 {
				recordThrottled(q, resp, secs)
			}
			resp.SessionID, secs = h.sessions.finish(fc, resp, secs)
			return &server.Chunked{Response: resp, Chunks: encodeFetch(resp, secs), RecordBytes: sectionBytes(secs)}, nil
		}
		if wake == nil {
			// Watch first, then read again: data that arrived in between is not missed.
			wake = make(chan struct{}, 1)
			for _, p := range parts {
				unwatch = append(unwatch, p.Watch(wake))
			}
			continue
		}
		waiting := time.Now()
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		req.Waited(time.Since(waiting)) // the long poll: Kafka's remote time
	}
}

// fetchTopic is the partitions of one topic that a fetch reads, in fetch order.
type fetchTopic struct {
	name  string
	id    [16]byte
	items []fetchItem
}

// groupFetchItems groups items by topic, topics in the order of their first partition.
func groupFetchItems(items []fetchItem, byID bool) []fetchTopic {
	var out []fetchTopic
	at := map[sessionKey]int{}
	for _, it := range items {
		k := sessionKey{topic: it.topic}
		if byID {
			k = sessionKey{id: it.id}
		}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, fetchTopic{name: it.topic, id: it.id})
		}
		out[i].items = append(out[i].items, it)
	}
	return out
}

// fetchOnce builds a response from what is readable now: the record data of partition
// [topic][partition] is in secs, as segment file sections. size counts record bytes; stop is true
// when a partition error means the client needs the answer at once; parts are the partitions read.
func (h *Handler) fetchOnce(req *server.Request, r *kmsg.FetchRequest, topics []fetchTopic) (resp *kmsg.FetchResponse, secs [][][]log.Section, size int64, stop bool, parts []*partition.Partition) {
	resp = r.ResponseKind().(*kmsg.FetchResponse)
	im := h.meta.Image()
	replicaID, brokerEpoch := fetchReplicaID(r), int64(-1)
	if r.Version >= 15 {
		brokerEpoch = r.ReplicaState.Epoch
	}
	leaders := map[int32]bool{} // brokers named in CurrentLeader, for resp.Brokers
	readCommitted := r.IsolationLevel == 1
	budget := int64(r.MaxBytes)
	if r.MaxBytes <= 0 {
		budget = 1<<31 - 1
	}
	secs = make([][][]log.Section, len(topics))
	for ti, rt := range topics {
		secs[ti] = make([][]log.Section, len(rt.items))
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.name, rt.id
		var t *metadata.Topic
		var ok bool
		var unknown error
		if r.Version >= 13 {
			t, ok = im.TopicByID(rt.id)
			if ok {
				st.Topic = t.Name
			} else {
				unknown = kerr.UnknownTopicID
			}
		} else {
			t, ok = im.Topic(rt.name)
			if !ok {
				unknown = kerr.UnknownTopicOrPartition
			}
		}
		for pi, rp := range rt.items {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{} // empty, not null: librdkafka rejects a null record set
			if unknown != nil {
				sp.ErrorCode = unknown.(*kerr.Error).Code
				stop = true
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := h.leaderPartition(t, rp.partition)
			if err == nil {
				err = p.CheckLeaderEpoch(rp.leaderEpoch)
			}
			var div *partition.DivergingEpoch
			if err == nil && replicaID >= 0 {
				div, err = p.FollowerFetched(partition.FollowerFetch{ReplicaID: replicaID, BrokerEpoch: brokerEpoch,
					FetchOffset: rp.fetchOffset, LastFetchedEpoch: rp.lastFetchedEpoch, CurrentLeaderEpoch: rp.leaderEpoch, Now: time.Now()})
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				if sp.ErrorCode == kerr.OffsetOutOfRange.Code && p != nil {
					// A follower behind the log start (a new replica of a partition whose log
					// start moved) restarts its log there (Kafka's fetchOffsetAndTruncate).
					sp.HighWatermark, sp.LogStartOffset = p.HighWatermark(), p.LogStartOffset()
				}
				if sp.ErrorCode == kerr.NotLeaderForPartition.Code || sp.ErrorCode == kerr.FencedLeaderEpoch.Code {
					if mp, ok := metaPartition(t, rp.partition); ok && mp.Leader >= 0 {
						sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = mp.Leader, mp.LeaderEpoch
						leaders[mp.Leader] = true
					}
				}
				stop = true
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			parts = append(parts, p)
			if div != nil {
				sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = div.Epoch, div.EndOffset
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
				stop = true
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.HighWatermark = p.HighWatermark()
			sp.LastStableOffset = p.LastStableOffset()
			sp.LogStartOffset = p.LogStartOffset()
			// Kafka's FetchDataInfo: a consumer's read_committed answer lists the aborted
			// transactions of what it read (empty, not null, when there are none); others
			// (read_uncommitted, followers, errors) answer null.
			committed := readCommitted && replicaID < 0
			if committed {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			limit := int64(rp.maxBytes)
			if limit > budget {
				limit = budget
			}
			if !h.leaderThrottled(t, rp.partition, replicaID) && (limit > 0 || size == 0) {
				var ps []log.Section
				var err error
				switch {
				case replicaID >= 0:
					ps, err = p.ReadReplica(rp.fetchOffset, int32(limit), size == 0)
				case committed:
					var aborted []log.AbortedTxn
					ps, aborted, err = p.ReadCommitted(rp.fetchOffset, int32(limit), size == 0)
					for _, a := range aborted {
						at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
						at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
						sp.AbortedTransactions = append(sp.AbortedTransactions, at)
					}
				default:
					ps, err = p.ReadSections(rp.fetchOffset, int32(limit), false, size == 0)
				}
				if err != nil {
					sp.ErrorCode = errorCode(err)
					sp.AbortedTransactions = nil
					stop = true
				}
				secs[ti][pi] = ps
				for _, s := range ps {
					size += s.Len
					budget -= s.Len
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Version >= 16 {
		resp.Brokers = h.leaderEndpoints(req, im, leaders, resp.Brokers)
	}
	return resp, secs, size, stop, parts
}

// metaPartition is partition index of t in the metadata.
func metaPartition(t *metadata.Topic, index int32) (metadata.Partition, bool) {
	if t == nil || index < 0 || int(index) >= len(t.Partitions) {
		return metadata.Partition{}, false
	}
	return t.Partitions[index], true
}

// leaderEndpoints appends to dst the endpoints of the brokers in ids, by id (KIP-951: the
// leaders a NOT_LEADER_OR_FOLLOWER answer names, so the client moves without a metadata round
// trip).
func (h *Handler) leaderEndpoints(req *server.Request, im *metadata.Image, ids map[int32]bool, dst []kmsg.FetchResponseBroker) []kmsg.FetchResponseBroker {
	sorted := make([]int32, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, id := range sorted {
		if b, ok := im.Broker(id); ok {
			e := h.brokerEndpoint(req, b)
			fb := kmsg.NewFetchResponseBroker()
			fb.NodeID, fb.Host, fb.Port = id, e.Host, e.Port
			if b.Rack != "" {
				fb.Rack = kmsg.StringPtr(b.Rack)
			}
			dst = append(dst, fb)
		}
	}
	return dst
}

// leaderPartition returns the local leader replica of a partition of t, or the Kafka error.
func (h *Handler) leaderPartition(t *metadata.Topic, index int32) (*partition.Partition, error) {
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, fmt.Errorf("%s-%d: %w", t.Name, index, kerr.UnknownTopicOrPartition)
	}
	p := h.parts.Get(t.Name, index)
	if p == nil || t.Partitions[index].Leader != h.opts.NodeID || !p.IsLeader() {
		return nil, fmt.Errorf("%s-%d: %w", t.Name, index, kerr.NotLeaderForPartition)
	}
	return p, nil
}

// fetchReplicaID is the replica id of a follower's fetch (v15+ ReplicaState, the top-level
// ReplicaID before), -1 for a consumer's.
func fetchReplicaID(r *kmsg.FetchRequest) int32 {
	if r.Version >= 15 {
		return r.ReplicaState.ID
	}
	return r.ReplicaID
}

// leaderThrottled reports whether follower replicaID gets no records of partition index of t
// now: the leader quota holds it back (throttled, exceeded, the follower not in the ISR, as the
// metadata has it).
func (h *Handler) leaderThrottled(t *metadata.Topic, index, replicaID int32) bool {
	if replicaID < 0 || h.opts.LeaderQuota == nil {
		return false
	}
	mp, _ := metaPartition(t, index)
	return h.opts.LeaderQuota.Holds(t.Name, index, slices.Contains(mp.ISR, replicaID))
}

// recordThrottled records against the leader quota the record bytes of the throttled partitions
// of a follower's answer, in-sync followers' included (Kafka's sizeOfThrottledPartitions: all
// replication traffic of the throttled partitions counts).
func recordThrottled(q ReplicationQuota, resp *kmsg.FetchResponse, secs [][][]log.Section) {
	var n int64
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		for pi := range rt.Partitions {
			if ti >= len(secs) || pi >= len(secs[ti]) || !q.IsThrottled(rt.Topic, rt.Partitions[pi].Partition) {
				continue
			}
			for _, s := range secs[ti][pi] {
				n += s.Len
			}
		}
	}
	q.Record(n)
}
