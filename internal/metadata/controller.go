package metadata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Errors returned by the Controller, wrapped with context; handlers map them to Kafka error
// codes with errors.Is.
var (
	ErrTopicExists              = errors.New("topic already exists")                   // TOPIC_ALREADY_EXISTS
	ErrUnknownTopic             = errors.New("unknown topic")                          // UNKNOWN_TOPIC_OR_PARTITION
	ErrInvalidPartitions        = errors.New("invalid number of partitions")           // INVALID_PARTITIONS
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")             // INVALID_REPLICATION_FACTOR
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")             // INVALID_REPLICA_ASSIGNMENT
	ErrInvalidTopic             = errors.New("invalid topic")                          // INVALID_TOPIC_EXCEPTION
	ErrInvalidConfig            = errors.New("invalid config")                         // INVALID_CONFIG
	ErrInvalidRequest           = errors.New("invalid request")                        // INVALID_REQUEST
	ErrNotController            = errors.New("this node is not the active controller") // NOT_CONTROLLER
	ErrClosed                   = errors.New("metadata controller closed")
)

// ProducerIDBlockSize is the number of producer ids AllocateProducerIDs hands out at once.
const ProducerIDBlockSize = 1000

// committer appends an encoded batch to the metadata log and returns the FSM's response.
// The raft node implements it; tests use a direct one.
type committer interface {
	commit(ctx context.Context, data []byte) (any, error)
	leader() (int32, bool)
	close() error
}

// Controller is the write path: each method validates against the current image, builds
// records and commits them through raft as one atomic batch.
type Controller struct {
	cfg Config
	fsm *FSM
	log committer
	// fwd sends writes to the raft leader when this node is not it (nil: a single voter, or a
	// log without raft, never forwards).
	fwd *forwarder
	// closed is closed by Close: waits for the leader end.
	closed    chan struct{}
	closeOnce sync.Once

	// mu serialises writers: validation sees the image every earlier write produced, so two
	// concurrent CreateTopic calls for one name cannot both pass.
	mu sync.Mutex
	// sessions are the broker sessions of the active controller (lifecycle.go), in memory
	// only. Guarded by mu.
	sessions map[int32]*session
	// leading is whether this node has started its term as raft leader (sessions restarted).
	// Guarded by mu.
	leading bool
	// wg tracks the leadership watcher and the session loop; Close waits for them.
	wg sync.WaitGroup
	// uncleanElections counts the unclean leader elections this node committed as the active
	// controller (Kafka's ControllerStats UncleanLeaderElectionsPerSec): each is counted once,
	// by the controller that made it, so a sum over the nodes is the cluster's.
	uncleanElections atomic.Int64
}

func newController(cfg Config, fsm *FSM, log committer) *Controller {
	cfg.setDefaults()
	return &Controller{cfg: cfg, fsm: fsm, log: log, closed: make(chan struct{}), sessions: map[int32]*session{}}
}

// Image returns the current applied image.
func (c *Controller) Image() *Image { return c.fsm.Image() }

// Subscribe returns a channel signalled (non-blocking, coalescing) after each apply.
func (c *Controller) Subscribe() <-chan struct{} { return c.fsm.Subscribe() }

// Unsubscribe stops signalling a channel returned by Subscribe.
func (c *Controller) Unsubscribe(ch <-chan struct{}) { c.fsm.Unsubscribe(ch) }

// ControllerID is the node id of the active controller (the raft leader), -1 if unknown.
func (c *Controller) ControllerID() int32 {
	id, ok := c.log.leader()
	if !ok {
		return -1
	}
	return id
}

// IsController reports whether this node is the active controller.
func (c *Controller) IsController() bool { return c.ControllerID() == c.cfg.NodeID }

// Close stops the raft node and waits for the controller's goroutines.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	if c.fwd != nil {
		c.fwd.close()
	}
	err := c.log.close()
	c.wg.Wait()
	return err
}

// reportError reports an error no caller is waiting for.
func (c *Controller) reportError(err error) {
	if c.cfg.ErrorLog != nil {
		c.cfg.ErrorLog(err)
	}
}

