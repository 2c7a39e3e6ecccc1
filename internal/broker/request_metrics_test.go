package broker

import (
	"context"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scrape parses a broker's /metrics.
func scrape(t *testing.T, b *Broker) promFamilies {
	t.Helper()
	return scrapeAddr(t, b.HTTPAddr().String())
}

// scrapeAddr parses /metrics at addr (host:port), failing the test when it is not the
// Prometheus text format.
func scrapeAddr(t *testing.T, addr string) promFamilies {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return families
}

type promFamilies map[string]*dto.MetricFamily

// matching is the series of family name whose labels include labels.
func (f promFamilies) matching(name string, labels map[string]string) []*dto.Metric {
	fam, ok := f[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range fam.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// sum is the sum of the counters or gauges of name whose labels include labels.
func (f promFamilies) sum(name string, labels map[string]string) float64 {
	var s float64
	for _, m := range f.matching(name, labels) {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return s
}

// summary is the sample count and sum of the summary series of name with labels.
func (f promFamilies) summary(name string, labels map[string]string) (count uint64, sum float64) {
	for _, m := range f.matching(name, labels) {
		count += m.GetSummary().GetSampleCount()
		sum += m.GetSummary().GetSampleSum()
	}
	return count, sum
}

// countRequests is a franz-go hook counting, by API key, the requests a client got answers to.
type countRequests struct{ n [128]atomic.Int64 }

func (c *countRequests) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if e2e.Err() == nil && key >= 0 && int(key) < len(c.n) {
		c.n[key].Add(1)
	}
}

// kgoFetchVersion is the Fetch version cl sends to the broker: the highest both support.
func kgoFetchVersion(t *testing.T, ctx context.Context, cl *kgo.Client) string {
	t.Helper()
	versions, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions.Sorted() {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		if max, ok := v.KeyMaxVersion(kmsg.Fetch.Int16()); ok {
			return strconv.Itoa(int(min(max, kmsg.NewPtrFetchRequest().MaxVersion())))
		}
	}
	t.Fatal("the broker lists no Fetch version")
	return ""
}

var requestTimeNames = []string{"requestqueuetimems", "localtimems", "remotetimems", "responsequeuetimems", "responsesendtimems"}

// TestKafkaRequestMetrics: Kafka's RequestMetrics and the fetch side of BrokerTopicMetrics
// count what a real franz-go client did: its produce requests (and their NONE codes), its
// fetches under Fetch and FetchConsumer with the bytes it received as bytes out, the error
// codes of a fetch past the log end, a produce to a partition that does not exist and a
// metadata request for an unknown topic; each request's time components add up to its total
// time.
func TestKafkaRequestMetrics(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := client(t, b)
	created, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, nil, "rm")
	if err != nil {
		t.Fatal(err)
	}
	before := scrape(t, b)
	delta := func(after promFamilies, name string, labels map[string]string) float64 {
		return after.sum(name, labels) - before.sum(name, labels)
	}

	// Produce: five records, one request each.
	hook := &countRequests{}
	p := client(t, b, kgo.DefaultProduceTopic("rm"), kgo.WithHooks(hook))
	for i := range 5 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produced := float64(hook.n[kmsg.Produce.Int16()].Load())
	if produced < 5 {
		t.Fatalf("the producer's hook saw %v produce answers for 5 records", produced)
	}

	// Fetch: the whole log, then a long poll at its end, then past its end.
	fetch := func(offset int64, wait int32) *kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, wait, 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "rm", created.ID // the client sends the version it and the broker share (v13+: by id)
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		return &resp.Topics[0].Partitions[0]
	}
	all := fetch(0, 0)
	if all.ErrorCode != 0 || len(all.RecordBatches) == 0 {
		t.Fatalf("fetch from 0: error %d, %d bytes", all.ErrorCode, len(all.RecordBatches))
	}
	if poll := fetch(all.HighWatermark, 20); poll.ErrorCode != 0 || len(poll.RecordBatches) != 0 {
		t.Fatalf("long poll at the end: error %d, %d bytes", poll.ErrorCode, len(poll.RecordBatches))
	}
	if past := fetch(all.HighWatermark+100, 0); past.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: error %d", past.ErrorCode)
	}

	// Errors: a produce to partition 7 of a one-partition topic, metadata for an unknown topic.
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = 1, 5000
	prt := kmsg.NewProduceRequestTopic()
	prt.Topic = "rm"
	prp := kmsg.NewProduceRequestTopicPartition()
	prp.Partition = 7
	prt.Partitions = append(prt.Partitions, prp)
	pr.Topics = append(pr.Topics, prt)
	presp, err := pr.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if c := presp.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to partition 7: error %d", c)
	}
	mr := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("no-such-topic")
	mr.Topics = append(mr.Topics, mt)
	mr.AllowAutoTopicCreation = false
	if _, err := mr.RequestWith(ctx, admin); err != nil {
		t.Fatal(err)
	}

	waitMetric := func(what string, ok func(promFamilies) bool) promFamilies {
		t.Helper()
		return waitScrape(t, b, what, ok)
	}
	type want struct {
		name   string
		labels map[string]string
		want   float64
	}
	wants := []want{
		{"kafka_network_requestmetrics_requests_total", map[string]string{"request": "Produce"}, produced + 1},
		{"kafka_network_requestmetrics_errors_total", map[string]string{"request": "Produce", "error": "NONE"}, produced},
		{"kafka_network_requestmetrics_errors_total", map[string]string{"request": "Produce", "error": "UNKNOWN_TOPIC_OR_PARTITION"}, 1},
		{"kafka_network_requestmetrics_requests_total", map[string]string{"request": "Fetch"}, 3},
		{"kafka_network_requestmetrics_requests_total", map[string]string{"request": "FetchConsumer"}, 3},
		{"kafka_network_requestmetrics_requests_total", map[string]string{"request": "FetchFollower"}, 0},
		{"kafka_network_requestmetrics_errors_total", map[string]string{"request": "Fetch", "error": "NONE"}, 5}, // 3 top-level, 2 partitions
		{"kafka_network_requestmetrics_errors_total", map[string]string{"request": "Fetch", "error": "OFFSET_OUT_OF_RANGE"}, 1},
		{"kafka_network_requestmetrics_errors_total", map[string]string{"request": "FetchConsumer"}, 0},
		{"kafka_network_requestmetrics_errors_total", map[string]string{"request": "Metadata", "error": "UNKNOWN_TOPIC_OR_PARTITION"}, 1},
		{"kafka_server_brokertopicmetrics_bytesout_total", map[string]string{"topic": "rm"}, float64(len(all.RecordBatches))},
		{"kafka_server_brokertopicmetrics_bytesout_total", map[string]string{"topic": ""}, float64(len(all.RecordBatches))},
		{"kafka_server_brokertopicmetrics_totalfetchrequests_total", map[string]string{"topic": "rm"}, 3},
		{"kafka_server_brokertopicmetrics_failedfetchrequests_total", map[string]string{"topic": "rm"}, 0}, // OFFSET_OUT_OF_RANGE is not a failure
		{"kafka_server_brokertopicmetrics_replicationbytesout_total", nil, 0},
		{"kafka_server_brokertopicmetrics_totalproducerequests_total", map[string]string{"topic": "rm"}, produced},
	}
	// A request is observed once its response is written, so just after the client read it, and
	// its counters, error counts and times are added one after another: wait until every count
	// this test expects has arrived (then check that none went past it) and every time summary
	// has a sample per request.
	timesComplete := func(f promFamilies) bool {
		for _, req := range []string{"Produce", "Fetch", "FetchConsumer", "Metadata"} {
			l := map[string]string{"request": req}
			n, _ := f.summary("kafka_network_requestmetrics_totaltimems", l)
			if n != uint64(f.sum("kafka_network_requestmetrics_requests_total", l)) {
				return false
			}
			for _, name := range requestTimeNames {
				if c, _ := f.summary("kafka_network_requestmetrics_"+name, l); c != n {
					return false
				}
			}
		}
		return true
	}
	closed := waitMetric("the requests to be observed", func(f promFamilies) bool {
		for _, c := range wants {
			if delta(f, c.name, c.labels) < c.want {
				return false
			}
		}
		return timesComplete(f)
	})
	if v := kgoFetchVersion(t, ctx, admin); len(closed.matching("kafka_network_requestmetrics_requests_total", map[string]string{"request": "Fetch", "version": v})) != 1 {
		t.Errorf("no requests_total series for Fetch version %s", v)
	}

	for _, c := range wants {
		if got := delta(closed, c.name, c.labels); got != c.want {
			t.Errorf("%s%v rose by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The whole log went out once: the bytes out are the log's bytes.
	if size := closed.sum("kafka_log_log_size", map[string]string{"topic": "rm", "partition": "0"}); size != float64(len(all.RecordBatches)) {
		t.Errorf("log size %v, fetched %d bytes from offset 0", size, len(all.RecordBatches))
	}

	// Times: one sample per request, the components add up to the total.
	for _, req := range []string{"Produce", "Fetch", "FetchConsumer", "Metadata"} {
		l := map[string]string{"request": req}
		n, total := closed.summary("kafka_network_requestmetrics_totaltimems", l)
		if want := uint64(closed.sum("kafka_network_requestmetrics_requests_total", l)); n != want {
			t.Errorf("totaltimems{request=%q} has %d samples, %d requests", req, n, want)
		}
		var parts float64
		for _, name := range requestTimeNames {
			c, s := closed.summary("kafka_network_requestmetrics_"+name, l)
			if c != n {
				t.Errorf("%s{request=%q} has %d samples, totaltimems %d", name, req, c, n)
			}
			parts += s
		}
		if math.Abs(parts-total) > 1e-6*math.Max(1, total) {
			t.Errorf("%s: the time components sum to %v ms, the total time to %v ms", req, parts, total)
		}
		var quantiles []float64
		for _, m := range closed.matching("kafka_network_requestmetrics_totaltimems", l) {
			for _, q := range m.GetSummary().GetQuantile() {
				quantiles = append(quantiles, q.GetQuantile())
			}
		}
		if !slices.Equal(quantiles, []float64{0.5, 0.75, 0.95, 0.98, 0.99, 0.999}) {
			t.Errorf("totaltimems{request=%q} has the quantiles %v, not Kafka's", req, quantiles)
		}
	}
	if _, remote := closed.summary("kafka_network_requestmetrics_remotetimems", map[string]string{"request": "FetchConsumer"}); remote <= 0 {
		t.Errorf("the long poll's wait is not remote time: remotetimems sum %v", remote)
	}
	if _, remote := closed.summary("kafka_network_requestmetrics_remotetimems", map[string]string{"request": "Metadata"}); remote != 0 {
		t.Errorf("metadata waited on nothing, remotetimems sum %v", remote)
	}
}

// TestFollowerFetchMetrics: in a three-node cluster, the leader of a partition replicated three
// times counts its followers' fetches as FetchFollower (and Fetch) requests, and the bytes they
// fetched as replication bytes out, not bytes out: at least twice its log once both followers
// caught up, as each follower counts its log's bytes as replication bytes in.
func TestFollowerFetchMetrics(t *testing.T) {
	brokers := testCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := clusterClient(t, brokers, kgo.DefaultProduceTopic("rf"))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "rf"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	md, err := adm.Metadata(ctx, "rf")
	if err != nil {
		t.Fatal(err)
	}
	leaderID := md.Topics["rf"].Partitions[0].Leader
	var leader *Broker
	var followers []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == leaderID {
			leader = b
		} else {
			followers = append(followers, b)
		}
	}
	if leader == nil || len(followers) != 2 {
		t.Fatalf("leader %d not among the nodes", leaderID)
	}
	part := map[string]string{"topic": "rf", "partition": "0"}
	var size float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		f := scrape(t, leader)
		size = f.sum("kafka_log_log_size", part)
		caughtUp := size > 0
		for _, fb := range followers {
			if scrape(t, fb).sum("kafka_log_log_size", part) != size {
				caughtUp = false
			}
		}
		// At least twice the log: a follower whose fetch answer was lost (a timeout under
		// load) fetches the same bytes again.
		if caughtUp && f.sum("kafka_server_brokertopicmetrics_replicationbytesout_total", nil) >= 2*size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicationbytesout_total on the leader is %v, want at least twice its log of %v bytes",
				f.sum("kafka_server_brokertopicmetrics_replicationbytesout_total", nil), size)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f := scrape(t, leader)
	follower := f.sum("kafka_network_requestmetrics_requests_total", map[string]string{"request": "FetchFollower"})
	if follower < 2 {
		t.Errorf("the leader counted %v FetchFollower requests from two followers", follower)
	}
	if all := f.sum("kafka_network_requestmetrics_requests_total", map[string]string{"request": "Fetch"}); all < follower {
		t.Errorf("Fetch %v < FetchFollower %v: a follower's fetch is a Fetch too", all, follower)
	}
	if out := f.sum("kafka_server_brokertopicmetrics_bytesout_total", map[string]string{"topic": "rf"}); out != 0 {
		t.Errorf("bytesout_total{topic=rf} = %v on the leader with no consumer", out)
	}
	if n := f.sum("kafka_server_brokertopicmetrics_totalfetchrequests_total", map[string]string{"topic": "rf"}); n < 2 {
		t.Errorf("totalfetchrequests_total{topic=rf} = %v on the leader of two followers", n)
	}
	for _, fb := range followers {
		if in := scrape(t, fb).sum("kafka_server_brokertopicmetrics_replicationbytesin_total", nil); in != size {
			t.Errorf("node %d: replicationbytesin_total %v, its log %v", fb.cfg.NodeID, in, size)
		}
	}
}

