package handler

// Fetch sessions (KIP-227), after Kafka's FetchSession.scala.
//
// A Fetch v7+ names a session by (SessionID, SessionEpoch):
//
//	epoch -1 (FINAL)    a full fetch without a session; a known SessionID is closed first.
//	epoch 0  (INITIAL)  a full fetch that asks for a new session; a known SessionID is closed
//	                    first. The response carries the new session's id, or 0 when the cache
//	                    has no slot for it (the client then keeps sending full fetches).
//	epoch N > 0         an incremental fetch in session SessionID: N must be the session's next
//	                    epoch (else INVALID_FETCH_SESSION_EPOCH); an unknown id is
//	                    FETCH_SESSION_ID_NOT_FOUND. Topics add or update session partitions,
//	                    ForgottenTopics remove them, and the fetch reads every session partition.
//	                    The response lists only the partitions that changed since the session's
//	                    last response: new records, a new high watermark, last stable offset or
//	                    log start offset, or an error.
//
// A session made by a v13+ fetch names its partitions by topic id, one made by v7-12 by topic
// name; a fetch of the other kind is FETCH_SESSION_TOPIC_ID_ERROR. Sessions are per broker.
//
// The cache holds at most max.incremental.fetch.session.cache.slots sessions. When it is full, a
// new session takes the slot of the least recently used session if that one has not been used for
// fetchSessionEvictionAge, else of the smallest session older than fetchSessionEvictionAge if the
// new one has more partitions (Kafka's FetchSessionCache rule: a young session cannot be evicted,
// so clients do not thrash each other's sessions); otherwise no session is created.

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
)

const (
	sessionFinalEpoch   = -1
	sessionInitialEpoch = 0
	// fetchSessionEvictionAge is Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
	fetchSessionEvictionAge = 2 * time.Minute
)

// sessionKey names a session partition: by topic name in v7-12 sessions, by topic id in v13+.
type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

// fetchItem is one partition a fetch reads, with the client's position.
type fetchItem struct {
	topic       string   // "" for v13+ until resolved from id
	id          [16]byte // zero below v13
	partition   int32
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32
	// lastFetchedEpoch is a follower's LastFetchedEpoch (v12+), -1 absent.
	lastFetchedEpoch int32
}

func (it *fetchItem) key(byID bool) sessionKey {
	if byID {
		return sessionKey{id: it.id, partition: it.partition}
	}
	return sessionKey{topic: it.topic, partition: it.partition}
}

// sessionPartition is a partition of a session: the client's position and what the session's
// last response told the client about it.
type sessionPartition struct {
	item fetchItem
	// hw, lso and logStart as last sent; hw is -2 until the partition was sent, and after an
	// error, so that it is sent again.
	hw, lso, logStart int64
}

type fetchSession struct {
	id        int32
	nextEpoch int32 // the epoch the next incremental fetch must carry
	byID      bool  // made by a v13+ fetch
	// parts is the fetch order: a partition that returned records moves to the end, so that
	// response max bytes do not starve the partitions behind it (as Kafka does).
	parts    []*sessionPartition
	index    map[sessionKey]*sessionPartition
	created  time.Time
	lastUsed time.Time
}

// fetchSessionCache holds this broker's fetch sessions. Its lock is a leaf: nothing else is
// locked while it is held.
type fetchSessionCache struct {
	slots int
	now   func() time.Time
	mu    struct {
		sync.Mutex
		sessions map[int32]*fetchSession
	}
}

func newFetchSessionCache(slots int, now func() time.Time) *fetchSessionCache {
	c := &fetchSessionCache{slots: slots, now: now}
	c.mu.sessions = make(map[int32]*fetchSession)
	return c
}

// len is the number of sessions held.
func (c *fetchSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.sessions)
}

// fetchContext is what one Fetch request reads and how its response is finished.
type fetchContext struct {
	byID   bool
	items  []fetchItem
	newSes bool          // full fetch at epoch 0: create a session when it is answered
	ses    *fetchSession // incremental fetch in this session
}

