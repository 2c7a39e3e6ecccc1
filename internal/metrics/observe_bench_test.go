package metrics

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

// BenchmarkObserve is the cost Kafka's request metrics add to each request on the connection's
// goroutine (Observe: the request and error counters and the six time summaries), for a Produce
// of one topic and six partitions, one goroutine and all of them at once:
//
//	go test -run '^$' -bench BenchmarkObserve ./internal/metrics/
func BenchmarkObserve(b *testing.B) {
	m := New()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	resp := kmsg.NewPtrProduceResponse()
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic = "w1"
	for p := range int32(6) {
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, rt)
	r := &server.Request{Key: req.Key(), Version: req.Version, Msg: req}
	t0 := time.Now()
	timing := &server.Timing{Received: t0, Handling: t0.Add(10 * time.Microsecond), Handled: t0.Add(300 * time.Microsecond),
		Sending: t0.Add(310 * time.Microsecond), Sent: t0.Add(330 * time.Microsecond), Remote: 200 * time.Microsecond}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			m.Observe(r, resp, timing)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Observe(r, resp, timing)
			}
		})
	})
}
