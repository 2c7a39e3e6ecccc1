package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's defaults for the follower's fetches.
const (
	DefaultFetchWaitMax          = 500 * time.Millisecond // replica.fetch.wait.max.ms
	DefaultFetchBackoff          = time.Second            // replica.fetch.backoff.ms
	DefaultFetchMaxBytes         = 1 << 20                // replica.fetch.max.bytes
	DefaultFetchResponseMaxBytes = 10 << 20               // replica.fetch.response.max.bytes
)

// fetchState is where a followed partition is in AbstractFetcherThread's cycle.
type fetchState uint8

const (
	// fetching: the next Fetch asks from the log end offset with LastFetchedEpoch; the
	// leader answers a divergence with DivergingEpoch (truncate-on-fetch, KIP-595's scheme
	// adopted for replication in Kafka 2.7).
	fetching fetchState = iota
	// truncating: OffsetForLeaderEpoch first (a leader without truncate-on-fetch, a log with
	// data but no epoch, or after OFFSET_OUT_OF_RANGE), then fetching.
	truncating
	// fenced: the leader answered FENCED_LEADER_EPOCH, so this broker's metadata is older
	// than the leader's: nothing is sent until the manager re-adds the partition with newer
	// metadata (Kafka's onPartitionFenced).
	fenced
)

func (s fetchState) String() string {
	switch s {
	case fetching:
		return "fetching"
	case truncating:
		return "truncating"
	case fenced:
		return "fenced"
	}
	return fmt.Sprintf("fetchState(%d)", uint8(s))
}

// followed is one partition of a fetcher. REQUIRES: fetcher.mu for every field.
type followed struct {
	topic       string
	topicID     [16]byte
	part        int32
	replica     Follower
	leaderEpoch int32 // the leader epoch of the metadata that made this broker follow
	state       fetchState
	delayUntil  time.Time // no request for the partition before this (backoff after an error)
	// inSync: the last fetch brought the log up to the leader's high watermark (Kafka's
	// PartitionFetchState.isReplicaInSync); the follower quota never holds it back then.
	inSync bool
}

// fetcherConfig is what a fetcher takes from the Manager's Config.
type fetcherConfig struct {
	nodeID      int32
	leader      int32
	brokerEpoch func() int64
	addr        func(id int32) (string, bool)
	dial        func(addr string) (LeaderClient, error)
	clock       Clock
	logger      *slog.Logger
	waitMax     time.Duration
	backoff     time.Duration
	maxBytes    int32
	respMax     int32
	quota       *Quota // follower replication quota (throttle.go); nil: none
	appended    func(bytes int64)
}

// fetcher replicates the partitions this broker follows from one leader (Kafka's
// ReplicaFetcherThread): one goroutine (run) loops over build, send, apply. The decisions
// (buildFetch, applyFetch, buildOffsetForLeaderEpoch, applyOffsetForLeaderEpoch, connFailed)
// are plain methods the deterministic simulation drives without the goroutine.
type fetcher struct {
	cfg fetcherConfig

	mu              sync.Mutex
	parts           map[tp]*followed
	truncateOnFetch bool // the leader supports Fetch v12+ (LastFetchedEpoch, DivergingEpoch)

	wake chan struct{} // buffered 1: a partition was added or changed
	stop chan struct{}
	done chan struct{}
}

func newFetcher(cfg fetcherConfig) *fetcher {
	return &fetcher{cfg: cfg, parts: make(map[tp]*followed), truncateOnFetch: true,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// add starts (or restarts, with newer metadata) fetching a partition from the fetcher's leader.
// A log with records but no epoch, or any log when the leader has no truncate-on-fetch, starts
// by truncating (OffsetForLeaderEpoch); every other one fetches from its log end offset with its
// last fetched epoch.
func (f *fetcher) add(key tp, topicID [16]byte, r Follower, leaderEpoch int32) {
	f.mu.Lock()
	st := fetching
	if !f.truncateOnFetch || (r.LastFetchedEpoch() < 0 && r.LogEndOffset() > r.LogStartOffset()) {
		st = truncating
	}
	f.parts[key] = &followed{topic: key.topic, topicID: topicID, part: key.part, replica: r,
		leaderEpoch: leaderEpoch, state: st}
	f.mu.Unlock()
	f.signal()
}

// remove stops fetching a partition. It waits for a response being applied to it, so once it
// returns no fetched batch is appended to the partition any more.
func (f *fetcher) remove(key tp) {
	f.mu.Lock()
	delete(f.parts, key)
	f.mu.Unlock()
}

func (f *fetcher) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.parts) == 0
}

