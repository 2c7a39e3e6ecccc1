package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func testConfig() Config {
	return Config{
		NodeID:                   1,
		NumPartitions:            3,
		DefaultReplicationFactor: 1,
		ValidateTopicConfig: func(key, value string) error {
			if key == "bad.key" {
				return errors.New("unknown config")
			}
			return nil
		},
	}
}

// newTestController returns a controller without raft with brokers 1..n registered.
func newTestController(t *testing.T, n int) *Controller {
	t.Helper()
	fsm := NewFSM()
	c := newController(testConfig(), fsm, &directCommitter{fsm: fsm, nodeID: 1})
	for id := int32(1); id <= int32(n); id++ {
		activate(t, c, id, "")
	}
	return c
}

func str(s string) *string { return &s }

func TestCreateTopicDefaults(t *testing.T) {
	c := newTestController(t, 1)
	ctx := context.Background()
	top, err := c.CreateTopic(ctx, CreateTopic{Name: "orders", Partitions: -1, ReplicationFactor: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Partitions) != 3 || top.ID == ([16]byte{}) || top.Internal {
		t.Fatalf("unexpected topic %+v", top)
	}
	for i, p := range top.Partitions {
		if p.Partition != int32(i) || p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) || p.LeaderEpoch != 0 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
	im := c.Image()
	got, ok := im.Topic("orders")
	if !ok || got != top {
		t.Fatal("topic not in image")
	}
	if byID, ok := im.TopicByID(top.ID); !ok || byID != top {
		t.Fatal("TopicByID")
	}
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "orders", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestCreateTopicAssignment(t *testing.T) {
	c := newTestController(t, 5)
	top, err := c.CreateTopic(context.Background(), CreateTopic{Name: "t", Partitions: 20, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	replicas := map[int32]int{}
	for _, p := range top.Partitions {
		if len(p.Replicas) != 3 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
			t.Fatalf("partition %+v", p)
		}
		s := slices.Clone(p.Replicas)
		slices.Sort(s)
		if len(slices.Compact(s)) != 3 {
			t.Fatalf("duplicate replicas %v", p.Replicas)
		}
		leaders[p.Leader]++
		for _, r := range p.Replicas {
			replicas[r]++
		}
	}
	// Round robin: every broker leads exactly 20/5 partitions and holds 60/5 replicas.
	for id := int32(1); id <= 5; id++ {
		if leaders[id] != 4 || replicas[id] != 12 {
			t.Fatalf("unbalanced: leaders %v replicas %v", leaders, replicas)
		}
	}
}

func TestCreateTopicValidation(t *testing.T) {
	c := newTestController(t, 2)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "a.b", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 249)
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: long, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatalf("249 chars: %v", err)
	}
	for _, tc := range []struct {
		name string
		req  CreateTopic
		want error
	}{
		{"empty", CreateTopic{Name: "", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"dot", CreateTopic{Name: ".", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"dotdot", CreateTopic{Name: "..", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"too long", CreateTopic{Name: long + "x", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"bad char", CreateTopic{Name: "a b", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"bad char slash", CreateTopic{Name: "a/b", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"non-ascii", CreateTopic{Name: "tópico", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"collision", CreateTopic{Name: "a_b", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{"exists", CreateTopic{Name: "a.b", Partitions: 1, ReplicationFactor: 1}, ErrTopicExists},
		{"zero partitions", CreateTopic{Name: "x", Partitions: 0, ReplicationFactor: 1}, ErrInvalidPartitions},
		{"negative partitions", CreateTopic{Name: "x", Partitions: -2, ReplicationFactor: 1}, ErrInvalidPartitions},
		{"zero rf", CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: 0}, ErrInvalidReplicationFactor},
		{"rf too big", CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: 3}, ErrInvalidReplicationFactor},
		{"bad config", CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"bad.key": "1"}}, ErrInvalidConfig},
		{"assignment with partitions", CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1}}}, ErrInvalidRequest},
		{"assignment gap", CreateTopic{Name: "x", Partitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1}, 2: {2}}}, ErrInvalidReplicaAssignment},
		{"assignment empty", CreateTopic{Name: "x", Partitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {}}}, ErrInvalidReplicaAssignment},
		{"assignment dup", CreateTopic{Name: "x", Partitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 1}}}, ErrInvalidReplicaAssignment},
		{"assignment unknown broker", CreateTopic{Name: "x", Partitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {7}}}, ErrInvalidReplicaAssignment},
		{"assignment uneven", CreateTopic{Name: "x", Partitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 2}, 1: {1}}}, ErrInvalidReplicaAssignment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.Image()
			_, err := c.CreateTopic(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if c.Image() != before {
				t.Fatal("failed validation changed the image")
			}
		})
	}
	_, err := c.CreateTopic(ctx, CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"bad.key": "1"}})
	if err == nil || !strings.Contains(err.Error(), "bad.key") {
		t.Fatalf("config error should name the key: %v", err)
	}
}

