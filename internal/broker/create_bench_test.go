package broker

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceDuringCreate measures produce latency on an existing one-partition topic while
// a 1 000-partition topic is created on the same broker: one producer, one record of 1 KiB at a
// time (acks=all, linger 0), from the CreateTopics request until the broker has opened all 1 000
// partitions. It reports the produce latency percentiles of that window, the number of produces
// in it and how long opening the partitions took. Run it once per configuration:
//
//	go test -run '^$' -bench ProduceDuringCreate -benchtime 1x ./internal/broker/
//
// Sub-benchmarks: "fsync" is the default flush policy (fsync before ack), "no-fsync" Kafka's.
func BenchmarkProduceDuringCreate(b *testing.B) {
	for _, bc := range []struct {
		name      string
		overrides []string
	}{
		{"fsync", nil},
		{"no-fsync", kafkaFlushDefault},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := range b.N {
				produceDuringCreate(b, bc.overrides, "big"+strconv.Itoa(i))
			}
		})
	}
}

func produceDuringCreate(b *testing.B, overrides []string, bigTopic string) {
	const partitions = 1000
	br := testBroker(b, b.TempDir(), overrides...)
	defer stopBroker(b, br)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	adm := kadm.NewClient(client(b, br))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "hot"); err != nil {
		b.Fatal(err)
	}
	cl := client(b, br, kgo.DefaultProduceTopic("hot"), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	value := make([]byte, 1024)
	produce := func() time.Duration {
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 200 { // warm up the connection and the partition
		produce()
	}

	opened := func() bool {
		n := 0
		for _, p := range br.parts.Topic(bigTopic) {
			if p != nil {
				n++
			}
		}
		return n == partitions
	}
	created := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		_, err := adm.CreateTopic(ctx, partitions, 1, nil, bigTopic)
		created <- err
	}()
	var lat []time.Duration
	var createErr error
	createDone := false
	for !createDone || !opened() {
		lat = append(lat, produce())
		if !createDone {
			select {
			case createErr = <-created:
				createDone = true
			default:
			}
		}
		if ctx.Err() != nil {
			b.Fatal("the partitions were not opened in time")
		}
	}
	window := time.Since(start)
	b.StopTimer()
	if createErr != nil {
		b.Fatal(createErr)
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / 1e6
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(float64(len(lat)), "produces")
	b.ReportMetric(window.Seconds(), "create-s")
}

// BenchmarkOffsetCommit measures one OffsetCommit at a time (a group-less commit of one
// partition) with fsync before ack (the default: each commit waits for a syncfs of the log dir)
// and without (Kafka's flush default):
//
//	go test -run '^$' -bench OffsetCommit -benchtime 2000x ./internal/broker/
func BenchmarkOffsetCommit(b *testing.B) {
	for _, bc := range []struct {
		name      string
		overrides []string
	}{
		{"fsync", nil},
		{"no-fsync", kafkaFlushDefault},
	} {
		b.Run(bc.name, func(b *testing.B) {
			br := testBroker(b, b.TempDir(), bc.overrides...)
			defer stopBroker(b, br)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cl := client(b, br)
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
				b.Fatal(err)
			}
			if err := <-sendOffsetCommit(ctx, cl, "bench", "t", 0); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if err := <-sendOffsetCommit(ctx, cl, "bench", "t", int64(i)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)])/1e6, "p99-ms")
		})
	}
}