func (f *fetcher) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// sortedLocked lists the partitions in a fixed order (deterministic requests). REQUIRES: mu.
func (f *fetcher) sortedLocked() []*followed {
	out := make([]*followed, 0, len(f.parts))
	for _, p := range f.parts {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].part < out[j].part
	})
	return out
}

// buildFetch is the next Fetch for the partitions in the fetching state and not backing off,
// or nil when there is none. Version 15+ fields (ReplicaState with the broker epoch) and the
// older top-level ReplicaID are both set; the encoder writes the ones of the version sent.
func (f *fetcher) buildFetch(now time.Time) *kmsg.FetchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.cfg.nodeID
	req.ReplicaState.ID = f.cfg.nodeID
	req.ReplicaState.Epoch = f.cfg.brokerEpoch()
	req.MaxWaitMillis = int32(f.cfg.waitMax / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = f.cfg.respMax
	req.SessionID = 0
	req.SessionEpoch = -1 // full fetch, no session
	byTopic := map[string]int{}
	for _, p := range f.sortedLocked() {
		if p.state != fetching || now.Before(p.delayUntil) || f.cfg.quota.Holds(p.topic, p.part, p.inSync) {
			continue
		}
		i, ok := byTopic[p.topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = p.topic, p.topicID
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[p.topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.part
		rp.CurrentLeaderEpoch = p.leaderEpoch
		rp.FetchOffset = p.replica.LogEndOffset()
		rp.LastFetchedEpoch = p.replica.LastFetchedEpoch()
		rp.LogStartOffset = p.replica.LogStartOffset()
		rp.PartitionMaxBytes = f.cfg.maxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	return req
}

// requested finds the partition a response names, as it was when the request was built: nil
// when it is no longer followed, or its offset or epoch moved since (the answer is stale and
// dropped, as AbstractFetcherThread drops it).
func (f *fetcher) requestedLocked(req *kmsg.FetchRequest, topic string, topicID [16]byte, part int32) (*followed, *kmsg.FetchRequestTopicPartition) {
	for i := range req.Topics {
		t := &req.Topics[i]
		if t.Topic != topic && (topicID == [16]byte{} || t.TopicID != topicID) {
			continue
		}
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			if rp.Partition != part {
				continue
			}
			p := f.parts[tp{t.Topic, part}]
			if p == nil || p.state != fetching || p.leaderEpoch != rp.CurrentLeaderEpoch ||
				p.replica.LogEndOffset() != rp.FetchOffset {
				return nil, nil
			}
			return p, rp
		}
	}
	return nil, nil
}

// applyFetch applies a Fetch response (Kafka's processFetchRequest): per partition, a
// DivergingEpoch truncates, records are appended, the leader's high watermark is taken, and
// errors back the partition off or fence it. It returns the number of bytes appended.
func (f *fetcher) applyFetch(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if resp.ErrorCode != 0 {
		err := kerr.ErrorForCode(resp.ErrorCode)
		f.cfg.logger.Warn("replica fetch failed", "leader", f.cfg.leader, "err", err)
		f.delayRequestedLocked(req, now)
		return 0
	}
	appended := 0
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			p, sent := f.requestedLocked(req, rt.Topic, rt.TopicID, rp.Partition)
			if p == nil {
				continue
			}
			appended += f.applyPartitionLocked(p, sent, rp, now)
		}
	}
	return appended
}

