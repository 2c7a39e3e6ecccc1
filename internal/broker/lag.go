package broker

// The broker side of the consumer lag tracker (metrics.LagTracker): the groups this broker
// coordinates, their committed offsets, the high watermark of each partition and the timestamp
// of the record at each committed offset (the first unconsumed one). A partition led here is read
// from the local log; one led by another broker is asked of its leader (ListOffsets for the high
// watermarks, Fetch for the records), one request per leader for all its partitions. A
// timestamp found is kept while the group's committed offset stays where it is, so a scrape only
// reads the logs of the partitions whose groups committed since the last one.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/clientpool"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metrics"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
)

// Lag is the consumer lag tracker of the groups this broker coordinates (nil before Start).
func (b *Broker) Lag() *metrics.LagTracker { return b.lag }

// lagReadBytes is the most bytes read at a time for the record at a committed offset (the first
// batch is read whole even when larger); lagReadRounds bounds the reads of one partition whose
// committed offset is followed by control batches and aborted transactions only.
const (
	lagReadBytes  = 16 << 10
	lagReadRounds = 8
	// lagFetchMaxBytes bounds a Fetch of the records of a leader's partitions.
	lagFetchMaxBytes = 16 << 20
)

// startLag makes the lag tracker, registers it with m and starts its sampler, which b.stop
// stops: a lag sample per group every lag.history.interval.ms, a throughput sample every second.
// It fails when the tracker's metric names clash with ones registered already.
func (b *Broker) startLag(m *metrics.Metrics) error {
	src := &lagSource{b: b, pool: clientpool.New(fmt.Sprintf("moldau-lag-%d", b.cfg.NodeID)), ts: map[lagKey]lagTimestamp{}}
	b.lagSrc = src
	interval := time.Duration(b.cfg.LagHistoryIntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = 10 * time.Second
	}
	b.lag = metrics.NewLagTracker(metrics.LagConfig{
		Source: src,
		Totals: func() metrics.TrafficTotals {
			in, out, msgs := m.Totals()
			return metrics.TrafficTotals{BytesIn: in, BytesOut: out, MessagesIn: msgs}
		},
		HistoryInterval: interval,
	})
	if err := m.Register(b.lag); err != nil {
		src.pool.Close()
		return fmt.Errorf("consumer lag metrics: %w", err)
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer src.pool.Close()
		lagTick := time.NewTicker(interval)
		defer lagTick.Stop()
		thrTick := time.NewTicker(time.Second)
		defer thrTick.Stop()
		b.lag.SampleThroughput() // the base of the first rate
		for {
			select {
			case <-b.stop:
				return
			case <-thrTick.C:
				b.lag.SampleThroughput()
			case <-lagTick.C:
				b.lag.SampleLag()
			}
		}
	}()
	return nil
}

type lagKey struct {
	topic     string
	partition int32
}

// lagTimestamp is the timestamp found for a committed offset. It holds while the group's
// committed offset stays at committed: the record found there does not change, unless retention
// or compaction removes it (at is then below the log start offset, and it is read again).
type lagTimestamp struct {
	committed int64
	at        int64 // the offset of the record found
	ts        int64
}

// lagSource implements metrics.LagSource over the broker. The tracker calls it one computation
// at a time.
type lagSource struct {
	b    *Broker
	pool *clientpool.Pool // clients of the leaders of partitions not led here

	mu sync.Mutex
	// ts is the timestamp last found per partition and committed offset (committed offsets of
	// different groups on one partition each keep theirs).
	ts map[lagKey]lagTimestamp
}