func TestCreateTopicManualAssignmentAndConfigs(t *testing.T) {
	c := newTestController(t, 3)
	top, err := c.CreateTopic(context.Background(), CreateTopic{
		Name: "m", Partitions: -1, ReplicationFactor: -1,
		Assignments: map[int32][]int32{0: {3, 1}, 1: {2, 3}},
		Configs:     map[string]string{"cleanup.policy": "compact"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Partitions) != 2 || !slices.Equal(top.Partitions[0].Replicas, []int32{3, 1}) || top.Partitions[1].Leader != 2 {
		t.Fatalf("%+v", top.Partitions)
	}
	if top.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("configs %v", top.Configs)
	}
}

func TestCreateTopicValidateOnlyAndInternal(t *testing.T) {
	c := newTestController(t, 1)
	ctx := context.Background()
	before := c.Image()
	top, err := c.CreateTopic(ctx, CreateTopic{Name: "v", Partitions: 4, ReplicationFactor: 1, ValidateOnly: true})
	if err != nil || len(top.Partitions) != 4 {
		t.Fatalf("%v %+v", err, top)
	}
	if c.Image() != before {
		t.Fatal("validate only committed")
	}
	if _, ok := c.Image().Topic("v"); ok {
		t.Fatal("validate only created the topic")
	}
	off, err := c.CreateTopic(ctx, CreateTopic{Name: ConsumerOffsetsTopic, Partitions: 50, ReplicationFactor: 1, Internal: true})
	if err != nil || !off.Internal || len(off.Partitions) != 50 {
		t.Fatalf("%v %+v", err, off)
	}
}

func TestDeleteTopic(t *testing.T) {
	c := newTestController(t, 1)
	ctx := context.Background()
	old, err := c.CreateTopic(ctx, CreateTopic{Name: "d", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Image().Topic("d"); ok {
		t.Fatal("still there")
	}
	if _, ok := c.Image().TopicByID(old.ID); ok {
		t.Fatal("still there by id")
	}
	if err := c.DeleteTopic(ctx, "d"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("err = %v", err)
	}
	again, err := c.CreateTopic(ctx, CreateTopic{Name: "d", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == old.ID || len(again.Configs) != 0 {
		t.Fatal("re-created topic must get a new id and no old configs")
	}
}

func TestCreatePartitions(t *testing.T) {
	c := newTestController(t, 3)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "p", Partitions: 2, ReplicationFactor: 2}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		count  int32
		assign [][]int32
		want   error
	}{
		{1, nil, ErrInvalidPartitions},
		{2, nil, ErrInvalidPartitions},
		{4, [][]int32{{1, 2}}, ErrInvalidReplicaAssignment},
		{3, [][]int32{{1}}, ErrInvalidReplicaAssignment},
		{3, [][]int32{{1, 9}}, ErrInvalidReplicaAssignment},
	} {
		if err := c.CreatePartitions(ctx, "p", tc.count, tc.assign, false); !errors.Is(err, tc.want) {
			t.Fatalf("count %d %v: err = %v, want %v", tc.count, tc.assign, err, tc.want)
		}
	}
	if err := c.CreatePartitions(ctx, "nope", 3, nil, false); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("err = %v", err)
	}
	if err := c.CreatePartitions(ctx, "p", 5, nil, true); err != nil {
		t.Fatal(err)
	}
	if top, _ := c.Image().Topic("p"); len(top.Partitions) != 2 {
		t.Fatal("validate only changed partitions")
	}
	if err := c.CreatePartitions(ctx, "p", 5, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePartitions(ctx, "p", 6, [][]int32{{3, 1}}, false); err != nil {
		t.Fatal(err)
	}
	top, _ := c.Image().Topic("p")
	if len(top.Partitions) != 6 {
		t.Fatalf("got %d partitions", len(top.Partitions))
	}
	for i, p := range top.Partitions {
		if p.Partition != int32(i) || len(p.Replicas) != 2 || p.Leader != p.Replicas[0] {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
	if !slices.Equal(top.Partitions[5].Replicas, []int32{3, 1}) {
		t.Fatalf("manual assignment %v", top.Partitions[5].Replicas)
	}
}

func TestAlterConfigs(t *testing.T) {
	c := newTestController(t, 1)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "c", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	old, _ := c.Image().Topic("c")
	if err := c.AlterTopicConfigs(ctx, "c", map[string]*string{"a": nil, "c": str("3")}); err != nil {
		t.Fatal(err)
	}
	top, _ := c.Image().Topic("c")
	if fmt.Sprint(top.Configs) != "map[b:2 c:3]" {
		t.Fatalf("configs %v", top.Configs)
	}
	if fmt.Sprint(old.Configs) != "map[a:1 b:2]" {
		t.Fatalf("old image's topic was modified: %v", old.Configs)
	}
	if top.ID != old.ID {
		t.Fatal("id changed")
	}
	if err := c.AlterTopicConfigs(ctx, "c", map[string]*string{"bad.key": str("x"), "d": str("4")}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "bad.key") {
		t.Fatalf("err = %v", err)
	}
	if top2, _ := c.Image().Topic("c"); top2 != top {
		t.Fatal("invalid alter must not commit anything")
	}
	if err := c.AlterTopicConfigs(ctx, "nope", map[string]*string{"a": str("1")}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("err = %v", err)
	}

	if err := c.AlterBrokerConfigs(ctx, map[string]*string{"log.retention.ms": str("1000"), "x": str("y")}); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterBrokerConfigs(ctx, map[string]*string{"x": nil}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Image().BrokerConfigs()) != "map[log.retention.ms:1000]" {
		t.Fatalf("broker configs %v", c.Image().BrokerConfigs())
	}
	if err := c.AlterNodeConfigs(ctx, 1, map[string]*string{"log.cleaner.threads": str("2")}); err != nil {
		t.Fatal(err)
	}
	if c.Image().NodeConfigs(1)["log.cleaner.threads"] != "2" || len(c.Image().NodeConfigs(2)) != 0 {
		t.Fatal("node configs")
	}
}

func TestProducerIDsAndBrokers(t *testing.T) {
	c := newTestController(t, 0)
	ctx := context.Background()
	var last int64 = -1
	for range 5 {
		first, count, err := c.AllocateProducerIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if count != ProducerIDBlockSize || first != last+1 {
			t.Fatalf("block %d+%d after %d", first, count, last)
		}
		last = first + count - 1
	}

	reg := func(id int32, inc UUID, host string, port int32, rack string) BrokerRegistration {
		return BrokerRegistration{NodeID: id, IncarnationID: inc, Rack: rack,
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: host, Port: port}}}
	}
	inc1, inc2 := RandomUUID(), RandomUUID()
	if _, err := c.RegisterBroker(ctx, reg(2, inc2, "b", 9093, "")); err != nil {
		t.Fatal(err)
	}
	e1, err := c.RegisterBroker(ctx, reg(1, inc1, "a", 9092, "r"))
	if err != nil {
		t.Fatal(err)
	}
	before := c.Image()
	if again, err := c.RegisterBroker(ctx, reg(1, inc1, "a", 9092, "r")); err != nil || again != e1 {
		t.Fatalf("retry: epoch %d (want %d), %v", again, e1, err)
	}
	if c.Image() != before {
		t.Fatal("identical re-registration committed a record")
	}
	// The same incarnation with a new endpoint amends the registration: same epoch.
	e2, err := c.RegisterBroker(ctx, reg(2, inc2, "b2", 9094, ""))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := c.Image().Broker(2)
	if b2.Epoch != e2 || b2.Host != "b2" || b2.Port != 9094 || !b2.Fenced || len(b2.Endpoints) != 1 {
		t.Fatalf("broker 2 %+v", b2)
	}
	b1, _ := c.Image().Broker(1)
	if b1.Epoch != e1 || e2 == e1 || b1.Host != "a" || b1.Rack != "r" || b1.IncarnationID != inc1 {
		t.Fatalf("broker 1 %+v (epoch %d)", b1, e1)
	}
	for _, bad := range []BrokerRegistration{
		{NodeID: -1, IncarnationID: inc1, Endpoints: []Endpoint{{Host: "h", Port: 1}}},
		{NodeID: 3, IncarnationID: inc1},
		{NodeID: 3, IncarnationID: inc1, Endpoints: []Endpoint{{Host: "h", Port: 70000}}},
		{NodeID: 3, Endpoints: []Endpoint{{Host: "h", Port: 1}}},
	} {
		if _, err := c.RegisterBroker(ctx, bad); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("%+v: err = %v", bad, err)
		}
	}
}

func TestSubscribe(t *testing.T) {
	c := newTestController(t, 1)
	ch := c.Subscribe()
	for i := range 3 { // coalesces: the channel holds at most one signal
		if _, err := c.CreateTopic(context.Background(), CreateTopic{Name: fmt.Sprint("s", i), Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ch:
	default:
		t.Fatal("no signal")
	}
	select {
	case <-ch:
		t.Fatal("signals did not coalesce")
	default:
	}
	c.Unsubscribe(ch)
	if _, err := c.CreateTopic(context.Background(), CreateTopic{Name: "s9", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("signalled after unsubscribe")
	default:
	}
}

// TestConcurrentReaders reads images while writers apply (run with -race): every image a
// reader sees must be internally consistent.
func TestConcurrentReaders(t *testing.T) {
	c := newTestController(t, 3)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				im := c.Image()
				topics := im.Topics()
				if len(topics) != im.NumTopics() {
					t.Error("topic count mismatch")
					return
				}
				for _, top := range topics {
					byID, ok := im.TopicByID(top.ID)
					if !ok || byID != top {
						t.Errorf("topic %s not found by id", top.Name)
						return
					}
					for i, p := range top.Partitions {
						if int(p.Partition) != i || len(p.Replicas) == 0 {
							t.Errorf("bad partition %+v", p)
							return
						}
					}
					for range top.Configs {
					}
				}
				_ = im.Brokers()
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 50 {
				name := fmt.Sprintf("t%d-%d", w, i)
				if _, err := c.CreateTopic(ctx, CreateTopic{Name: name, Partitions: 3, ReplicationFactor: 2}); err != nil {
					t.Error(err)
					return
				}
				if err := c.AlterTopicConfigs(ctx, name, map[string]*string{"k": str(name)}); err != nil {
					t.Error(err)
				}
				if i%3 == 0 {
					if err := c.CreatePartitions(ctx, name, 5, nil, false); err != nil {
						t.Error(err)
					}
				}
				if i%5 == 0 {
					if err := c.DeleteTopic(ctx, name); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	if got := c.Image().NumTopics(); got != 4*40 {
		t.Fatalf("got %d topics", got)
	}
}