func (f *fetcher) applyPartitionLocked(p *followed, sent *kmsg.FetchRequestTopicPartition, rp *kmsg.FetchResponseTopicPartition, now time.Time) int {
	lg := f.cfg.logger.With("topic", p.topic, "partition", p.part, "leader", f.cfg.leader, "leaderEpoch", p.leaderEpoch)
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		// Kafka's fetchOffsetAndTruncate: behind the leader's log start, start over there;
		// otherwise the leader's log is shorter than ours (our suffix is not on it): find
		// the divergence with OffsetForLeaderEpoch.
		if sent.FetchOffset < rp.LogStartOffset {
			if err := f.truncateFullyLocked(p, rp.LogStartOffset); err != nil {
				lg.Error("reset follower log to the leader's log start", "offset", rp.LogStartOffset, "err", err)
				p.delayUntil = now.Add(f.cfg.backoff)
			}
			return 0
		}
		p.state = truncating
		return 0
	case errors.Is(err, kerr.FencedLeaderEpoch):
		lg.Info("leader has a newer leader epoch than this broker's metadata: fetching stops until the metadata catches up")
		p.state = fenced
		return 0
	default:
		// NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH (the leader has not applied our
		// metadata yet), UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR...: try again
		// after the backoff (Kafka's partitionsWithError -> delayPartitions).
		lg.Debug("replica fetch partition error, backing off", "err", err)
		p.delayUntil = now.Add(f.cfg.backoff)
		return 0
	}
	if d := rp.DivergingEpoch; d.Epoch >= 0 && d.EndOffset >= 0 {
		off, _ := truncationOffset(p.replica, d.Epoch, d.EndOffset)
		if err := f.truncateLocked(p, off); err != nil {
			lg.Error("truncate diverging follower log", "divergingEpoch", d.Epoch, "endOffset", d.EndOffset, "err", err)
			p.delayUntil = now.Add(f.cfg.backoff)
		}
		// Whether the truncation is complete or not (the leader's epoch is unknown here:
		// KIP-279), the next fetch carries the new last fetched epoch and the leader checks it
		// again.
		return 0
	}
	n := len(rp.RecordBatches)
	if n > 0 {
		if err := p.replica.AppendAsFollowerIn(p.leaderEpoch, rp.RecordBatches); err != nil {
			lg.Error("append fetched batches", "offset", sent.FetchOffset, "err", err)
			p.delayUntil = now.Add(f.cfg.backoff)
			return 0
		}
		if f.cfg.appended != nil {
			f.cfg.appended(int64(n))
		}
	}
	p.replica.UpdateFollowerHighWatermark(rp.HighWatermark)
	// Follower quota: every byte of a throttled partition counts, an in-sync one's too
	// (ReplicaFetcherThread.processPartitionData).
	if q := f.cfg.quota; q != nil && q.IsThrottled(p.topic, p.part) {
		q.Record(int64(n))
	}
	p.inSync = p.replica.LogEndOffset() >= rp.HighWatermark
	if mv, ok := p.replica.(logStartMover); ok && rp.LogStartOffset > p.replica.LogStartOffset() {
		// Only as far as this replica's high watermark: beyond it the records are not known
		// committed here yet; a later fetch moves it the rest of the way.
		if to := min(rp.LogStartOffset, p.replica.HighWatermark()); to > p.replica.LogStartOffset() {
			if _, err := mv.DeleteRecords(to); err != nil {
				lg.Warn("move follower log start to the leader's", "offset", to, "err", err)
			}
		}
	}
	return n
}

// truncateLocked truncates a followed partition's log to off (nothing when off is at or past
// its end). Below the local high watermark it only happens after an unclean election; it is
// done, as Kafka does, and logged as a warning. REQUIRES: mu.
func (f *fetcher) truncateLocked(p *followed, off int64) error {
	if off >= p.replica.LogEndOffset() {
		// Nothing to cut, but a leader epoch this replica started as a leader and never wrote
		// in must go from its epoch cache (Kafka's truncateTo does the same), or its next
		// fetch names that epoch again.
		return p.replica.TruncateTo(off)
	}
	lg := f.cfg.logger.With("topic", p.topic, "partition", p.part, "leader", f.cfg.leader, "offset", off)
	if hw := p.replica.HighWatermark(); off < hw {
		lg.Warn("truncating follower log below its high watermark: the leader does not have committed records (unclean leader election?)", "highWatermark", hw)
	}
	if err := p.replica.TruncateTo(off); err != nil {
		return err
	}
	lg.Info("truncated follower log to the leader's", "logEndOffset", p.replica.LogEndOffset())
	return nil
}

func (f *fetcher) truncateFullyLocked(p *followed, start int64) error {
	ft, ok := p.replica.(fullTruncater)
	if !ok {
		return errors.New("the partition cannot restart its log at an offset past its end")
	}
	if err := ft.TruncateFullyAndStartAt(start); err != nil {
		return err
	}
	p.state = fetching
	return nil
}

// delayRequestedLocked backs off every partition of req. REQUIRES: mu.
func (f *fetcher) delayRequestedLocked(req *kmsg.FetchRequest, now time.Time) {
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			if p := f.parts[tp{req.Topics[i].Topic, req.Topics[i].Partitions[j].Partition}]; p != nil {
				p.delayUntil = now.Add(f.cfg.backoff)
			}
		}
	}
}

