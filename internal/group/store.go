package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KV is one __consumer_offsets record: a key and a value, nil for a tombstone.
type KV struct {
	Key, Value []byte
}

// StoredRecord is one record of the store as Load replays it.
type StoredRecord struct {
	// Partition and Offset are where the record is, for the log line that reports a record the
	// replay skips.
	Partition int32
	Offset    int64
	// Key and Value are the record's; a nil Value is a tombstone.
	Key, Value []byte
	// Transactional is set for a record of a transactional batch of ProducerID (a TxnOffsetCommit):
	// it stays pending until a marker of ProducerID later in the same partition.
	Transactional bool
	ProducerID    int64
	// Marker, when not MarkerNone, makes this a transaction marker (a control batch) of
	// ProducerID: Key and Value are nil. It commits or aborts the producer's pending offsets.
	Marker TxnMarker
	// Err, when set, says that the store could not decode what it holds at Offset (a batch or the
	// rest of the partition; Key and Value are then nil). The replay counts it and skips it.
	Err error
}

// Store persists group metadata and offsets as Kafka's __consumer_offsets records
// (kmsg.OffsetCommitKey/Value, kmsg.GroupMetadataKey/Value). The broker implements it on top of
// the __consumer_offsets partition logs; a nil value is a tombstone.
type Store interface {
	// Append makes records durable (written to the log) before it returns. group names the group
	// the records belong to, so the store can pick its partition (see OffsetsPartition).
	Append(group string, records []KV) error
	// AppendTxn makes records durable as Append does, written as one transactional batch of
	// (producerID, producerEpoch) without a sequence (Kafka's NO_SEQUENCE), as a TxnOffsetCommit
	// writes them: they count once the transaction's commit marker follows them. guard is what
	// the TxnOffsetCommit's verification returned (the broker's partition.VerificationGuard;
	// nil: none), which the write must still hold.
	AppendTxn(group string, producerID int64, producerEpoch int16, guard any, records []KV) error
	// Load replays every record, oldest first, at start. Data it cannot decode is not an error:
	// it hands it to fn with Err set and carries on. An error (a failed read, or fn's) ends the
	// load and the coordinator answers COORDINATOR_NOT_AVAILABLE.
	Load(fn func(r StoredRecord) error) error
}

// TxnMarker says whether a stored record is a transaction marker, and which.
type TxnMarker int8

const (
	MarkerNone TxnMarker = iota
	MarkerCommit
	MarkerAbort
)