func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// newContext resolves the session of r. A non-zero code is a top-level session error: the
// response carries it and no topics.
func (c *fetchSessionCache) newContext(r *kmsg.FetchRequest) (*fetchContext, int16) {
	byID := r.Version >= 13
	fc := &fetchContext{byID: byID}
	if r.Version < 7 || r.SessionEpoch == sessionFinalEpoch || r.SessionEpoch == sessionInitialEpoch {
		if r.Version >= 7 && r.SessionID != 0 {
			c.mu.Lock()
			delete(c.mu.sessions, r.SessionID)
			c.mu.Unlock()
		}
		fc.newSes = r.Version >= 7 && r.SessionEpoch == sessionInitialEpoch && c.slots > 0
		for _, rt := range r.Topics {
			for _, rp := range rt.Partitions {
				fc.items = append(fc.items, requestItem(rt, rp, byID))
			}
		}
		return fc, 0
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.mu.sessions[r.SessionID]
	switch {
	case !ok:
		return nil, kerr.FetchSessionIDNotFound.Code
	case s.nextEpoch != r.SessionEpoch:
		return nil, kerr.InvalidFetchSessionEpoch.Code
	case s.byID != byID:
		return nil, kerr.FetchSessionTopicIDError.Code
	}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			it := requestItem(rt, rp, byID)
			if sp, ok := s.index[it.key(byID)]; ok {
				sp.item = it
				continue
			}
			sp := &sessionPartition{item: it, hw: -2}
			s.index[it.key(byID)] = sp
			s.parts = append(s.parts, sp)
		}
	}
	forgot := false
	for _, ft := range r.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := sessionKey{partition: p}
			if byID {
				k.id = ft.TopicID
			} else {
				k.topic = ft.Topic
			}
			if _, ok := s.index[k]; ok {
				delete(s.index, k)
				forgot = true
			}
		}
	}
	if forgot {
		kept := s.parts[:0]
		for _, sp := range s.parts {
			if s.index[sp.item.key(byID)] == sp {
				kept = append(kept, sp)
			}
		}
		clear(s.parts[len(kept):])
		s.parts = kept
	}
	s.nextEpoch = nextSessionEpoch(s.nextEpoch)
	s.lastUsed = c.now()
	fc.ses = s
	fc.items = make([]fetchItem, len(s.parts))
	for i, sp := range s.parts {
		fc.items[i] = sp.item
	}
	return fc, 0
}

func requestItem(rt kmsg.FetchRequestTopic, rp kmsg.FetchRequestTopicPartition, byID bool) fetchItem {
	it := fetchItem{partition: rp.Partition, fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch,
		lastFetchedEpoch: rp.LastFetchedEpoch}
	if byID {
		it.id = rt.TopicID
	} else {
		it.topic = rt.Topic
	}
	return it
}