// waitScrape scrapes b until ok holds, for up to 10 s.
func waitScrape(t *testing.T, b *Broker, what string, ok func(promFamilies) bool) promFamilies {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		f := scrape(t, b)
		if ok(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConnectionMetrics: a listener's connection count, accepted and closed totals follow the
// TCP connections opened to it and closed.
func TestConnectionMetrics(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	l := map[string]string{"listener": "PLAINTEXT", "networkProcessor": "0"}
	before := scrape(t, b)
	delta := func(f promFamilies, name string) float64 { return f.sum(name, l) - before.sum(name, l) }
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitScrape(t, b, "three connections open", func(f promFamilies) bool {
		return delta(f, "kafka_server_socket_server_metrics_connection_count") == 3 &&
			delta(f, "kafka_server_socket_server_metrics_connection_creation_total") == 3 &&
			delta(f, "kafka_server_socket_server_metrics_connection_close_total") == 0
	})
	conns[0].Close()
	conns[1].Close()
	waitScrape(t, b, "two of them closed", func(f promFamilies) bool {
		return delta(f, "kafka_server_socket_server_metrics_connection_count") == 1 &&
			delta(f, "kafka_server_socket_server_metrics_connection_creation_total") == 3 &&
			delta(f, "kafka_server_socket_server_metrics_connection_close_total") == 2
	})
}
