package broker

import (
	"context"
	"encoding/binary"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// fetchTester sends Fetch requests of one version to a broker.
type fetchTester struct {
	t       *testing.T
	cl      *kgo.Client
	version int16
	ids     map[string][16]byte
}

func newFetchTester(t *testing.T, b *Broker, version int16, topics map[string]int32) *fetchTester {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), version)
	cl := client(t, b, kgo.MaxVersions(versions))
	adm := kadm.NewClient(cl)
	names := make([]string, 0, len(topics))
	for name, n := range topics {
		names = append(names, name)
		if _, err := adm.CreateTopic(ctx, n, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	td, err := adm.ListTopics(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	ft := &fetchTester{t: t, cl: cl, version: version, ids: map[string][16]byte{}}
	for _, name := range names {
		ft.ids[name] = td[name].ID
	}
	return ft
}

// part is a partition of a fetch request: topic, partition, fetch offset.
type part struct {
	topic     string
	partition int32
	offset    int64
}

func (ft *fetchTester) request(id, epoch int32, add []part, forget []part) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.SessionID, r.SessionEpoch = id, epoch
	r.MaxBytes = 1 << 20
	r.ReplicaID = -1
	for _, p := range add {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = p.topic, ft.ids[p.topic]
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
	}
	for _, p := range forget {
		f := kmsg.NewFetchRequestForgottenTopic()
		f.Topic, f.TopicID = p.topic, ft.ids[p.topic]
		f.Partitions = []int32{p.partition}
		r.ForgottenTopics = append(r.ForgottenTopics, f)
	}
	return r
}

func (ft *fetchTester) fetch(r *kmsg.FetchRequest) *kmsg.FetchResponse {
	ft.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := r.RequestWith(ctx, ft.cl)
	if err != nil {
		ft.t.Fatal(err)
	}
	if resp.Version != ft.version {
		ft.t.Fatalf("fetch answered at v%d, want v%d", resp.Version, ft.version)
	}
	return resp
}

// got lists the partitions of a response as "topic/partition:records", sorted, with the
// partition errors.
func (ft *fetchTester) got(resp *kmsg.FetchResponse) []string {
	ft.t.Helper()
	var out []string
	for _, rt := range resp.Topics {
		name := rt.Topic
		if ft.version >= 13 {
			name = ""
			for n, id := range ft.ids {
				if id == rt.TopicID {
					name = n
				}
			}
		}
		for _, rp := range rt.Partitions {
			s := name + "/" + strconv.Itoa(int(rp.Partition)) + ":" + strconv.Itoa(countRecords(ft.t, rp.RecordBatches))
			if rp.ErrorCode != 0 {
				s += ":" + kerr.ErrorForCode(rp.ErrorCode).Error()
			}
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func countRecords(t *testing.T, batches []byte) int {
	t.Helper()
	n := 0
	for len(batches) >= 61 {
		size := int(binary.BigEndian.Uint32(batches[8:12])) + 12
		if size > len(batches) {
			break
		}
		n += int(binary.BigEndian.Uint32(batches[57:61]))
		batches = batches[size:]
	}
	return n
}

func produceTo(t *testing.T, cl *kgo.Client, topic string, partition int32, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v" + strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFetchSessionless: epoch -1 is a full fetch without a session, whatever the session id
// (kafka-go sends -1/-1); it creates nothing.
func TestFetchSessionless(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	for _, v := range []int16{7, 12, 17} {
		t.Run("v"+strconv.Itoa(int(v)), func(t *testing.T) {
			topic := "sessionless" + strconv.Itoa(int(v))
			ft := newFetchTester(t, b, v, map[string]int32{topic: 1})
			produceTo(t, client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner())), topic, 0, 3)
			for _, id := range []int32{-1, 0, 12345} {
				resp := ft.fetch(ft.request(id, -1, []part{{topic, 0, 0}}, nil))
				if resp.ErrorCode != 0 || resp.SessionID != 0 {
					t.Fatalf("session id %d: error %d, session %d", id, resp.ErrorCode, resp.SessionID)
				}
				if got := ft.got(resp); !equal(got, []string{topic + "/0:3"}) {
					t.Fatalf("session id %d: got %v", id, got)
				}
			}
		})
	}
}

// TestFetchSessionIncremental drives a session through Kafka's rules: a new session at epoch 0,
// incremental fetches that add, update and forget partitions and answer only changed partitions,
// a wrong epoch, an unknown id, and closing with epoch -1. Both for sessions by name (v12) and by
// topic id (v17).
func TestFetchSessionIncremental(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	for _, v := range []int16{12, 17} {
		t.Run("v"+strconv.Itoa(int(v)), func(t *testing.T) {
			ta, tb := "inca"+strconv.Itoa(int(v)), "incb"+strconv.Itoa(int(v))
			ft := newFetchTester(t, b, v, map[string]int32{ta: 2, tb: 1})
			pcl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceTo(t, pcl, ta, 0, 2)

			expect := func(resp *kmsg.FetchResponse, id int32, want ...string) {
				t.Helper()
				if resp.ErrorCode != 0 || resp.SessionID != id {
					t.Fatalf("error %v, session %d (want %d)", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, id)
				}
				got := ft.got(resp)
				sort.Strings(want)
				if !equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			}

			// Epoch 0: a full fetch that creates a session; every partition is answered.
			resp := ft.fetch(ft.request(0, 0, []part{{ta, 0, 0}, {ta, 1, 0}}, nil))
			id := resp.SessionID
			if id <= 0 {
				t.Fatalf("no session created: id %d, error %d", id, resp.ErrorCode)
			}
			expect(resp, id, ta+"/0:2", ta+"/1:0")

			// Epoch 1: the client moves ta/0 past its records; nothing changed, no partitions.
			expect(ft.fetch(ft.request(id, 1, []part{{ta, 0, 2}}, nil)), id)

			// New data on ta/1 only: only ta/1 is answered, though the request names nothing.
			produceTo(t, pcl, ta, 1, 3)
			expect(ft.fetch(ft.request(id, 2, nil, nil)), id, ta+"/1:3")

			// The client moves ta/1 on and adds tb/0: tb/0 is new to the session, so answered;
			// ta/1 has no new data and an unchanged high watermark, so not.
			expect(ft.fetch(ft.request(id, 3, []part{{ta, 1, 3}, {tb, 0, 0}}, nil)), id, tb+"/0:0")

			// Forget ta/0, then write to it: no longer in the session, never answered; ta/1
			// still is.
			expect(ft.fetch(ft.request(id, 4, nil, []part{{ta, 0, 0}})), id)
			produceTo(t, pcl, ta, 0, 1)
			produceTo(t, pcl, ta, 1, 1)
			expect(ft.fetch(ft.request(id, 5, nil, nil)), id, ta+"/1:1")

			// A wrong epoch and an unknown id are top-level errors without topics.
			for _, c := range []struct {
				id, epoch int32
				want      error
			}{{id, 5, kerr.InvalidFetchSessionEpoch}, {id, 9, kerr.InvalidFetchSessionEpoch}, {id + 1, 1, kerr.FetchSessionIDNotFound}} {
				resp := ft.fetch(ft.request(c.id, c.epoch, nil, nil))
				if resp.ErrorCode != c.want.(*kerr.Error).Code || len(resp.Topics) != 0 || resp.SessionID != 0 {
					t.Fatalf("id %d epoch %d: error %v, %d topics, session %d; want %v", c.id, c.epoch, kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics), resp.SessionID, c.want)
				}
			}
			// The failed requests did not consume an epoch.
			expect(ft.fetch(ft.request(id, 6, []part{{ta, 1, 4}}, nil)), id)

			// A session of the other addressing is FETCH_SESSION_TOPIC_ID_ERROR.
			other := int16(17)
			if v >= 13 {
				other = 12
			}
			ot := &fetchTester{t: t, cl: newFetchTester(t, b, other, nil).cl, version: other, ids: ft.ids}
			if resp := ot.fetch(ot.request(id, 7, nil, nil)); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
				t.Fatalf("v%d fetch in a v%d session: error %v", other, v, kerr.ErrorForCode(resp.ErrorCode))
			}

			// Epoch -1 closes the session (and is answered as a sessionless full fetch).
			resp = ft.fetch(ft.request(id, -1, []part{{tb, 0, 0}}, nil))
			expect(resp, 0, tb+"/0:0")
			if resp := ft.fetch(ft.request(id, 7, nil, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("closed session: error %v", kerr.ErrorForCode(resp.ErrorCode))
			}

			// Epoch 0 with a known id replaces that session by a new one.
			id = ft.fetch(ft.request(0, 0, []part{{tb, 0, 0}}, nil)).SessionID
			resp = ft.fetch(ft.request(id, 0, []part{{ta, 1, 0}}, nil))
			if resp.SessionID <= 0 || resp.SessionID == id {
				t.Fatalf("epoch 0 on session %d answered session %d", id, resp.SessionID)
			}
			if resp := ft.fetch(ft.request(id, 1, nil, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("replaced session: error %v", kerr.ErrorForCode(resp.ErrorCode))
			}
		})
	}
}

// TestFetchSessionLongPoll: an incremental fetch that names no partition waits for data on any
// partition of its session and answers with it.
func TestFetchSessionLongPoll(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ft := newFetchTester(t, b, 17, map[string]int32{"poll": 2})
	resp := ft.fetch(ft.request(0, 0, []part{{"poll", 0, 0}, {"poll", 1, 0}}, nil))
	id := resp.SessionID
	if id <= 0 {
		t.Fatalf("no session: %d", id)
	}
	r := ft.request(id, 1, nil, nil)
	r.MaxWaitMillis, r.MinBytes = 10_000, 1
	done := make(chan *kmsg.FetchResponse, 1)
	start := time.Now()
	go func() {
		resp, err := r.RequestWith(context.Background(), ft.cl)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	produceTo(t, client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner())), "poll", 1, 1)
	select {
	case resp := <-done:
		if resp == nil {
			return
		}
		if got := ft.got(resp); !equal(got, []string{"poll/1:1"}) || time.Since(start) > 8*time.Second {
			t.Fatalf("got %v after %v", got, time.Since(start))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll did not return")
	}
}

// TestFetchSessionCacheFull: with max.incremental.fetch.session.cache.slots sessions in use, a
// new-session fetch is answered in full with session id 0 (young sessions are not evicted), and
// the sessions in the cache keep working; with 0 slots no session is ever made.
func TestFetchSessionCacheFull(t *testing.T) {
	b := testBroker(t, t.TempDir(), "max.incremental.fetch.session.cache.slots", "2")
	defer stopBroker(t, b)
	ft := newFetchTester(t, b, 17, map[string]int32{"full": 1})
	var ids []int32
	for i := 0; i < 3; i++ {
		resp := ft.fetch(ft.request(0, 0, []part{{"full", 0, 0}}, nil))
		if got := ft.got(resp); !equal(got, []string{"full/0:0"}) || resp.ErrorCode != 0 {
			t.Fatalf("fetch %d: %v, error %d", i, got, resp.ErrorCode)
		}
		ids = append(ids, resp.SessionID)
	}
	if ids[0] <= 0 || ids[1] <= 0 || ids[2] != 0 {
		t.Fatalf("session ids %v: want two sessions, then none", ids)
	}
	for _, id := range ids[:2] {
		if resp := ft.fetch(ft.request(id, 1, nil, nil)); resp.ErrorCode != 0 || resp.SessionID != id {
			t.Fatalf("session %d: error %d, id %d", id, resp.ErrorCode, resp.SessionID)
		}
	}

	b0 := testBroker(t, t.TempDir(), "max.incremental.fetch.session.cache.slots", "0")
	defer stopBroker(t, b0)
	ft0 := newFetchTester(t, b0, 17, map[string]int32{"none": 1})
	if resp := ft0.fetch(ft0.request(0, 0, []part{{"none", 0, 0}}, nil)); resp.SessionID != 0 || len(resp.Topics) != 1 {
		t.Fatalf("0 slots: session %d, %d topics", resp.SessionID, len(resp.Topics))
	}
}

// fetchRecorder is a kgo dialer that decodes the Fetch requests a client writes.
type fetchRecorder struct {
	mu      sync.Mutex
	fetches []kmsg.FetchRequest
}

func (fr *fetchRecorder) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, fr: fr}, nil
}

func (fr *fetchRecorder) incremental() (n, total int) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, f := range fr.fetches {
		if f.SessionID > 0 && f.SessionEpoch > 0 {
			n++
		}
	}
	return n, len(fr.fetches)
}