// finish completes the response of fc: it creates the session of a new-session fetch, and for an
// incremental fetch drops the partitions that did not change (with their sections) and records
// what was sent. It returns the session id to answer with (0: none).
func (c *fetchSessionCache) finish(fc *fetchContext, resp *kmsg.FetchResponse, secs [][][]log.Section) (int32, [][][]log.Section) {
	switch {
	case fc.newSes:
		return c.create(fc, resp), secs
	case fc.ses == nil:
		return 0, secs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := fc.ses
	var moved []*sessionPartition
	nt := 0
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		np := 0
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			var ps []log.Section
			if ti < len(secs) && pi < len(secs[ti]) {
				ps = secs[ti][pi]
			}
			k := sessionKey{topic: rt.Topic, partition: rp.Partition}
			if fc.byID {
				k = sessionKey{id: rt.TopicID, partition: rp.Partition}
			}
			sp := s.index[k]
			include := sp == nil || len(ps) > 0 || rp.ErrorCode != 0 || rp.DivergingEpoch.EndOffset >= 0 ||
				rp.HighWatermark != sp.hw || rp.LastStableOffset != sp.lso || rp.LogStartOffset != sp.logStart
			if sp != nil {
				sp.hw, sp.lso, sp.logStart = rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset
				if rp.ErrorCode != 0 {
					sp.hw = -2
				}
				if len(ps) > 0 {
					moved = append(moved, sp)
				}
			}
			if include {
				rt.Partitions[np] = *rp
				secs[ti][np] = ps
				np++
			}
		}
		rt.Partitions = rt.Partitions[:np]
		secs[ti] = secs[ti][:np]
		if np > 0 {
			resp.Topics[nt] = *rt
			secs[nt] = secs[ti]
			nt++
		}
	}
	resp.Topics = resp.Topics[:nt]
	secs = secs[:nt]
	if len(moved) > 0 && len(moved) < len(s.parts) {
		isMoved := make(map[*sessionPartition]bool, len(moved))
		for _, sp := range moved {
			isMoved[sp] = true
		}
		order := make([]*sessionPartition, 0, len(s.parts))
		for _, sp := range s.parts {
			if !isMoved[sp] {
				order = append(order, sp)
			}
		}
		for _, sp := range s.parts {
			if isMoved[sp] {
				order = append(order, sp)
			}
		}
		s.parts = order
	}
	return s.id, secs
}

// create makes the session of a full epoch-0 fetch from its request and response, if a slot is
// free or can be freed; it returns the session id, 0 if none was made.
func (c *fetchSessionCache) create(fc *fetchContext, resp *kmsg.FetchResponse) int32 {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.sessions) >= c.slots && !c.evictLocked(len(fc.items), now) {
		return 0
	}
	s := &fetchSession{
		nextEpoch: nextSessionEpoch(sessionInitialEpoch),
		byID:      fc.byID,
		index:     make(map[sessionKey]*sessionPartition, len(fc.items)),
		created:   now,
		lastUsed:  now,
	}
	for _, it := range fc.items {
		k := it.key(fc.byID)
		if sp, ok := s.index[k]; ok { // named twice: the last one wins, as in a map
			sp.item = it
			continue
		}
		sp := &sessionPartition{item: it, hw: -2}
		s.index[k] = sp
		s.parts = append(s.parts, sp)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			k := sessionKey{topic: rt.Topic, partition: rp.Partition}
			if fc.byID {
				k = sessionKey{id: rt.TopicID, partition: rp.Partition}
			}
			if sp, ok := s.index[k]; ok && rp.ErrorCode == 0 {
				sp.hw, sp.lso, sp.logStart = rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset
			}
		}
	}
	for {
		s.id = rand.Int32N(math.MaxInt32) + 1 // 1..MaxInt32; 0 means no session
		if _, taken := c.mu.sessions[s.id]; !taken {
			break
		}
	}
	c.mu.sessions[s.id] = s
	return s.id
}

// evictLocked frees a slot for a new session of size partitions, if Kafka's rule allows it (see
// the file comment). It scans every session: it runs only when the cache is full and a client
// asks for a new session. REQUIRES: c.mu is held.
func (c *fetchSessionCache) evictLocked(size int, now time.Time) bool {
	var lru, smallest *fetchSession
	for _, s := range c.mu.sessions {
		if lru == nil || s.lastUsed.Before(lru.lastUsed) {
			lru = s
		}
		if now.Sub(s.created) > fetchSessionEvictionAge &&
			(smallest == nil || len(s.parts) < len(smallest.parts) || len(s.parts) == len(smallest.parts) && s.id < smallest.id) {
			smallest = s
		}
	}
	switch {
	case lru != nil && now.Sub(lru.lastUsed) > fetchSessionEvictionAge:
		delete(c.mu.sessions, lru.id)
	case smallest != nil && size > len(smallest.parts):
		delete(c.mu.sessions, smallest.id)
	default:
		return false
	}
	return true
}