// ConsumerGroups lists the groups of the local coordinator with their committed offsets, each
// with its partition's high watermark and the timestamp of the record at the offset.
func (s *lagSource) ConsumerGroups(ctx context.Context) []metrics.GroupOffsets {
	groups := s.b.groups
	list := groups.ListGroups(kmsg.NewPtrListGroupsRequest())
	if list.ErrorCode != 0 || len(list.Groups) == 0 {
		s.forget(nil)
		return nil
	}
	out := make([]metrics.GroupOffsets, 0, len(list.Groups))
	byName := make(map[string]int, len(list.Groups))
	describe := kmsg.NewPtrDescribeGroupsRequest()
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 8 // many groups in one request
	for _, g := range list.Groups {
		byName[g.Group] = len(out)
		out = append(out, metrics.GroupOffsets{Group: g.Group, State: g.GroupState})
		describe.Groups = append(describe.Groups, g.Group)
		fg := kmsg.NewOffsetFetchRequestGroup()
		fg.Group = g.Group // Topics nil: every committed offset
		fetch.Groups = append(fetch.Groups, fg)
	}
	for _, d := range groups.DescribeGroups(describe).Groups {
		if i, ok := byName[d.Group]; ok && d.ErrorCode == 0 {
			out[i].Members = len(d.Members)
		}
	}
	im := s.b.meta.Image()
	for _, fg := range groups.OffsetFetch(fetch).Groups {
		i, ok := byName[fg.Group]
		if !ok || fg.ErrorCode != 0 {
			continue
		}
		for _, t := range fg.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 || p.Offset < 0 || !im.HasPartition(t.Topic, p.Partition) {
					continue // no commit, or one of a deleted topic: no lag (as kafka_exporter)
				}
				out[i].Partitions = append(out[i].Partitions, metrics.CommittedOffset{
					Topic: t.Topic, Partition: p.Partition, Committed: p.Offset, HighWatermark: -1, Timestamp: -1})
			}
		}
	}
	var need []*metrics.CommittedOffset
	for i := range out {
		for j := range out[i].Partitions {
			need = append(need, &out[i].Partitions[j])
		}
	}
	s.resolve(ctx, im, need)
	live := make(map[lagKey]bool, len(need))
	for _, c := range need {
		live[lagKey{c.Topic, c.Partition}] = true
	}
	s.forget(live)
	return out
}

// resolve fills in the high watermark and the record timestamp of every entry of need (whose
// partitions exist in im). It is safe for concurrent use: the admin API resolves the groups it
// shows while the tracker computes.
func (s *lagSource) resolve(ctx context.Context, im *metadata.Image, need []*metrics.CommittedOffset) {
	remote := map[int32][]*metrics.CommittedOffset{} // by leader
	for _, c := range need {
		k := lagKey{c.Topic, c.Partition}
		if p := s.b.parts.Get(c.Topic, c.Partition); p != nil && p.IsLeader() {
			c.HighWatermark = p.HighWatermark()
			if c.Committed < c.HighWatermark {
				c.Timestamp = s.cachedOr(k, c.Committed, p.LogStartOffset(), func() (int64, int64, bool) {
					return localFirstTimestamp(p, c.Committed)
				})
			}
			continue
		}
		t, _ := im.Topic(c.Topic) // c's partition exists in im
		if leader := t.Partitions[c.Partition].Leader; leader >= 0 {
			remote[leader] = append(remote[leader], c)
		}
	}
	var wg sync.WaitGroup
	for leader, cs := range remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.resolveRemote(ctx, im, leader, cs); err != nil {
				s.b.log.Debug("consumer lag: partition leader not reached", "leader", leader, "partitions", len(cs), "err", err)
			}
		}()
	}
	wg.Wait()
}

// cachedOr returns the timestamp found before for committed on k, or calls read (the timestamp,
// the offset of its record, whether one was found) and keeps what it found.
func (s *lagSource) cachedOr(k lagKey, committed, logStart int64, read func() (ts, at int64, ok bool)) int64 {
	if ts, ok := s.cached(k, committed, logStart); ok {
		return ts
	}
	ts, at, ok := read()
	if !ok {
		return -1
	}
	s.keep(k, committed, at, ts)
	return ts
}

func (s *lagSource) cached(k lagKey, committed, logStart int64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ts[k]
	if ok && c.committed == committed && c.at >= logStart {
		return c.ts, true
	}
	return -1, false
}

func (s *lagSource) keep(k lagKey, committed, at, ts int64) {
	s.mu.Lock()
	s.ts[k] = lagTimestamp{committed: committed, at: at, ts: ts}
	s.mu.Unlock()
}

// forget drops the timestamps of partitions not in live (nil: all).
func (s *lagSource) forget(live map[lagKey]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.ts {
		if !live[k] {
			delete(s.ts, k)
		}
	}
}