type recordingConn struct {
	net.Conn
	fr  *fetchRecorder
	buf []byte
}

// Write parses the request frames written: size, key, version, correlation id, client id, then
// (flexible versions) tagged fields, then the body.
func (c *recordingConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 4 {
		size := int(binary.BigEndian.Uint32(c.buf))
		if len(c.buf) < 4+size {
			break
		}
		frame := c.buf[4 : 4+size]
		c.buf = c.buf[4+size:]
		if len(frame) < 10 || int16(binary.BigEndian.Uint16(frame)) != kmsg.Fetch.Int16() {
			continue
		}
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		body := frame[8:]
		cidLen := int(int16(binary.BigEndian.Uint16(body)))
		if cidLen < 0 {
			cidLen = 0
		}
		body = body[2+cidLen:]
		if version >= 12 {
			body = body[1:] // no tagged fields in kgo's request headers
		}
		var r kmsg.FetchRequest
		r.Version = version
		if err := r.ReadFrom(body); err == nil {
			c.fr.mu.Lock()
			c.fr.fetches = append(c.fr.fetches, r)
			c.fr.mu.Unlock()
		}
	}
	return c.Conn.Write(p)
}

// TestKgoUsesFetchSessions: franz-go consumes through an incremental fetch session (it stops
// using sessions when a broker answers session id 0, as Moldau did).
func TestKgoUsesFetchSessions(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "kgosessions"); err != nil {
		t.Fatal(err)
	}
	pcl := client(t, b, kgo.DefaultProduceTopic("kgosessions"))
	const n = 90
	for round := 0; round < 3; round++ {
		var rs []*kgo.Record
		for i := 0; i < n/3; i++ {
			rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(round*n/3 + i))})
		}
		if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fr := &fetchRecorder{}
	cl := client(t, b, kgo.Dialer(fr.dial), kgo.ConsumeTopics("kgosessions"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(2000), kgo.FetchMaxPartitionBytes(500))
	got := map[string]bool{}
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			inc, total := fr.incremental()
			t.Fatalf("consumed %d of %d (%d of %d fetches incremental)", len(got), n, inc, total)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if inc, total := fr.incremental(); inc == 0 {
		t.Fatalf("none of %d fetches was incremental", total)
	}
}
