package metrics

import (
	"context"
	"io"
	"maps"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

// batch encodes a v2 record batch of n records (uncompressed).
func batch(n int) []byte {
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), NumRecords: int32(n), ProducerID: -1, ProducerEpoch: -1}
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("v")}
		recs = r.AppendTo(recs)
	}
	b.Records = recs
	enc := b.AppendTo(nil)
	// Length is everything after the length field.
	l := len(enc) - 12
	enc[8], enc[9], enc[10], enc[11] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
	return enc
}

func TestCountRecords(t *testing.T) {
	two := append(batch(3), batch(4)...)
	for _, c := range []struct {
		b    []byte
		want int
	}{{nil, 0}, {batch(1), 1}, {batch(5), 5}, {two, 7}, {two[:len(two)-3], 7}, {[]byte{1, 2, 3}, 0}} {
		if got := countRecords(c.b); got != c.want {
			t.Errorf("countRecords(%d bytes) = %d, want %d", len(c.b), got, c.want)
		}
	}
}

// answerProduce answers every produce partition with the error code its partition number names
// (0 = success).
type answerProduce struct{ server.Handler }

func (answerProduce) Handle(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, int16(rp.Partition)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func produceReq(topic string, parts map[int32][]byte) *server.Request {
	r := kmsg.NewPtrProduceRequest()
	r.Version, r.Acks = 9, -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range int32(200) {
		if b, ok := parts[p]; ok {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = p, b
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	r.Topics = append(r.Topics, rt)
	return &server.Request{Key: r.Key(), Version: r.Version, Msg: r}
}

// Produce requests count bytes and messages in per topic and for all topics, failures the way
// Kafka counts them, and Totals and Handler show them.
func TestProduceTopicMetrics(t *testing.T) {
	m := New()
	h := m.Instrument(answerProduce{})
	ok, big := batch(3), batch(2)
	for _, req := range []*server.Request{
		produceReq("a", map[int32][]byte{0: ok}),
		produceReq("a", map[int32][]byte{0: ok, codeMessageTooLarge: big, codeNotLeader: ok, 87 /* INVALID_RECORD */ : ok}),
		produceReq("b", map[int32][]byte{0: ok}),
		produceReq("nope", map[int32][]byte{codeUnknownTopic: ok}),
	} {
		if _, err := h.Handle(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	in, out, msgs := m.Totals()
	if want := float64(3 * len(ok)); in != want || out != 0 || msgs != 9 {
		t.Fatalf("Totals = %v, %v, %v; want %v, 0, 9", in, out, msgs, want)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`kafka_server_brokertopicmetrics_messagesin_total{topic="a"} 6`,
		`kafka_server_brokertopicmetrics_messagesin_total{topic="b"} 3`,
		`kafka_server_brokertopicmetrics_messagesin_total{topic=""} 9`,
		`kafka_server_brokertopicmetrics_totalproducerequests_total{topic="a"} 5`,
		`kafka_server_brokertopicmetrics_totalproducerequests_total{topic=""} 7`,
		`kafka_server_brokertopicmetrics_failedproducerequests_total{topic="a"} 1`,
		`kafka_server_brokertopicmetrics_failedproducerequests_total{topic=""} 1`,
		`kafka_server_brokertopicmetrics_bytesrejected_total{topic="a"} ` + strconv.Itoa(len(big)),
		`kafka_server_brokertopicmetrics_replicationbytesin_total 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `topic="nope"`) {
		t.Error("an unknown topic got series of its own")
	}
	m.SetTopicExists(func(topic string) bool { return topic != "b" })
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body, _ := io.ReadAll(rec.Body); strings.Contains(string(body), `topic="b"`) {
		t.Error("a deleted topic kept its series")
	}
}

// answerFetch answers a fetch with the response it holds.
type answerFetch struct {
	server.Handler
	resp kmsg.Response
}

func (a answerFetch) Handle(context.Context, *server.Request) (kmsg.Response, error) {
	return a.resp, nil
}

func fetchResp(parts ...kmsg.FetchResponseTopicPartition) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.Version = 12
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.Partitions = "a", parts
	r.Topics = append(r.Topics, rt)
	return r
}

func fetchPart(code int16, records []byte) kmsg.FetchResponseTopicPartition {
	p := kmsg.NewFetchResponseTopicPartition()
	p.ErrorCode, p.RecordBatches = code, records
	return p
}

// Fetch answers count bytes out to consumers per topic (from Chunked.RecordBytes as from inline
// record batches), replication bytes out to followers, every partition of a known topic as a
// fetch and the failures Kafka counts; Totals' bytes out moves with them.
func TestFetchTopicMetrics(t *testing.T) {
	m := New()
	consumer := kmsg.NewPtrFetchRequest()
	consumer.Version, consumer.ReplicaID = 12, -1
	follower := kmsg.NewPtrFetchRequest()
	follower.Version, follower.ReplicaID = 12, 2
	follower15 := kmsg.NewPtrFetchRequest()
	follower15.Version, follower15.ReplicaID, follower15.ReplicaState.ID = 15, -1, 3
	chunked := &server.Chunked{
		Response:    fetchResp(fetchPart(0, []byte{}), fetchPart(0, []byte{}), fetchPart(codeOffsetOutOfRange, []byte{})),
		RecordBytes: [][]int64{{100, 0, 0}},
	}
	for _, c := range []struct {
		req  *kmsg.FetchRequest
		resp kmsg.Response
	}{
		{consumer, chunked},
		{consumer, fetchResp(fetchPart(0, batch(2)), fetchPart(87 /* INVALID_RECORD */, []byte{}), fetchPart(codeUnknownTopic, nil))},
		{follower, &server.Chunked{Response: fetchResp(fetchPart(0, []byte{})), RecordBytes: [][]int64{{40}}}},
		{follower15, fetchResp(fetchPart(0, batch(1)))},
	} {
		h := m.Instrument(answerFetch{resp: c.resp})
		if _, err := h.Handle(context.Background(), &server.Request{Key: c.req.Key(), Version: c.req.Version, Msg: c.req}); err != nil {
			t.Fatal(err)
		}
	}
	consumed := 100 + len(batch(2))
	if _, out, _ := m.Totals(); out != float64(consumed) {
		t.Fatalf("Totals bytes out = %v, want %d", out, consumed)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`kafka_server_brokertopicmetrics_bytesout_total{topic="a"} ` + strconv.Itoa(consumed),
		`kafka_server_brokertopicmetrics_bytesout_total{topic=""} ` + strconv.Itoa(consumed),
		`kafka_server_brokertopicmetrics_replicationbytesout_total ` + strconv.Itoa(40+len(batch(1))),
		`kafka_server_brokertopicmetrics_totalfetchrequests_total{topic="a"} 7`, // 3 + 2 (not the unknown topic) + 1 + 1
		`kafka_server_brokertopicmetrics_failedfetchrequests_total{topic="a"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// errorCounts counts codes as Kafka's errorCounts: per partition for produce, top level and
// per partition for fetch, top level for group calls, every ErrorCode field elsewhere.
func TestErrorCounts(t *testing.T) {
	produce := kmsg.NewPtrProduceResponse()
	pt := kmsg.NewProduceResponseTopic()
	for _, code := range []int16{0, 0, 6} {
		pp := kmsg.NewProduceResponseTopicPartition()
		pp.ErrorCode = code
		pt.Partitions = append(pt.Partitions, pp)
	}
	produce.Topics = append(produce.Topics, pt)
	fetch := fetchResp(fetchPart(0, nil), fetchPart(1, nil))
	join := kmsg.NewPtrJoinGroupResponse()
	join.ErrorCode = 79 // MEMBER_ID_REQUIRED
	create := kmsg.NewPtrCreateTopicsResponse()
	for _, code := range []int16{36, 0} {
		ct := kmsg.NewCreateTopicsResponseTopic()
		ct.ErrorCode = code
		create.Topics = append(create.Topics, ct)
	}
	// OffsetFetch v8, one group of two partitions: Kafka 4.4 counts 3 NONE (the group's code and
	// its partitions', not the top-level one; bench/errorref); v7: the top level and the partitions.
	offsets := func(version int16) *kmsg.OffsetFetchResponse {
		r := kmsg.NewPtrOffsetFetchResponse()
		r.Version = version
		if version >= 8 {
			g := kmsg.NewOffsetFetchResponseGroup()
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, 2)
			g.Topics = append(g.Topics, gt)
			r.Groups = append(r.Groups, g)
			return r
		}
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Partitions = make([]kmsg.OffsetFetchResponseTopicPartition, 2)
		r.Topics = append(r.Topics, ot)
		return r
	}
	for _, c := range []struct {
		resp kmsg.Response
		want map[int16]int
	}{
		{produce, map[int16]int{0: 2, 6: 1}},
		{offsets(8), map[int16]int{0: 3}},
		{offsets(7), map[int16]int{0: 3}},
		{&server.Chunked{Response: fetch}, map[int16]int{0: 2, 1: 1}},
		{join, map[int16]int{79: 1}},
		{create, map[int16]int{36: 1, 0: 1}},
	} {
		got := map[int16]int{}
		for _, cc := range errorCounts(c.resp, nil) {
			got[cc.code] += cc.n
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("errorCounts(%T) = %v, want %v", c.resp, got, c.want)
		}
	}
}