// connFailed backs off every partition after the connection to the leader failed (Kafka's
// handling of a failed fetch: delay the partitions by replica.fetch.backoff.ms).
func (f *fetcher) connFailed(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.parts {
		if p.delayUntil.Before(now.Add(f.cfg.backoff)) {
			p.delayUntil = now.Add(f.cfg.backoff)
		}
	}
}

// truncationOffset is AbstractFetcherThread.getOffsetTruncationState: where a follower
// truncates given the leader's (epoch, end offset) for the epoch it asked about (DivergingEpoch
// or an OffsetForLeaderEpoch answer). done is false when the follower does not know the epoch
// the leader answered: it truncated to the end of its largest smaller epoch and must ask again
// (KIP-279). It never truncates to the local high watermark (KIP-101), except when the leader
// answered with no offset at all (no epoch at or below the one asked), as Kafka does.
func truncationOffset(r Follower, leaderEpoch int32, leaderEndOffset int64) (offset int64, done bool) {
	leo := r.LogEndOffset()
	switch {
	case leaderEndOffset < 0:
		return min(r.HighWatermark(), leo), true
	case leaderEpoch < 0:
		return min(leaderEndOffset, leo), true
	}
	fe, fo := r.EndOffsetForEpoch(leaderEpoch)
	switch {
	case fo < 0:
		return min(leaderEndOffset, leo), true
	case fe != leaderEpoch:
		return min(fo, leo), false
	default:
		return min(fo, leaderEndOffset, leo), true
	}
}

// buildOffsetForLeaderEpoch asks the end offset of each truncating partition's latest epoch.
// A truncating partition with records but no epoch at all is truncated to its high watermark
// here (Kafka's truncateToHighWatermark, for logs written before leader epochs) and fetches.
func (f *fetcher) buildOffsetForLeaderEpoch(now time.Time) *kmsg.OffsetForLeaderEpochRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.cfg.nodeID
	byTopic := map[string]int{}
	for _, p := range f.sortedLocked() {
		if p.state != truncating || now.Before(p.delayUntil) {
			continue
		}
		epoch := p.replica.LastFetchedEpoch()
		if epoch < 0 {
			if err := f.truncateLocked(p, p.replica.HighWatermark()); err != nil {
				f.cfg.logger.Error("truncate follower log without epochs to its high watermark", "topic", p.topic, "partition", p.part, "err", err)
				p.delayUntil = now.Add(f.cfg.backoff)
				continue
			}
			p.state = fetching
			continue
		}
		i, ok := byTopic[p.topic]
		if !ok {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = p.topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[p.topic] = i
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition = p.part
		rp.CurrentLeaderEpoch = p.leaderEpoch
		rp.LeaderEpoch = epoch
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	return req
}

// applyOffsetForLeaderEpoch truncates each answered partition (truncationOffset); a partition
// whose truncation is complete moves on to fetching, the others ask again.
func (f *fetcher) applyOffsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest, resp *kmsg.OffsetForLeaderEpochResponse, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			p := f.parts[tp{rt.Topic, rp.Partition}]
			if p == nil || p.state != truncating || !askedEpoch(req, rt.Topic, rp.Partition, p) {
				continue
			}
			lg := f.cfg.logger.With("topic", p.topic, "partition", p.part, "leader", f.cfg.leader)
			switch err := kerr.ErrorForCode(rp.ErrorCode); {
			case err == nil:
			case errors.Is(err, kerr.FencedLeaderEpoch):
				p.state = fenced
				continue
			default:
				lg.Debug("offset for leader epoch failed, backing off", "err", err)
				p.delayUntil = now.Add(f.cfg.backoff)
				continue
			}
			off, done := truncationOffset(p.replica, rp.LeaderEpoch, rp.EndOffset)
			if err := f.truncateLocked(p, off); err != nil {
				lg.Error("truncate follower log", "offset", off, "err", err)
				p.delayUntil = now.Add(f.cfg.backoff)
				continue
			}
			if done {
				p.state = fetching
			}
		}
	}
}

// askedEpoch reports whether req asked about p with its current leader epoch and last epoch.
func askedEpoch(req *kmsg.OffsetForLeaderEpochRequest, topic string, part int32, p *followed) bool {
	for _, t := range req.Topics {
		if t.Topic != topic {
			continue
		}
		for _, rp := range t.Partitions {
			if rp.Partition == part {
				return rp.CurrentLeaderEpoch == p.leaderEpoch && rp.LeaderEpoch == p.replica.LastFetchedEpoch()
			}
		}
	}
	return false
}

