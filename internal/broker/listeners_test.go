package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawRequest sends req at its version on a fresh connection to addr and decodes the response.
func rawRequest(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("listeners-test")).AppendRequest(nil, req, 7)
	if _, err := c.Write(frame); err != nil {
		t.Fatalf("write %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("read %s response on %s: %v", kmsg.NameForKey(req.Key()), addr, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read %s response on %s: %v", kmsg.NameForKey(req.Key()), addr, err)
	}
	body = body[4:] // correlation id
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// recordingDialer dials as kgo would and remembers every address it was asked to dial.
type recordingDialer struct {
	mu    sync.Mutex
	addrs map[string]int
}

func (d *recordingDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	if d.addrs == nil {
		d.addrs = map[string]int{}
	}
	d.addrs[host]++
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, host)
}

func (d *recordingDialer) dialed() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for k, v := range d.addrs {
		out[k] = v
	}
	return out
}

// TestListenersAnswerWithTheirEndpoints: with an internal and an external listener (a compose
// file's setup), both are served, and Metadata, FindCoordinator and DescribeCluster answer a
// request with the advertised endpoint of the listener it came in on (Kafka's rule), so a client
// bootstrapped through either listener only ever connects through that listener, and produces
// and consumes in a group.
func TestListenersAnswerWithTheirEndpoints(t *testing.T) {
	b := testBroker(t, t.TempDir(),
		"listeners", "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
		"advertised.listeners", "INTERNAL://127.0.0.1:0,EXTERNAL://localhost:0",
		"listener.security.protocol.map", "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
	)
	defer stopBroker(t, b)

	ls := b.Listeners()
	if len(ls) != 2 || ls[0].Name != "INTERNAL" || ls[1].Name != "EXTERNAL" {
		t.Fatalf("Listeners() = %+v, want INTERNAL and EXTERNAL", ls)
	}
	wantHost := map[string]string{"INTERNAL": "127.0.0.1", "EXTERNAL": "localhost"}
	for _, l := range ls {
		bound := l.Addr.(*net.TCPAddr).Port
		if l.Advertised.Host != wantHost[l.Name] || l.Advertised.Port != bound {
			t.Fatalf("listener %s advertises %s, want %s:%d", l.Name, l.Advertised, wantHost[l.Name], bound)
		}
	}
	if ls[0].Addr.String() == ls[1].Addr.String() {
		t.Fatalf("both listeners bound to %s", ls[0].Addr)
	}

	for _, l := range ls {
		addr := l.Addr.String()
		host, port := l.Advertised.Host, int32(l.Advertised.Port)
		check := func(what string, gotHost string, gotPort int32) {
			t.Helper()
			if gotHost != host || gotPort != port {
				t.Errorf("%s on listener %s: %s:%d, want %s:%d", what, l.Name, gotHost, gotPort, host, port)
			}
		}
		for _, v := range []int16{1, 12} {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = v
			resp := rawRequest(t, addr, req).(*kmsg.MetadataResponse)
			if len(resp.Brokers) != 1 {
				t.Fatalf("Metadata v%d on %s: brokers %+v, want one", v, l.Name, resp.Brokers)
			}
			check("Metadata v"+strconv.Itoa(int(v)), resp.Brokers[0].Host, resp.Brokers[0].Port)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version = 3
		fc.CoordinatorKey = "g"
		r3 := rawRequest(t, addr, fc).(*kmsg.FindCoordinatorResponse)
		if r3.ErrorCode != 0 {
			t.Fatalf("FindCoordinator v3 on %s: error %d", l.Name, r3.ErrorCode)
		}
		check("FindCoordinator v3", r3.Host, r3.Port)
		fc4 := kmsg.NewPtrFindCoordinatorRequest()
		fc4.Version = 4
		fc4.CoordinatorKeys = []string{"g1", "g2"}
		r4 := rawRequest(t, addr, fc4).(*kmsg.FindCoordinatorResponse)
		if len(r4.Coordinators) != 2 {
			t.Fatalf("FindCoordinator v4 on %s: %+v", l.Name, r4.Coordinators)
		}
		for _, c := range r4.Coordinators {
			check("FindCoordinator v4 "+c.Key, c.Host, c.Port)
		}
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.Version = 1
		dc.EndpointType = 1
		rdc := rawRequest(t, addr, dc).(*kmsg.DescribeClusterResponse)
		if rdc.ErrorCode != 0 || len(rdc.Brokers) != 1 {
			t.Fatalf("DescribeCluster on %s: error %d, brokers %+v", l.Name, rdc.ErrorCode, rdc.Brokers)
		}
		check("DescribeCluster", rdc.Brokers[0].Host, rdc.Brokers[0].Port)
	}

	// A client bootstrapped through each listener produces and consumes in a group, and only
	// ever dials that listener's advertised address.
	for _, l := range ls {
		t.Run(l.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			seed := l.Advertised.Addr()
			topic := "via-" + l.Name
			var d recordingDialer
			pcl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.Dialer(d.dial), kgo.DefaultProduceTopic(topic),
				kgo.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer pcl.Close()
			const n = 20
			for i := 0; i < n; i++ {
				if err := pcl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", l.Name, i))).FirstErr(); err != nil {
					t.Fatalf("produce through %s: %v", l.Name, err)
				}
			}
			ccl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.Dialer(d.dial), kgo.ConsumeTopics(topic),
				kgo.ConsumerGroup("group-"+l.Name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer ccl.Close()
			got := 0
			for got < n {
				fs := ccl.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("consume through %s: %d of %d records: %v", l.Name, got, n, ctx.Err())
				}
				for _, fe := range fs.Errors() {
					t.Fatalf("consume through %s: %v", l.Name, fe.Err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					if want := fmt.Sprintf("%s-%d", l.Name, got); string(r.Value) != want {
						t.Errorf("record %d through %s: %q, want %q", got, l.Name, r.Value, want)
					}
					got++
				})
			}
			if err := ccl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit through %s: %v", l.Name, err)
			}
			for a := range d.dialed() {
				if a != seed {
					t.Errorf("a client bootstrapped through %s (%s) dialed %s: %v", l.Name, seed, a, d.dialed())
				}
			}
		})
	}
}
