package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceHandler answers a Produce with an empty ProduceResponse and touches nothing else: the
// benchmark measures the server's framing, decoding and response path.
type produceHandler struct{ echoHandler }

func (produceHandler) Handle(_ context.Context, req *Request) (kmsg.Response, error) {
	return req.Msg.ResponseKind(), nil
}

// SupportedVersion does not allocate (echoHandler's does), as the real handler's map lookup.
func (produceHandler) SupportedVersion(key, version int16) bool {
	return key == 0 && version >= 3 && version <= 11 || key == 18 && version >= 0 && version <= 4
}

// produceFrame is a Produce v9 request frame carrying one partition with a records blob of n
// bytes (opaque to the server; the handler does not look at it).
func produceFrame(corr int32, n int) []byte {
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(9)
	p.Acks = 1
	p.TimeoutMillis = 1000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	pt := kmsg.NewProduceRequestTopicPartition()
	pt.Records = make([]byte, n)
	t.Partitions = append(t.Partitions, pt)
	p.Topics = append(p.Topics, t)
	return frame(0, 9, corr, "bench", p.AppendTo(nil))
}

// BenchmarkServerProduce is one connection sending Produce requests one after another (each
// answered before the next is sent), records blob of the given size: the allocations per request
// show whether the request buffer is reused from one Produce to the next.
//
// "limits" runs with the broker's defaults: a 256 MiB queued.max.request.bytes budget and a
// 10-minute connections.max.idle.ms (read deadlines).
func BenchmarkServerProduce(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		for _, limited := range []bool{false, true} {
			name := fmt.Sprintf("records=%d", size)
			if limited {
				name += "/limits"
			}
			b.Run(name, func(b *testing.B) { benchmarkServerProduce(b, size, limited) })
		}
	}
}

func benchmarkServerProduce(b *testing.B, size int, limited bool) {
	cfg := Config{Addr: "127.0.0.1:0", MaxRequestBytes: 100 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if limited {
		l, err := NewLimits(LimitsConfig{QueuedMaxRequestBytes: 256 << 20,
			MaxConnections: math.MaxInt32, MaxConnectionsPerIP: math.MaxInt32})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Limits, cfg.IdleTimeout = l, 10*time.Minute
	}
	s := New(cfg, produceHandler{})
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := produceFrame(1, size)
	var hdr [8]byte
	resp := make([]byte, 1<<10)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp[:binary.BigEndian.Uint32(hdr[:4])-4]); err != nil {
			b.Fatal(err)
		}
	}
}