// commit is the single path to the raft log. REQUIRES: c.mu is held (so validation and
// commit are atomic with respect to other writers).
func (c *Controller) commitLocked(ctx context.Context, records ...Record) error {
	data, err := EncodeBatch(records)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
	defer cancel()
	before := c.Image()
	resp, err := c.log.commit(ctx, data)
	if err != nil {
		return err
	}
	if err, ok := resp.(error); ok && err != nil {
		return fmt.Errorf("metadata: apply: %w", err)
	}
	c.uncleanElections.Add(int64(uncleanElections(before, records)))
	return nil
}

// UncleanElections is the number of unclean leader elections this node committed as the
// active controller since it started.
func (c *Controller) UncleanElections() int64 { return c.uncleanElections.Load() }

// uncleanElections counts the partition changes of records that elect a new leader in the
// LeaderRecovering state: an unclean election (partitions.go), as Kafka's
// ControllerMetricsChanges counts them.
func uncleanElections(before *Image, records []Record) int {
	n := 0
	for _, r := range records {
		pc, ok := r.(*PartitionChangeRecord)
		if !ok || pc.LeaderRecoveryState != LeaderRecovering || pc.Leader < 0 {
			continue
		}
		t, ok := before.TopicByID(pc.TopicID)
		if !ok || int(pc.Partition) >= len(t.Partitions) {
			continue
		}
		if t.Partitions[pc.Partition].Leader != pc.Leader {
			n++
		}
	}
	return n
}

// CreateTopic is a CreateTopics request for one topic.
type CreateTopic struct {
	Name              string
	Partitions        int32             // -1: default num.partitions
	ReplicationFactor int16             // -1: default
	Assignments       map[int32][]int32 // optional manual assignment (then both above must be -1)
	Configs           map[string]string
	ValidateOnly      bool
	// Internal marks the topic internal (__consumer_offsets, __transaction_state); only the
	// broker sets it, never a client request.
	Internal bool
}

// localCreateTopic is CreateTopic on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localCreateTopic(ctx context.Context, t CreateTopic) (*Topic, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.Image()
	if err := ValidateTopicName(t.Name); err != nil {
		return nil, err
	}
	// As Kafka's Topic.isInternal: internal by name, also when a request forwarded from another
	// node (which cannot say so) creates it.
	t.Internal = t.Internal || IsInternalTopic(t.Name)
	if _, ok := im.Topic(t.Name); ok {
		return nil, fmt.Errorf("%w: topic '%s' already exists", ErrTopicExists, t.Name)
	}
	if err := checkCollision(im, t.Name); err != nil {
		return nil, err
	}

	var assignment [][]int32
	if len(t.Assignments) > 0 {
		if t.Partitions != -1 || t.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: both numPartitions or replicationFactor and replicasAssignments were set, both cannot be used at the same time", ErrInvalidRequest)
		}
		assignment = make([][]int32, len(t.Assignments))
		for p, replicas := range t.Assignments {
			if p < 0 || int(p) >= len(t.Assignments) {
				return nil, fmt.Errorf("%w: partitions should be a consecutive 0-based integer sequence", ErrInvalidReplicaAssignment)
			}
			assignment[p] = replicas
		}
		if err := validateAssignment(im, assignment, -1, 0); err != nil {
			return nil, err
		}
	} else {
		partitions := t.Partitions
		if partitions == -1 {
			partitions = c.cfg.NumPartitions
		}
		if partitions <= 0 {
			return nil, fmt.Errorf("%w: number of partitions must be larger than 0, or -1 to use the default value", ErrInvalidPartitions)
		}
		rf := t.ReplicationFactor
		if rf == -1 {
			rf = c.cfg.DefaultReplicationFactor
		}
		if rf <= 0 {
			return nil, fmt.Errorf("%w: replication factor must be larger than 0, or -1 to use the default value", ErrInvalidReplicationFactor)
		}
		brokers := rackAlternated(usableBrokers(im))
		if int(rf) > len(brokers) {
			return nil, errReplicationFactor(int(rf), len(brokers))
		}
		assignment = placeReplicas(brokers, int(partitions), int(rf), 0, -1)
	}

	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		if err := c.validateConfig(c.cfg.ValidateTopicConfig, k, t.Configs[k]); err != nil {
			return nil, err
		}
	}

	topic := &Topic{Name: t.Name, Internal: t.Internal, Configs: maps.Clone(t.Configs)}
	if topic.Configs == nil {
		topic.Configs = map[string]string{}
	}
	for p, replicas := range assignment {
		topic.Partitions = append(topic.Partitions, newPartition(im, int32(p), replicas))
	}
	if t.ValidateOnly {
		return topic, nil
	}

	id := RandomUUID()
	for _, taken := im.TopicByID(id); taken; _, taken = im.TopicByID(id) {
		id = RandomUUID()
	}
	records := []Record{&TopicRecord{Name: t.Name, TopicID: id, Internal: t.Internal}}
	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		v := t.Configs[k]
		records = append(records, &ConfigRecord{ResourceType: ResourceTopic, ResourceName: t.Name, Key: k, Value: &v})
	}
	for _, p := range topic.Partitions {
		records = append(records, partitionRecord(id, p))
	}
	if err := c.commitLocked(ctx, records...); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	created, ok := c.Image().TopicByID(id)
	if !ok {
		return nil, fmt.Errorf("create topic %s: not in image after commit", t.Name)
	}
	return created, nil
}

