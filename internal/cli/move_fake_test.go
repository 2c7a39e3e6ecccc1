package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/rebalance"
)

// fakeCluster is an in-memory cluster for the move commands: reassignments copy step bytes to
// each adding replica per ListPartitionReassignments call and complete as the controller does
// (replicas = target, a leader outside the target replaced by the target's first replica).
type fakeCluster struct {
	mu       sync.Mutex
	brokers  []rebalance.Broker
	parts    map[tp]*fakePart
	sizes    map[int32]map[tp]int64 // replica bytes per broker
	futures  map[replicaKey]string  // log dir moves in progress
	dirs     map[replicaKey]string  // current log dir of a replica, default /data/<broker>
	configs  map[string]map[string]string
	step     int64
	down     map[int32]bool // brokers whose DescribeLogDirs fails
	elected  []tp
	alterLog []string
}

type fakePart struct {
	replicas []int32 // during a move: target first, then the current replicas not in it
	leader   int32
	orig     []int32 // replicas before the move, nil when none is in progress
	target   []int32
}

func newFakeCluster(brokers []rebalance.Broker) *fakeCluster {
	return &fakeCluster{
		brokers: brokers,
		parts:   map[tp]*fakePart{},
		sizes:   map[int32]map[tp]int64{},
		futures: map[replicaKey]string{},
		dirs:    map[replicaKey]string{},
		configs: map[string]map[string]string{},
		step:    1 << 20,
		down:    map[int32]bool{},
	}
}

// addPartition places a partition of size bytes on replicas, led by the first.
func (f *fakeCluster) addPartition(topic string, p int32, size int64, replicas ...int32) {
	k := tp{Topic: topic, Partition: p}
	f.parts[k] = &fakePart{replicas: replicas, leader: replicas[0]}
	for _, b := range replicas {
		if f.sizes[b] == nil {
			f.sizes[b] = map[tp]int64{}
		}
		f.sizes[b][k] = size
	}
}

func (f *fakeCluster) admin() func([]string) (moveAdmin, error) {
	return func([]string) (moveAdmin, error) { return &fakeAdmin{f}, nil }
}

// advance copies step bytes to every adding replica and completes the moves that caught up.
func (f *fakeCluster) advance() {
	for _, k := range sortedTPs(f.parts) {
		p := f.parts[k]
		if p.orig == nil {
			continue
		}
		lsize := f.sizes[p.leader][k]
		done := true
		for _, b := range p.target {
			if slices.Contains(p.orig, b) {
				continue
			}
			if f.sizes[b] == nil {
				f.sizes[b] = map[tp]int64{}
			}
			f.sizes[b][k] = min(lsize, f.sizes[b][k]+f.step)
			if f.sizes[b][k] < lsize {
				done = false
			}
		}
		if done {
			for _, b := range p.replicas {
				if !slices.Contains(p.target, b) {
					delete(f.sizes[b], k)
				}
			}
			p.replicas, p.orig = p.target, nil
			if !slices.Contains(p.replicas, p.leader) {
				p.leader = p.replicas[0]
			}
		}
	}
}

type fakeAdmin struct{ f *fakeCluster }

func (a *fakeAdmin) Close() {}

func (a *fakeAdmin) Describe(_ context.Context, topics []string) (clusterView, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	v := clusterView{Brokers: slices.Clone(f.brokers)}
	for _, t := range topics {
		found := false
		for k := range f.parts {
			found = found || k.Topic == t
		}
		if !found {
			return clusterView{}, fmt.Errorf("Topic %s not found.", t)
		}
	}
	for _, k := range sortedTPs(f.parts) {
		if len(topics) > 0 && !slices.Contains(topics, k.Topic) {
			continue
		}
		p := f.parts[k]
		v.Partitions = append(v.Partitions, partitionView{tp: k, Replicas: slices.Clone(p.replicas), ISR: slices.Clone(p.replicas), Leader: p.leader})
	}
	return v, nil
}

func (a *fakeAdmin) LogDirSizes(_ context.Context, brokers []int32, tps []tp) (map[int32]map[tp]replicaDir, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int32]map[tp]replicaDir{}
	for _, b := range brokers {
		if f.down[b] {
			continue
		}
		m := map[tp]replicaDir{}
		for k, s := range f.sizes[b] {
			if tps == nil || slices.Contains(tps, k) {
				rk := replicaKey{tp: k, Broker: b}
				dir := f.dirs[rk]
				if dir == "" {
					dir = fmt.Sprintf("/data/%d", b)
				}
				m[k] = replicaDir{Size: s, Dir: dir, FutureDir: f.futures[rk]}
			}
		}
		out[b] = m
	}
	return out, nil
}