// OffsetsPartition returns the __consumer_offsets partition of a group as Kafka computes it:
// abs(javaStringHashCode(group)) % partitions.
func OffsetsPartition(group string, partitions int32) int32 {
	var h int32
	for _, r := range group {
		if r >= 0x10000 { // a UTF-16 surrogate pair, as Java hashes it
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return (h & 0x7fffffff) % partitions
}

// MemoryStore is an in-memory Store for tests and for brokers without persistence.
type MemoryStore struct {
	mu        sync.Mutex
	records   []memoryRecord
	appendErr error
}

// memoryRecord is one record of a MemoryStore, with its transactional framing.
type memoryRecord struct {
	KV
	transactional bool
	producerID    int64
	marker        TxnMarker
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Append records the records, or fails with the error set by SetAppendError.
func (s *MemoryStore) Append(_ string, records []KV) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.appendErr != nil {
		return s.appendErr
	}
	for _, r := range records {
		s.records = append(s.records, memoryRecord{KV: KV{Key: append([]byte(nil), r.Key...), Value: cloneValue(r.Value)}, producerID: -1})
	}
	return nil
}

// AppendTxn records the records as transactional records of producerID, or fails with the error
// set by SetAppendError.
func (s *MemoryStore) AppendTxn(_ string, producerID int64, _ int16, _ any, records []KV) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.appendErr != nil {
		return s.appendErr
	}
	for _, r := range records {
		s.records = append(s.records, memoryRecord{
			KV:            KV{Key: append([]byte(nil), r.Key...), Value: cloneValue(r.Value)},
			transactional: true, producerID: producerID,
		})
	}
	return nil
}

// AppendMarker records a transaction marker of producerID, as WriteTxnMarkers writes one to a
// __consumer_offsets partition (the coordinator learns of it through CompleteTxn).
func (s *MemoryStore) AppendMarker(producerID int64, commit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := MarkerAbort
	if commit {
		m = MarkerCommit
	}
	s.records = append(s.records, memoryRecord{transactional: true, producerID: producerID, marker: m})
}

func cloneValue(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// Load replays every appended record in order, as partition 0 with its index as the offset.
func (s *MemoryStore) Load(fn func(r StoredRecord) error) error {
	s.mu.Lock()
	recs := append([]memoryRecord(nil), s.records...)
	s.mu.Unlock()
	for i, r := range recs {
		sr := StoredRecord{Offset: int64(i), Key: r.Key, Value: r.Value,
			Transactional: r.transactional, ProducerID: r.producerID, Marker: r.marker}
		if err := fn(sr); err != nil {
			return err
		}
	}
	return nil
}

// Records returns a copy of every record appended so far (markers left out).
func (s *MemoryStore) Records() []KV {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KV, 0, len(s.records))
	for _, r := range s.records {
		if r.marker == MarkerNone {
			out = append(out, r.KV)
		}
	}
	return out
}

// SetAppendError makes later Appends fail with err (nil: succeed again).
func (s *MemoryStore) SetAppendError(err error) {
	s.mu.Lock()
	s.appendErr = err
	s.mu.Unlock()
}

// ---- record encoding ----

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = 1
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetValue(e offsetEntry) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset = e.offset
	v.LeaderEpoch = e.leaderEpoch
	v.Metadata = e.metadata
	v.CommitTimestamp = e.commitTime
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = 2
	k.Group = group
	return k.AppendTo(nil)
}