// localFirstTimestamp reads the local leader p from offset from (or its log start, when retention
// removed from) up to its high watermark for the first data record, skipping control batches and
// aborted transactions; it returns the record's timestamp and offset.
func localFirstTimestamp(p *partition.Partition, from int64) (ts, at int64, ok bool) {
	from = max(from, p.LogStartOffset())
	for range lagReadRounds {
		hw := p.HighWatermark()
		if from >= hw {
			return -1, -1, false
		}
		data, err := p.Read(from, lagReadBytes, false, true)
		if err != nil || len(data) == 0 {
			return -1, -1, false
		}
		var aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
		for _, a := range p.AbortedTransactions(from, hw) {
			aborted = append(aborted, kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
		}
		ts, at, next, ok, err := firstTimestamp(data, from, newAbortTracker(aborted))
		if ok || err != nil || next <= from {
			return ts, at, ok
		}
		from = next
	}
	return -1, -1, false
}

// resolveRemote asks leader for the high watermarks of cs (ListOffsets) and for the record at
// each committed offset below it whose timestamp is not known yet (Fetch, read_committed: what a
// read_committed consumer reads next; from the last stable offset on, read_uncommitted, skipping
// control batches only).
func (s *lagSource) resolveRemote(ctx context.Context, im *metadata.Image, leader int32, cs []*metrics.CommittedOffset) error {
	list := kmsg.NewPtrListOffsetsRequest()
	list.ReplicaID = -1
	byTopic := map[string]int{}
	for _, c := range cs {
		i, ok := byTopic[c.Topic]
		if !ok {
			i = len(list.Topics)
			byTopic[c.Topic] = i
			t := kmsg.NewListOffsetsRequestTopic()
			t.Topic = c.Topic
			list.Topics = append(list.Topics, t)
		}
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp = c.Partition, -1 // latest: the high watermark
		list.Topics[i].Partitions = append(list.Topics[i].Partitions, p)
	}
	resp, err := s.send(ctx, leader, list)
	if err != nil {
		return err
	}
	hws := map[lagKey]int64{}
	for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				hws[lagKey{t.Topic, p.Partition}] = p.Offset
			}
		}
	}
	// The records to read: one per partition and committed offset (groups at the same offset
	// share it).
	type wantKey struct {
		lagKey
		committed int64
	}
	wants := map[wantKey]*remoteRead{}
	var order []wantKey
	for _, c := range cs {
		k := lagKey{c.Topic, c.Partition}
		hw, ok := hws[k]
		if !ok {
			continue
		}
		c.HighWatermark = hw
		if c.Committed >= hw {
			continue
		}
		if ts, ok := s.cached(k, c.Committed, -1); ok {
			c.Timestamp = ts
			continue
		}
		wk := wantKey{k, c.Committed}
		w, ok := wants[wk]
		if !ok {
			t, _ := im.Topic(c.Topic)
			w = &remoteRead{key: k, topicID: t.ID, committed: c.Committed, from: c.Committed, hw: hw, readCommitted: true}
			wants[wk] = w
			order = append(order, wk)
		}
		w.cs = append(w.cs, c)
	}
	pending := make([]*remoteRead, 0, len(order))
	for _, wk := range order {
		pending = append(pending, wants[wk])
	}
	for round := 0; len(pending) > 0 && round < remoteReadRounds; round++ {
		// A Fetch names a partition once, and has one isolation level: a round sends the first
		// read of each partition, by isolation level.
		var batch [2][]*remoteRead
		var rest []*remoteRead
		seen := map[lagKey]bool{}
		for _, w := range pending {
			if seen[w.key] {
				rest = append(rest, w)
				continue
			}
			seen[w.key] = true
			if w.readCommitted {
				batch[1] = append(batch[1], w)
			} else {
				batch[0] = append(batch[0], w)
			}
		}
		for iso, ws := range batch {
			if len(ws) == 0 {
				continue
			}
			more, err := s.fetchRound(ctx, leader, int8(iso), ws)
			if err != nil {
				return err
			}
			rest = append(rest, more...)
		}
		pending = rest
	}
	return nil
}

// remoteReadRounds bounds the Fetch rounds of one computation for the partitions of one leader:
// what is not found by then is read again at the next computation.
const remoteReadRounds = 16

// remoteRead is the read of the record at one committed offset of a partition led elsewhere.
type remoteRead struct {
	key           lagKey
	topicID       [16]byte
	committed     int64
	from          int64 // where the next read starts
	hw            int64
	readCommitted bool
	cs            []*metrics.CommittedOffset // the groups' entries to fill in
}