// localDeleteTopic is DeleteTopic on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localDeleteTopic(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.Image().Topic(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err := c.commitLocked(ctx, &RemoveTopicRecord{TopicID: t.ID}); err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	return nil
}

// localCreatePartitions is CreatePartitions on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localCreatePartitions(ctx context.Context, name string, count int32, assign [][]int32, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.Image()
	t, ok := im.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	current := int32(len(t.Partitions))
	switch {
	case count < current:
		return fmt.Errorf("%w: topic currently has %d partitions, which is higher than the requested %d", ErrInvalidPartitions, current, count)
	case count == current:
		return fmt.Errorf("%w: topic already has %d partitions", ErrInvalidPartitions, current)
	}
	rf := 1
	if current > 0 {
		rf = len(t.Partitions[0].Replicas)
	}
	add := int(count - current)
	if assign != nil {
		if len(assign) != add {
			return fmt.Errorf("%w: increasing the number of partitions by %d but %d assignments provided", ErrInvalidReplicaAssignment, add, len(assign))
		}
		if err := validateAssignment(im, assign, rf, int(current)); err != nil {
			return err
		}
	} else {
		brokers := rackAlternated(usableBrokers(im))
		if rf > len(brokers) {
			return errReplicationFactor(rf, len(brokers))
		}
		start := -1
		if current > 0 {
			// Like Kafka: continue the round robin from the first replica of partition 0
			// (or the next broker after it in id order when it is no longer usable).
			first := t.Partitions[0].Replicas[0]
			if i := slices.IndexFunc(brokers, func(b Broker) bool { return b.NodeID == first }); i >= 0 {
				start = i
			} else {
				start = max(0, slices.IndexFunc(brokers, func(b Broker) bool { return b.NodeID >= first }))
			}
		}
		assign = placeReplicas(brokers, add, rf, int(current), start)
	}
	if validateOnly {
		return nil
	}
	records := make([]Record, 0, add)
	for i, replicas := range assign {
		records = append(records, partitionRecord(t.ID, newPartition(im, current+int32(i), replicas)))
	}
	if err := c.commitLocked(ctx, records...); err != nil {
		return fmt.Errorf("create partitions %s: %w", name, err)
	}
	return nil
}

// localAlterTopicConfigs is AlterTopicConfigs on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localAlterTopicConfigs(ctx context.Context, name string, set map[string]*string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.Image().Topic(name); !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	return c.alterConfigsLocked(ctx, ResourceTopic, name, c.cfg.ValidateTopicConfig, set)
}

// localAlterBrokerConfigs is AlterBrokerConfigs on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localAlterBrokerConfigs(ctx context.Context, set map[string]*string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alterConfigsLocked(ctx, ResourceBroker, "", c.cfg.ValidateBrokerConfig, set)
}

// localAlterNodeConfigs is AlterNodeConfigs on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localAlterNodeConfigs(ctx context.Context, nodeID int32, set map[string]*string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nodeID < 0 {
		return fmt.Errorf("%w: invalid broker id %d", ErrInvalidRequest, nodeID)
	}
	return c.alterConfigsLocked(ctx, ResourceBroker, strconv.Itoa(int(nodeID)), c.cfg.ValidateBrokerConfig, set)
}