// storeGroup persists the group's current generation. assignments overrides the members'
// assignments when non-nil. REQUIRES: g.mu is held.
func (g *group) storeGroup(assignments map[string][]byte) error {
	if g.c.store == nil {
		return nil
	}
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadata(g.protocol)
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		vm.Assignment = m.assignment
		if assignments != nil {
			vm.Assignment = assignments[m.id]
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return g.c.store.Append(g.name, []KV{{Key: groupKey(g.name), Value: v.AppendTo(nil)}})
}

// replayer rebuilds groups from the store's records. It trusts nothing it reads: a record it
// cannot decode is skipped, counted in Config.RecordsSkipped and logged (the first of a load with
// its position, the rest in one line at the end), and the rest of the records load.
type replayer struct {
	c       *Coordinator
	groups  map[string]*group
	skipped int
	// txns lists, per partition and producer, the groups holding transactional offsets of the
	// producer that no marker has ended yet.
	txns map[txnKey]map[string]struct{}
}

// txnKey is one producer's transaction on one __consumer_offsets partition.
type txnKey struct {
	partition  int32
	producerID int64
}

func newReplayer(c *Coordinator) *replayer {
	return &replayer{c: c, groups: make(map[string]*group), txns: make(map[txnKey]map[string]struct{})}
}

func (rp *replayer) group(name string) *group {
	g, ok := rp.groups[name]
	if !ok {
		g = newGroup(rp.c, name)
		rp.groups[name] = g
	}
	return g
}

// add applies one stored record, or skips it.
func (rp *replayer) add(r StoredRecord) {
	err := r.Err
	if err == nil {
		err = rp.apply(r)
	}
	if err == nil {
		return
	}
	rp.skipped++
	if rp.c.cfg.RecordsSkipped != nil {
		rp.c.cfg.RecordsSkipped.Inc()
	}
	if rp.skipped == 1 {
		rp.c.log.Warn("skipping a group coordinator record that cannot be decoded",
			"partition", r.Partition, "offset", r.Offset, "err", err)
	}
}

// apply decodes one record and applies it to the groups. It changes nothing when it returns an
// error.
//
// As Kafka's OffsetMetadataManager.replay: an offset commit of a transactional batch is pending
// for its producer until a marker of that producer later in the same partition applies it
// (commit: it becomes the committed offset unless one written after it is there already) or
// drops it (abort); a transaction still open at the end stays pending, the transaction
// coordinator sends its marker. A tombstone drops the partition's committed and pending offsets.
func (rp *replayer) apply(r StoredRecord) error {
	key, value := r.Key, r.Value
	if r.Marker != MarkerNone {
		k := txnKey{r.Partition, r.ProducerID}
		for name := range rp.txns[k] {
			if g, ok := rp.groups[name]; ok {
				g.completeTxn(r.ProducerID, r.Marker == MarkerCommit)
			}
		}
		delete(rp.txns, k)
		return nil
	}
	if len(key) < 2 {
		return fmt.Errorf("record key of %d bytes, a key starts with a 2-byte version", len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("decode offset commit key: %w", err)
		}
		if value == nil {
			if g, ok := rp.groups[k.Group]; ok {
				g.deleteOffset(k.Topic, k.Partition)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("decode offset commit value of group %q: %w", k.Group, err)
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		g := rp.group(k.Group)
		e := offsetEntry{
			offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, commitTime: v.CommitTimestamp,
			seq: r.Offset,
		}
		g.seq = max(g.seq, r.Offset+1)
		if r.Transactional {
			g.setPendingOffset(r.ProducerID, k.Topic, k.Partition, e)
			tk := txnKey{r.Partition, r.ProducerID}
			if rp.txns[tk] == nil {
				rp.txns[tk] = make(map[string]struct{})
			}
			rp.txns[tk][k.Group] = struct{}{}
			return nil
		}
		g.setOffset(k.Topic, k.Partition, e)
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("decode group metadata key: %w", err)
		}
		if value == nil {
			if g, ok := rp.groups[k.Group]; ok {
				if !g.hasOffsets() && !g.hasPendingTxn() {
					delete(rp.groups, k.Group)
				} else {
					g.clearMembers()
					g.state = stateEmpty
					g.protocolType, g.protocol, g.generation = "", "", 0
				}
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("decode group metadata of %q: %w", k.Group, err)
		}
		members, err := loadedMembers(&v)
		if err != nil {
			return fmt.Errorf("group metadata of %q: %w", k.Group, err)
		}
		g := rp.group(k.Group)
		g.clearMembers()
		g.protocolType = v.ProtocolType
		g.generation = v.Generation
		g.protocol = ""
		g.state = stateEmpty
		if len(members) > 0 {
			// As Kafka: a group stored with members loads Stable with them, its generation,
			// protocol, leader and assignments; their sessions start when the load ends.
			g.protocol = *v.Protocol
			for _, m := range members {
				m.protocolType = v.ProtocolType
				g.add(m)
			}
			if v.Leader != nil && g.members[*v.Leader] != nil {
				g.leader = *v.Leader
			}
			g.state = stateStable
		}
		g.stateTime = rp.c.clock.Now()
		if v.Version >= 2 && v.CurrentStateTimestamp >= 0 {
			g.stateTime = time.UnixMilli(v.CurrentStateTimestamp)
		}
	default:
		// Newer record types (KIP-848 consumer groups, share groups): not ours.
	}
	return nil
}

// replayWith rebuilds groups from what load replays (the whole store, or one partition), until
// stop is closed: offsets, and for groups with metadata their protocol type and generation. As in
// Kafka (GroupMetadataManager's replay of GroupMetadataValue), a group whose last metadata record
// has members loads Stable with those members, their assignments, the protocol and the leader;
// one without loads Empty. The caller starts the loaded members' sessions (startSessions) once the
// groups are installed. It fails only when the store's Load fails; undecodable or invalid records
// are skipped (see replayer).
func replayWith(c *Coordinator, stop <-chan struct{}, load func(fn func(StoredRecord) error) error) (map[string]*group, error) {
	rp := newReplayer(c)
	err := load(func(r StoredRecord) error {
		select {
		case <-stop:
			return errLoadStopped
		default:
		}
		rp.add(r)
		return nil
	})
	if rp.skipped > 1 {
		c.log.Warn("skipped group coordinator records that cannot be decoded", "records", rp.skipped)
	}
	if err != nil {
		return nil, err
	}
	for _, g := range rp.groups {
		if len(g.members) == 0 {
			// An Empty group keeps no selected protocol.
			g.protocol = ""
			g.subscribed = nil
			continue
		}
		g.computeSubscribed()
	}
	return rp.groups, nil
}

// loadedMembers builds the members of a stored GroupMetadataValue as Kafka does: each supports
// only the group's selected protocol, with its stored subscription; a rebalance timeout the
// record lacks (version 0: -1) is the session timeout. It rejects a record Moldau would never
// write and could not serve: members without a protocol, an empty or repeated member id, a
// group.instance.id held by two members.
func loadedMembers(v *kmsg.GroupMetadataValue) ([]*member, error) {
	if len(v.Members) == 0 {
		return nil, nil
	}
	if v.Protocol == nil {
		return nil, fmt.Errorf("%d members and no protocol", len(v.Members))
	}
	ids := make(map[string]struct{}, len(v.Members))
	instances := make(map[string]struct{})
	out := make([]*member, 0, len(v.Members))
	for _, vm := range v.Members {
		if vm.MemberID == "" {
			return nil, errors.New("a member with an empty member id")
		}
		if _, dup := ids[vm.MemberID]; dup {
			return nil, fmt.Errorf("member %q listed twice", vm.MemberID)
		}
		ids[vm.MemberID] = struct{}{}
		m := &member{
			id:               vm.MemberID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: *v.Protocol, Metadata: cloneValue(vm.Subscription)}},
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			assignment:       cloneValue(vm.Assignment),
		}
		if vm.RebalanceTimeoutMillis <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		if vm.InstanceID != nil {
			if _, dup := instances[*vm.InstanceID]; dup {
				return nil, fmt.Errorf("group.instance.id %q held by two members", *vm.InstanceID)
			}
			instances[*vm.InstanceID] = struct{}{}
			id := *vm.InstanceID
			m.instanceID = &id
		}
		out = append(out, m)
	}
	return out, nil
}

// clearMembers forgets every member (a later metadata record or a tombstone replaces them).
// Only the replay calls it: nothing waits on these members and no timer runs for them.
func (g *group) clearMembers() {
	g.members = make(map[string]*member)
	g.static = make(map[string]string)
	g.supported = make(map[string]int)
	g.leader = ""
	g.nextJoin = 0
	g.subscribed = nil
}

// startSessions starts the session timer of every member of a freshly loaded group, as Kafka's
// coordinator does when it finishes loading (onLoaded: rescheduleClassicGroupMemberHeartbeat):
// members that heartbeat the new coordinator within their session timeout keep their
// generation and assignment; the others expire and the group rebalances.
func (g *group) startSessions() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || g.state == stateDead {
		return
	}
	for _, m := range g.sortedMembers() {
		g.scheduleSession(m, m.sessionTimeout)
	}
}

func (g *group) setOffset(topic string, partition int32, e offsetEntry) {
	ps, ok := g.offsets[topic]
	if !ok {
		ps = make(map[int32]offsetEntry)
		g.offsets[topic] = ps
	}
	ps[partition] = e
}

// deleteOffset drops the partition's committed offset and its pending transactional offsets
// (a tombstone does both, as in Kafka).
func (g *group) deleteOffset(topic string, partition int32) {
	if ps, ok := g.offsets[topic]; ok {
		delete(ps, partition)
		if len(ps) == 0 {
			delete(g.offsets, topic)
		}
	}
	for pid, txn := range g.txnOffsets {
		if ps, ok := txn[topic]; ok {
			delete(ps, partition)
			if len(ps) == 0 {
				delete(txn, topic)
			}
		}
		if len(txn) == 0 {
			delete(g.txnOffsets, pid)
		}
	}
}