// fetchRound sends one Fetch to leader for ws (distinct partitions, all of isolation level iso)
// and returns the reads to go on with.
func (s *lagSource) fetchRound(ctx context.Context, leader int32, iso int8, ws []*remoteRead) ([]*remoteRead, error) {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.IsolationLevel = 0, 0, iso
	req.MaxBytes = lagFetchMaxBytes
	byKey := make(map[lagKey]*remoteRead, len(ws))
	topicAt := map[string]int{}
	for _, w := range ws {
		byKey[w.key] = w
		i, ok := topicAt[w.key.topic]
		if !ok {
			i = len(req.Topics)
			topicAt[w.key.topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = w.key.topic, w.topicID
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.PartitionMaxBytes = w.key.partition, w.from, lagReadBytes
		p.CurrentLeaderEpoch, p.LogStartOffset = -1, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	resp, err := s.send(ctx, leader, req)
	if err != nil {
		return nil, err
	}
	var more []*remoteRead
	for _, t := range resp.(*kmsg.FetchResponse).Topics {
		for _, p := range t.Partitions {
			w := byKey[lagKey{t.Topic, p.Partition}]
			if w == nil {
				continue // v13+ answers name topics by id only; they are matched below
			}
			delete(byKey, w.key)
			if s.fetched(w, &p) {
				more = append(more, w)
			}
		}
	}
	// Answers of v13+ carry the topic id, not the name.
	ids := map[[16]byte]string{}
	for _, w := range byKey {
		ids[w.topicID] = w.key.topic
	}
	for _, t := range resp.(*kmsg.FetchResponse).Topics {
		if t.Topic != "" {
			continue
		}
		for _, p := range t.Partitions {
			w := byKey[lagKey{ids[t.TopicID], p.Partition}]
			if w == nil {
				continue
			}
			delete(byKey, w.key)
			if s.fetched(w, &p) {
				more = append(more, w)
			}
		}
	}
	return more, nil
}

// fetched takes the answer p of read w in; it reports whether w goes on.
func (s *lagSource) fetched(w *remoteRead, p *kmsg.FetchResponseTopicPartition) bool {
	switch {
	case p.ErrorCode == kerr.OffsetOutOfRange.Code && p.LogStartOffset > w.from:
		w.from = p.LogStartOffset // retention removed the offset: the first unconsumed is at the start
		return true
	case p.ErrorCode != 0:
		return false
	}
	if p.HighWatermark >= 0 {
		w.hw = p.HighWatermark
	}
	ts, at, next, ok, err := firstTimestamp(p.RecordBatches, w.from, newAbortTracker(p.AbortedTransactions))
	if err != nil {
		return false
	}
	if ok {
		for _, c := range w.cs {
			c.Timestamp = ts
		}
		s.keep(w.key, w.committed, at, ts)
		return false
	}
	if next > w.from {
		w.from = next
	}
	if w.readCommitted && p.LastStableOffset >= 0 && w.from >= p.LastStableOffset {
		// An open transaction from here on: read what is below the high watermark as it is.
		w.readCommitted = false
	}
	return w.from < w.hw
}

// send sends req to broker id over the inter-broker listener, as the transaction coordinator does.
func (s *lagSource) send(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	addr, ok := s.b.interBrokerAddr(id)
	if !ok {
		return nil, fmt.Errorf("broker %d is not registered", id)
	}
	cl, err := s.pool.Client(addr)
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", id, err)
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no connection to broker %d at %s", id, addr)
	}
	return seeds[0].Request(ctx, req)
}

// abortTracker is a read_committed consumer's view of aborted transactions (Kafka's
// FetchCollector): a transactional batch of a producer whose aborted transaction began at or
// before it is skipped, up to that producer's next control batch (the abort marker).
type abortTracker struct {
	pending []kmsg.FetchResponseTopicPartitionAbortedTransaction // by first offset, not reached yet
	active  map[int64]bool                                       // producers inside an aborted transaction
}

func newAbortTracker(aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction) *abortTracker {
	a := &abortTracker{pending: append([]kmsg.FetchResponseTopicPartitionAbortedTransaction(nil), aborted...), active: map[int64]bool{}}
	sort.Slice(a.pending, func(i, j int) bool { return a.pending[i].FirstOffset < a.pending[j].FirstOffset })
	return a
}

// skip reports whether the batch with header h holds no record a read_committed consumer reads.
func (a *abortTracker) skip(h record.BatchHeader) bool {
	for len(a.pending) > 0 && a.pending[0].FirstOffset <= h.LastOffset() {
		a.active[a.pending[0].ProducerID] = true
		a.pending = a.pending[1:]
	}
	if h.Control() {
		delete(a.active, h.ProducerID)
		return true
	}
	return h.Transactional() && a.active[h.ProducerID]
}

// firstTimestamp scans batches (whole batches in offset order, as a log or a Fetch answers them,
// perhaps with a partial batch at the end) for the first data record at or after from that a
// read_committed consumer reads. It returns its timestamp and offset, or ok false and next: the
// offset after the last whole batch scanned, where a further read goes on.
func firstTimestamp(batches []byte, from int64, aborts *abortTracker) (ts, at, next int64, ok bool, err error) {
	next = from
	split, _ := record.Split(batches) // a partial batch at the end is read again from next
	for _, batch := range split {
		h, err := record.ParseHeader(batch)
		if err != nil {
			return -1, -1, next, false, err
		}
		if h.LastOffset() < from {
			continue
		}
		next = h.LastOffset() + 1
		if aborts.skip(h) {
			continue
		}
		bh, recs, err := record.Records(batch)
		if err != nil {
			return -1, -1, next, false, err
		}
		for _, r := range recs {
			if off := bh.BaseOffset + int64(r.OffsetDelta); off >= from {
				return bh.Timestamp(r), off, next, true, nil
			}
		}
	}
	return -1, -1, next, false, nil
}
