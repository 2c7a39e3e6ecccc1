package httpapi

// The JSON shapes of the admin API (snake_case; openapi.yaml describes each).

// Cluster is GET /api/v1/cluster.
type Cluster struct {
	ClusterID    string `json:"cluster_id"`
	NodeID       int32  `json:"node_id"`       // the node that answers
	ControllerID int32  `json:"controller_id"` // -1 while there is none
	Version      string `json:"version"`
	Nodes        []Node `json:"nodes"`
	Health       Health `json:"health"`
}

// Node is one registered broker.
type Node struct {
	ID         int32  `json:"id"`
	Host       string `json:"host"`
	Port       int32  `json:"port"`
	Rack       string `json:"rack"`
	Fenced     bool   `json:"fenced"`
	Controller bool   `json:"controller"`
	// LogDirBytes is the size of the node's partition logs (DescribeLogDirs), -1 when unknown.
	LogDirBytes int64 `json:"log_dir_bytes"`
}

// Health counts the cluster's partitions by state, from the metadata image.
type Health struct {
	Topics          int `json:"topics"`
	Partitions      int `json:"partitions"`
	UnderReplicated int `json:"under_replicated"` // ISR smaller than the replicas
	UnderMinISR     int `json:"under_min_isr"`    // ISR smaller than min.insync.replicas
	Offline         int `json:"offline"`          // no leader
}

// ThroughputSample is one second of this node's traffic, in units per second.
type ThroughputSample struct {
	Time       int64   `json:"time"` // unix ms
	BytesIn    float64 `json:"bytes_in"`
	BytesOut   float64 `json:"bytes_out"`
	MessagesIn float64 `json:"messages_in"`
}

// TopicSummary is one entry of GET /api/v1/topics.
type TopicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
	UnderReplicated   int    `json:"under_replicated"`
	Offline           int    `json:"offline"`
}

// TopicDetail is GET /api/v1/topics/{name}.
type TopicDetail struct {
	TopicSummary
	Configs []ConfigEntry `json:"configs"`
}

// ConfigEntry is one topic config as DescribeConfigs answers it.
type ConfigEntry struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"` // null when sensitive or unset
	Source    string  `json:"source"`
	Default   bool    `json:"default"`
	ReadOnly  bool    `json:"read_only"`
	Sensitive bool    `json:"sensitive"`
}

// NewTopic is POST /api/v1/topics. Zero partitions or replication factor: the broker's default.
type NewTopic struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
}

// PartitionInfo is one entry of GET /api/v1/topics/{name}/partitions. The offsets and size are
// -1 when the node holding them did not answer.
type PartitionInfo struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	LogStartOffset  int64   `json:"log_start_offset"`
	HighWatermark   int64   `json:"high_watermark"`
	SizeBytes       int64   `json:"size_bytes"`
}

// RecordHeader is a header of a record to produce.
type RecordHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ProduceRecord is POST /api/v1/topics/{name}/records, after decoding: Key nil is a null key.
type ProduceRecord struct {
	Partition *int32
	Key       []byte
	Value     []byte
	Headers   []ProduceHeader
}

// ProduceHeader is a decoded header to produce.
type ProduceHeader struct {
	Key   string
	Value []byte
}

// Produced is the answer to a produce.
type Produced struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
	Timestamp int64 `json:"timestamp"`
}

// GroupSummary is one entry of GET /api/v1/groups.
type GroupSummary struct {
	GroupID      string `json:"group_id"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	Members      int    `json:"members"`
	Coordinator  int32  `json:"coordinator"`
	TotalLag     int64  `json:"total_lag"`
	// MaxLagSeconds is the largest known lag in seconds of the group's partitions (0: none lags).
	MaxLagSeconds float64 `json:"max_lag_seconds"`
}

// GroupDetail is GET /api/v1/groups/{id}.
type GroupDetail struct {
	GroupID      string        `json:"group_id"`
	State        string        `json:"state"`
	ProtocolType string        `json:"protocol_type"`
	Protocol     string        `json:"protocol"`
	Coordinator  int32         `json:"coordinator"`
	Members      []GroupMember `json:"members"`
	// Offsets is one page (offset, limit) of the committed offsets sorted by topic and partition;
	// OffsetsTotal counts them all, and Topics are their topics. TotalLag and MaxLagSeconds are
	// over every partition, not the page.
	Offsets       []GroupOffset `json:"offsets"`
	OffsetsTotal  int           `json:"offsets_total"`
	Topics        []string      `json:"topics"`
	TotalLag      int64         `json:"total_lag"`
	MaxLagSeconds float64       `json:"max_lag_seconds"`
}

// GroupMember is a member of a group with its assignment.
type GroupMember struct {
	MemberID    string       `json:"member_id"`
	InstanceID  *string      `json:"instance_id"`
	ClientID    string       `json:"client_id"`
	Host        string       `json:"host"`
	Assignments []Assignment `json:"assignments"`
}

// Assignment is the partitions of one topic assigned to a member.
type Assignment struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// GroupOffset is a group's committed offset of one partition with its lag.
type GroupOffset struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"`
	HighWatermark   int64  `json:"high_watermark"`
	Lag             int64  `json:"lag"`
	// LagSeconds is now − the timestamp of the first unconsumed record (0 without lag, -1 unknown).
	LagSeconds float64 `json:"lag_seconds"`
	MemberID   string  `json:"member_id"` // "" when no member has it assigned
}

// LagHistory is GET /api/v1/groups/{id}/lag.
type LagHistory struct {
	IntervalMs  int64       `json:"interval_ms"`
	Coordinator int32       `json:"coordinator"`
	Samples     []LagSample `json:"samples"`
}

// LagSample is one sample of a group's lag history.
type LagSample struct {
	Time          int64   `json:"time"` // unix ms
	TotalLag      int64   `json:"total_lag"`
	MaxLagSeconds float64 `json:"max_lag_seconds"`
}

// ResetOffsets is POST /api/v1/groups/{id}/offsets/reset.
type ResetOffsets struct {
	To         string             `json:"to"` // earliest, latest, timestamp, offset
	Timestamp  *int64             `json:"timestamp,omitempty"`
	Offset     *int64             `json:"offset,omitempty"`
	Topics     []string           `json:"topics,omitempty"`
	Partitions map[string][]int32 `json:"partitions,omitempty"`
	DryRun     bool               `json:"dry_run"`
}

// OffsetReset is one partition of a reset: the committed offset before (-1 none) and after.
type OffsetReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current"`
	New       int64  `json:"new"`
}

// Reassignment is a partition reassignment in progress.
type Reassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// PartitionReplicas is the target replica list of a partition to move.
type PartitionReplicas struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// PartitionResult is the outcome of an operation on one partition; Error is null on success,
// else the Kafka error name.
type PartitionResult struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Error     *string `json:"error"`
	Message   string  `json:"message,omitempty"`
}
