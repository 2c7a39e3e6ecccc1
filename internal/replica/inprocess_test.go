package replica

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// inProcessLeader serves a follower's fetches from a partition.Manager in the same process, as
// the leader's fetch handler would (serveFetch), waiting up to MaxWait when it has nothing new.
type inProcessLeader struct{ parts *partition.Manager }

func (c inProcessLeader) Fetch(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	resp := serveFetch(c.parts, req, time.Now(), false)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.DivergingEpoch.Epoch >= 0 || len(p.RecordBatches) > 0 {
				return resp, nil
			}
		}
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Duration(req.MaxWaitMillis) * time.Millisecond):
	}
	return resp, nil
}

func (c inProcessLeader) OffsetForLeaderEpoch(context.Context, *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	return nil, errors.New("not used with truncate-on-fetch")
}

func (c inProcessLeader) Close() {}

// Two brokers in one process, each a real partition.Manager and replica.Manager with its
// goroutines: acks=all completes once the follower's fetcher has the record, the follower's
// high watermark follows, and after a failover the old leader follows the new one.
func TestManagersReplicateInProcess(t *testing.T) {
	lc := log.DefaultConfig()
	settings := partition.Settings{Log: lc, MaxMessageBytes: 1 << 20, MinInsyncReplicas: 2, SyncBeforeAck: true}
	parts := map[int32]*partition.Manager{}
	mgrs := map[int32]*Manager{}
	for id := int32(1); id <= 2; id++ {
		pm, err := partition.NewManager([]string{"/data"}, nil, partition.WithFS(vfs.NewMem()), partition.WithLogger(discardLogger()))
		if err != nil {
			t.Fatal(err)
		}
		parts[id] = pm
	}
	for id := int32(1); id <= 2; id++ {
		mgrs[id] = NewManager(Config{NodeID: id, Parts: parts[id], Logger: discardLogger(),
			Settings:     func(*metadata.Topic) (partition.Settings, error) { return settings, nil },
			BrokerAddr:   func(id int32) (string, bool) { return fmt.Sprintf("node-%d", id), true },
			Dial:         func(addr string) (LeaderClient, error) { return inProcessLeader{parts[int32(addr[5]-'0')]}, nil },
			BrokerEpoch:  func() int64 { return int64(id) },
			FetchWaitMax: 20 * time.Millisecond, FetchBackoff: 20 * time.Millisecond,
		})
	}
	defer func() {
		for id := int32(1); id <= 2; id++ {
			mgrs[id].Close()
			parts[id].Close()
		}
	}()
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	apply := func(old, next *metadata.Image) {
		for id := int32(1); id <= 2; id++ {
			if err := mgrs[id].Apply(old, next); err != nil {
				t.Fatal(err)
			}
		}
	}
	im1 := ims.apply(part(0, 1, 0, 0, []int32{1, 2}, []int32{1, 2}))
	apply(nil, im1)

	produce := func(leader int32, value string) {
		t.Helper()
		p := parts[leader].Get("t", 0)
		batch := record.Build(record.BatchSpec{ProducerID: -1, BaseSequence: -1, Records: []record.Record{{Value: []byte(value)}}})
		res, err := p.Append(batch, -1, partition.OriginClient)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.WaitReplicated(ctx, res.BaseOffset); err != nil {
			t.Fatalf("acks=all produce of %s to %d: %v", value, leader, err)
		}
	}
	produce(1, "a")
	f := parts[2].Get("t", 0)
	waitFor(t, "the follower's high watermark", func() bool { return f.HighWatermark() == 1 && f.LogEndOffset() == 1 })

	// Failover: broker 2 leads epoch 1; broker 1 follows it.
	im2 := ims.apply(part(0, 2, 1, 1, []int32{1, 2}, []int32{1, 2}))
	apply(im1, im2)
	produce(2, "b")
	old := parts[1].Get("t", 0)
	waitFor(t, "the old leader to follow", func() bool { return old.LogEndOffset() == 2 && old.HighWatermark() == 2 })
	if old.IsLeader() || !parts[2].Get("t", 0).IsLeader() {
		t.Fatalf("roles after failover: old leader %v, new leader %v", old.IsLeader(), parts[2].Get("t", 0).IsLeader())
	}
}