// nextWait is how long until some partition may be requested again, or 0 when none is
// waiting on a backoff.
func (f *fetcher) nextWait(now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d time.Duration
	for _, p := range f.parts {
		w := p.delayUntil.Sub(now)
		if p.state == fetching && !now.Before(p.delayUntil) && f.cfg.quota.Holds(p.topic, p.part, p.inSync) {
			// Held back by the follower quota: look again after the backoff, as Kafka's
			// fetcher waits replica.fetch.backoff.ms when its fetch is empty.
			w = max(f.cfg.backoff, minThrottleRecheck)
		} else if p.state == fenced || !now.Before(p.delayUntil) {
			continue
		}
		if d == 0 || w < d {
			d = w
		}
	}
	return d
}

// minThrottleRecheck bounds how often a fetcher whose partitions are all held back by the
// follower quota looks at the quota again (with replica.fetch.backoff.ms=0).
const minThrottleRecheck = 10 * time.Millisecond

// start runs the fetcher's goroutine until close.
func (f *fetcher) start() { go f.run() }

// close stops the goroutine and waits for it.
func (f *fetcher) close() {
	close(f.stop)
	<-f.done
}

// run is the fetcher's loop: connect (with backoff), truncate what needs OffsetForLeaderEpoch,
// fetch, apply; with nothing to fetch it waits for a partition to be added or a backoff to
// end. It never spins: every failed round trip backs off.
func (f *fetcher) run() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-f.done:
		}
	}()
	var client LeaderClient
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	for {
		select {
		case <-f.stop:
			return
		case <-f.wake: // about to look at every partition anyway
		default:
		}
		now := f.cfg.clock.Now()
		oreq := f.buildOffsetForLeaderEpoch(now)
		freq := f.buildFetch(now)
		if oreq == nil && freq == nil {
			if !f.idle(f.nextWait(now)) {
				return
			}
			continue
		}
		if client == nil {
			c, err := f.connect()
			if err != nil {
				f.cfg.logger.Warn("connect to partition leader", "leader", f.cfg.leader, "err", err)
				f.connFailed(now)
				continue
			}
			client = c
			if v, ok := c.(fetchVersioner); ok {
				f.setTruncateOnFetch(v.FetchVersion() >= 12)
			}
			continue // rebuild: the leader's version may have moved partitions to truncating
		}
		var err error
		if oreq != nil {
			var resp *kmsg.OffsetForLeaderEpochResponse
			if resp, err = client.OffsetForLeaderEpoch(ctx, oreq); err == nil {
				f.applyOffsetForLeaderEpoch(oreq, resp, f.cfg.clock.Now())
			}
		}
		if err == nil && freq != nil {
			var resp *kmsg.FetchResponse
			if resp, err = client.Fetch(ctx, freq); err == nil {
				f.applyFetch(freq, resp, f.cfg.clock.Now())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.cfg.logger.Warn("replica fetch from leader failed", "leader", f.cfg.leader, "err", err)
			client.Close()
			client = nil
			f.connFailed(f.cfg.clock.Now())
		}
	}
}

// setTruncateOnFetch records whether the leader supports truncate-on-fetch (Fetch v12+). Without
// it every partition fetching truncates through OffsetForLeaderEpoch first (again after a
// reconnect: a repeated check finds nothing to cut).
func (f *fetcher) setTruncateOnFetch(ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.truncateOnFetch = ok
	if ok {
		return
	}
	for _, p := range f.parts {
		if p.state == fetching {
			p.state = truncating
		}
	}
}

// idle waits for a wake-up, the end of the shortest backoff (d > 0), or stop; false on stop.
func (f *fetcher) idle(d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		timer = f.cfg.clock.After(d)
	}
	select {
	case <-f.stop:
		return false
	case <-f.wake:
	case <-timer:
	}
	return true
}

func (f *fetcher) connect() (LeaderClient, error) {
	addr, ok := f.cfg.addr(f.cfg.leader)
	if !ok {
		return nil, fmt.Errorf("broker %d has no known inter-broker address", f.cfg.leader)
	}
	c, err := f.cfg.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial broker %d at %s: %w", f.cfg.leader, addr, err)
	}
	return c, nil
}