func (a *fakeAdmin) ListReassignments(_ context.Context, tps []tp) (map[tp]reassignment, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	out := map[tp]reassignment{}
	for k, p := range f.parts {
		if p.orig == nil || tps != nil && !slices.Contains(tps, k) {
			continue
		}
		var adding, removing []int32
		for _, b := range p.target {
			if !slices.Contains(p.orig, b) {
				adding = append(adding, b)
			}
		}
		for _, b := range p.orig {
			if !slices.Contains(p.target, b) {
				removing = append(removing, b)
			}
		}
		out[k] = reassignment{Replicas: slices.Clone(p.replicas), Adding: adding, Removing: removing}
	}
	return out, nil
}

func (a *fakeAdmin) AlterReassignments(_ context.Context, targets map[tp][]int32) (map[tp]error, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := map[tp]error{}
	for _, k := range sortedTPs(targets) {
		target := targets[k]
		f.alterLog = append(f.alterLog, fmt.Sprintf("%s=%v", k, target))
		p, ok := f.parts[k]
		if !ok {
			errs[k] = kerr.UnknownTopicOrPartition
			continue
		}
		if target == nil {
			if p.orig == nil {
				errs[k] = apiError(kerr.NoReassignmentInProgress, ptrTo("no reassignment of "+k.String()+" is in progress"))
				continue
			}
			for _, b := range p.target {
				if !slices.Contains(p.orig, b) {
					delete(f.sizes[b], k)
				}
			}
			p.replicas, p.orig, p.target = p.orig, nil, nil
			continue
		}
		bad := false
		for _, b := range target {
			if !slices.ContainsFunc(f.brokers, func(x rebalance.Broker) bool { return x.ID == b }) {
				errs[k] = apiError(kerr.InvalidReplicaAssignment, ptrTo(fmt.Sprintf("broker %d is not registered", b)))
				bad = true
			}
		}
		if bad {
			continue
		}
		cur := p.replicas
		if p.orig != nil {
			cur = p.orig
		}
		if slices.Equal(cur, target) && p.orig == nil {
			continue
		}
		p.orig = slices.Clone(cur)
		p.target = slices.Clone(target)
		full := slices.Clone(target)
		for _, b := range cur {
			if !slices.Contains(full, b) {
				full = append(full, b)
			}
		}
		p.replicas = full
	}
	return errs, nil
}

func ptrTo(s string) *string { return &s }

func (a *fakeAdmin) AlterConfigs(_ context.Context, changes []configChange) error {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range changes {
		res := "topic:" + c.Name
		if c.Broker {
			res = "broker:" + c.Name
		}
		if c.Value == nil {
			delete(f.configs[res], c.Key)
			if len(f.configs[res]) == 0 {
				delete(f.configs, res)
			}
			continue
		}
		if f.configs[res] == nil {
			f.configs[res] = map[string]string{}
		}
		f.configs[res][c.Key] = *c.Value
	}
	return nil
}

// configText lists the configs set, one "resource key=value" per line, sorted.
func (f *fakeCluster) configText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for res, kv := range f.configs {
		for k, v := range kv {
			lines = append(lines, fmt.Sprintf("%s %s=%s", res, k, v))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (a *fakeAdmin) ElectPreferred(_ context.Context, tps []tp) (map[tp]error, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := map[tp]error{}
	for _, k := range tps {
		p := f.parts[k]
		if p.leader == p.replicas[0] {
			errs[k] = kerr.ElectionNotNeeded
			continue
		}
		p.leader = p.replicas[0]
		f.elected = append(f.elected, k)
	}
	return errs, nil
}

func (a *fakeAdmin) AlterReplicaLogDirs(_ context.Context, moves map[replicaKey]string) ([]replicaKey, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	var notYet []replicaKey
	for k, dir := range moves {
		if _, ok := f.sizes[k.Broker][k.tp]; !ok {
			notYet = append(notYet, k)
			continue
		}
		f.futures[k] = dir
	}
	return notYet, nil
}

// testEnv is an env writing to buffers, with a clock that moves only when the command sleeps.
type testEnv struct {
	e              *env
	stdout, stderr *bytes.Buffer
	now            time.Time
}

func newTestEnv(t *testing.T) (*testEnv, moveDeps) {
	t.Helper()
	te := &testEnv{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	te.e = &env{
		ctx: ctx, stdin: strings.NewReader(""), stdout: te.stdout, stderr: te.stderr,
		getenv: func(string) string { return "" }, adminTimeout: 10 * time.Second,
		now: func() time.Time { return te.now },
	}
	deps := moveDeps{
		intn: func(int) int { return 0 },
		sleep: func(ctx context.Context, d time.Duration) error {
			te.now = te.now.Add(d)
			return ctx.Err()
		},
		poll: time.Second,
	}
	return te, deps
}

// run runs a command through fn, as RunContext would (exit code, error printing).
func (te *testEnv) run(name string, fn func(e *env, args []string) error, args ...string) int {
	te.stdout.Reset()
	te.stderr.Reset()
	te.e.name = name
	return te.e.exit(fn(te.e, args))
}
