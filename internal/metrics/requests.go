package metrics

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

// Instrument wraps h so that every request is counted and timed, and produce and fetch requests
// feed the per-topic BrokerTopicMetrics. It reads requests and responses only: the request path
// itself carries no metrics code.
func (m *Metrics) Instrument(h server.Handler) server.Handler { return &instrumented{Handler: h, m: m} }

type instrumented struct {
	server.Handler
	m *Metrics
}

func (i *instrumented) Handle(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	api := apiName(req.Key)
	start := time.Now()
	resp, err := i.Handler.Handle(ctx, req)
	i.m.requestSeconds.WithLabelValues(api).Observe(time.Since(start).Seconds())
	i.m.requests.WithLabelValues(api).Inc()
	if err != nil {
		i.m.requestErrors.WithLabelValues(api).Inc()
	}
	switch r := req.Msg.(type) {
	case *kmsg.ProduceRequest:
		pr, _ := resp.(*kmsg.ProduceResponse) // nil for acks=0
		i.m.produced(r, pr)
	case *kmsg.FetchRequest:
		i.m.fetched(fetchFromReplica(r), resp)
	}
	return resp, err
}

// Error codes that Kafka's ReplicaManager does not count as failed produce requests
// (appendToLocalLog's first catch: expected outcomes of a healthy cluster or a bad client),
// and the ones that count as rejected bytes.
const (
	codeCorruptMessage       = 2
	codeUnknownTopic         = 3
	codeNotLeader            = 6
	codeRequestTimedOut      = 7
	codeMessageTooLarge      = 10
	codeInvalidTopic         = 17
	codeRecordListTooLarge   = 18
	codeTopicAuthFailed      = 29
	codeKafkaStorageError    = 56
	codeFencedLeaderEpoch    = 74
	codeUnknownLeaderEpoch   = 75
	codeOffsetOutOfRange     = 1
	codeReplicaNotAvailable  = 9
	codeUnknownTopicID       = 100
	codeInconsistentTopicID  = 103
	codeOffsetMovedToTiered  = 109
	codeNotLeaderOrFollowerK = codeNotLeader
)

// fetchFailed reports whether a fetch partition's code counts as a failed fetch: Kafka's
// ReplicaManager.readFromLocalLog counts every error but these (expected outcomes: a moved
// leader, a deleted topic, a stale epoch, a consumer past the log, a failed log dir).
func fetchFailed(code int16) bool {
	switch code {
	case 0, codeUnknownTopic, codeNotLeader, codeUnknownLeaderEpoch, codeFencedLeaderEpoch, codeReplicaNotAvailable,
		codeKafkaStorageError, codeInconsistentTopicID, codeOffsetOutOfRange, codeUnknownTopicID:
		return false
	}
	return true
}

func produceFailed(code int16) bool {
	switch code {
	case 0, codeUnknownTopic, codeNotLeader, codeMessageTooLarge, codeRecordListTooLarge, codeCorruptMessage,
		codeKafkaStorageError, codeRequestTimedOut:
		return false
	}
	return true
}

// topicKnown reports whether a partition's answer shows its topic exists: only then does the
// topic get counters of its own (a client naming topics at random must not grow the registry).
func topicKnown(code int16) bool {
	return code != codeUnknownTopic && code != codeInvalidTopic && code != codeTopicAuthFailed && code != codeUnknownTopicID
}

// produced counts a produce request against BrokerTopicMetrics, partition by partition, with the
// outcome its response reports (resp is nil for acks=0: every partition counts as appended).
// Records are counted from the batch headers, never decoded.
func (m *Metrics) produced(r *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) {
	s := m.topics
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		var st *kmsg.ProduceResponseTopic
		if resp != nil && ti < len(resp.Topics) {
			st = &resp.Topics[ti]
		}
		var ts *topicStats
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			var code int16
			if st != nil && pi < len(st.Partitions) {
				code = st.Partitions[pi].ErrorCode
			}
			var t *topicStats
			if topicKnown(code) && rt.Topic != "" {
				if ts == nil {
					ts = s.topic(rt.Topic)
				}
				t = ts
			}
			s.addTopic(t, tTotalProduce, 1)
			switch {
			case code == 0:
				s.addTopic(t, tBytesIn, int64(len(rp.Records)))
				s.addTopic(t, tMessagesIn, int64(countRecords(rp.Records)))
				m.producedBytes.Add(float64(len(rp.Records)))
			case code == codeMessageTooLarge || code == codeRecordListTooLarge:
				s.addTopic(t, tBytesRejected, int64(len(rp.Records)))
			case produceFailed(code):
				s.addTopic(t, tFailedProduce, 1)
			}
		}
	}
}

// fetched counts a fetch response against BrokerTopicMetrics, partition by partition: every
// partition of a known topic is a fetch request (totalfetchrequests, as Kafka counts the
// partitions it reads for consumers and followers alike), failed ones as fetchFailed says, and
// its record bytes are bytes out (to consumers, per topic) or replication bytes out (to
// follower replicas, all topics only). The bytes of a Chunked answer are its RecordBytes, never
// decoded.
func (m *Metrics) fetched(fromReplica bool, resp kmsg.Response) {
	var recordBytes [][]int64
	if ch, ok := resp.(*server.Chunked); ok {
		resp, recordBytes = ch.Response, ch.RecordBytes
	}
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return // the request failed without an answer
	}
	s := m.topics
	for ti := range fr.Topics {
		rt := &fr.Topics[ti]
		var ts *topicStats
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			if !topicKnown(rp.ErrorCode) {
				continue // Kafka answers these before it reads: no fetch of the partition
			}
			if ts == nil && rt.Topic != "" {
				ts = s.topic(rt.Topic)
			}
			s.addTopic(ts, tTotalFetch, 1)
			if fetchFailed(rp.ErrorCode) {
				s.addTopic(ts, tFailedFetch, 1)
			}
			n := int64(len(rp.RecordBatches))
			if ti < len(recordBytes) && pi < len(recordBytes[ti]) {
				n += recordBytes[ti][pi]
			}
			if n == 0 {
				continue
			}
			if fromReplica {
				s.all.add(tReplicationBytesOut, n)
			} else {
				s.addTopic(ts, tBytesOut, n)
			}
		}
	}
}

// countRecords is the number of records in a produce request's record batches (v2), summed from
// each batch header's record count.
func countRecords(b []byte) int {
	const (
		lengthAt = 8  // baseOffset int64
		magicAt  = 16 // + batchLength int32 + partitionLeaderEpoch int32
		countAt  = 57 // + magic, crc, attributes, lastOffsetDelta, firstTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence
	)
	n := 0
	for len(b) >= countAt+4 {
		size := int(int32(binary.BigEndian.Uint32(b[lengthAt:])))
		if size < countAt+4-12 || b[magicAt] != 2 {
			break
		}
		n += int(int32(binary.BigEndian.Uint32(b[countAt:])))
		if 12+size > len(b) {
			break
		}
		b = b[12+size:]
	}
	return n
}
