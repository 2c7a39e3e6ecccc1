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
	if p, ok := req.Msg.(*kmsg.ProduceRequest); ok {
		pr, _ := resp.(*kmsg.ProduceResponse) // nil for acks=0
		i.m.produced(p, pr)
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