func (c *Controller) alterConfigsLocked(ctx context.Context, typ, name string, validate func(k, v string) error, set map[string]*string) error {
	if len(set) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(set))
	records := make([]Record, 0, len(keys))
	for _, k := range keys {
		v := set[k]
		if k == "" {
			return fmt.Errorf("%w: empty config name", ErrInvalidConfig)
		}
		if v != nil {
			if err := c.validateConfig(validate, k, *v); err != nil {
				return err
			}
		}
		records = append(records, &ConfigRecord{ResourceType: typ, ResourceName: name, Key: k, Value: v})
	}
	if err := c.commitLocked(ctx, records...); err != nil {
		return fmt.Errorf("alter %s configs %q: %w", typ, name, err)
	}
	return nil
}

func (c *Controller) validateConfig(validate func(k, v string) error, key, value string) error {
	if key == "" {
		return fmt.Errorf("%w: empty config name", ErrInvalidConfig)
	}
	if validate == nil {
		return nil
	}
	if err := validate(key, value); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, key, err)
	}
	return nil
}

// localAllocateProducerIDs is AllocateProducerIDs on this node: the raft leader, or a forwarded request (forward_ops.go).
func (c *Controller) localAllocateProducerIDs(ctx context.Context) (first int64, count int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first = c.Image().NextProducerID()
	if first > math.MaxInt64-ProducerIDBlockSize {
		return 0, 0, errors.New("allocate producer ids: producer id space exhausted")
	}
	rec := &ProducerIDsRecord{BrokerID: c.cfg.NodeID, NextProducerID: first + ProducerIDBlockSize}
	if err := c.commitLocked(ctx, rec); err != nil {
		return 0, 0, fmt.Errorf("allocate producer ids: %w", err)
	}
	return first, ProducerIDBlockSize, nil
}

// ensureClusterID writes the cluster id record if the image has none yet (first boot). If
// want is set it must match an existing id.
func (c *Controller) ensureClusterID(ctx context.Context, want string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ensureClusterIDLocked(ctx, want); err != nil {
		return err
	}
	return c.ensureMetadataVersionLocked(ctx)
}

func (c *Controller) ensureClusterIDLocked(ctx context.Context, want string) error {
	have := c.Image().ClusterID()
	switch {
	case have != "" && want != "" && have != want:
		return fmt.Errorf("metadata: cluster id mismatch: log has %q, configured %q", have, want)
	case have != "":
		return nil
	}
	if want == "" {
		want = NewClusterID()
	}
	if err := c.commitLocked(ctx, &ClusterIDRecord{ClusterID: want}); err != nil {
		return fmt.Errorf("write cluster id: %w", err)
	}
	return nil
}

const maxTopicNameLen = 249

// ValidateTopicName applies Kafka's topic name rules: non-empty, not "." or "..", at most
// 249 characters of [a-zA-Z0-9._-]. Errors wrap ErrInvalidTopic.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: topic name is illegal, it can't be empty", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name cannot be \".\" or \"..\"", ErrInvalidTopic)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("%w: topic name is illegal, it can't be longer than %d characters, topic name: %s", ErrInvalidTopic, maxTopicNameLen, name)
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return fmt.Errorf("%w: topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", ErrInvalidTopic, name)
		}
	}
	return nil
}

// checkCollision rejects a name that equals an existing topic's once '.' is replaced by '_'
// (their metric names would collide), as Kafka does.
func checkCollision(im *Image, name string) error {
	if !strings.ContainsAny(name, "._") {
		return nil
	}
	norm := strings.ReplaceAll(name, ".", "_")
	for _, t := range im.sorted {
		if t.Name != name && strings.ReplaceAll(t.Name, ".", "_") == norm {
			return fmt.Errorf("%w: topic '%s' collides with existing topic: %s", ErrInvalidTopic, name, t.Name)
		}
	}
	return nil
}

func partitionRecord(id UUID, p Partition) *PartitionRecord {
	return &PartitionRecord{
		TopicID:             id,
		Partition:           p.Partition,
		Replicas:            p.Replicas,
		ISR:                 p.ISR,
		Leader:              p.Leader,
		LeaderEpoch:         p.LeaderEpoch,
		PartitionEpoch:      p.PartitionEpoch,
		ELR:                 p.ELR,
		LastKnownELR:        p.LastKnownELR,
		LeaderRecoveryState: p.LeaderRecoveryState,
	}
}
