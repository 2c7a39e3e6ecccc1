package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Records are the entries of the metadata log. Each is JSON with a "type" tag and a "v"
// version next to its own fields, e.g.
//
//	{"type":"topic","v":1,"name":"orders","topicId":"kx6Jg7yrQ0Ws8gnm9x0y2Q"}
//
// A raft log entry holds a Batch: {"v":1,"records":[...]}; the whole batch is applied
// atomically (all records or none).

// Record is one metadata record.
type Record interface {
	recordType() string
}

// RegisterBrokerRecord registers (or re-registers) a broker and its endpoints.
//
// Version 1 (before broker lifecycles) carried only NodeID, Host, Port and Rack; such a
// record registers an unfenced broker with one endpoint and the entry's index as epoch.
// Version 2 adds the incarnation, the endpoints and the fencing state, like Kafka's
// RegisterBrokerRecord. BrokerEpoch 0 means "the raft index of the entry holding this
// record" (a new registration); a non-zero epoch amends the registration of that epoch.
type RegisterBrokerRecord struct {
	NodeID               int32      `json:"nodeId"`
	Host                 string     `json:"host"`
	Port                 int32      `json:"port"`
	Rack                 string     `json:"rack,omitempty"`
	IncarnationID        UUID       `json:"incarnationId,omitzero"`
	BrokerEpoch          int64      `json:"brokerEpoch,omitempty"`
	Endpoints            []Endpoint `json:"endpoints,omitzero"`
	Fenced               bool       `json:"fenced,omitempty"`
	InControlledShutdown bool       `json:"inControlledShutdown,omitempty"`
	LogDirs              []UUID     `json:"logDirs,omitzero"`
	// Features are the feature levels the broker's build supports (nil: a build without
	// feature versions).
	Features map[string]FeatureRange `json:"features,omitzero"`
}

// BrokerChangeRecord changes the fencing or controlled-shutdown state of the registration
// of broker NodeID with epoch BrokerEpoch (Kafka's BrokerRegistrationChangeRecord). A nil
// field is left as it is.
type BrokerChangeRecord struct {
	NodeID               int32 `json:"nodeId"`
	BrokerEpoch          int64 `json:"brokerEpoch"`
	Fenced               *bool `json:"fenced,omitempty"`
	InControlledShutdown *bool `json:"inControlledShutdown,omitempty"`
}

// TopicRecord creates a topic. Its partitions follow as PartitionRecords.
type TopicRecord struct {
	Name     string `json:"name"`
	TopicID  UUID   `json:"topicId"`
	Internal bool   `json:"internal,omitempty"`
}

// PartitionRecord creates partition Partition of a topic (the next one, partitions are
// contiguous) or replaces an existing partition's state.
type PartitionRecord struct {
	TopicID        UUID    `json:"topicId"`
	Partition      int32   `json:"partition"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	// Version 2.
	ELR                 []int32 `json:"elr,omitzero"`
	LastKnownELR        []int32 `json:"lastKnownElr,omitzero"`
	LeaderRecoveryState int8    `json:"leaderRecoveryState,omitempty"`
	// Version 3 (written only when a reassignment is in progress): the replicas being added
	// and removed (Kafka's addingReplicas/removingReplicas). Replicas is then target ∪ current.
	AddingReplicas   []int32 `json:"addingReplicas,omitzero"`
	RemovingReplicas []int32 `json:"removingReplicas,omitzero"`
}

// PartitionChangeRecord sets the leadership and ISR state of an existing partition: the
// whole new state, so applying it needs nothing but the record. The controller builds it
// with the election and reassignment rules of partitions.go and reassign.go.
//
// Version 2 (written only when one of them is set) adds Replicas, AddingReplicas and
// RemovingReplicas, as Kafka's record: nil leaves the field as it is, an empty (non-nil)
// list, encoded [], sets it empty, so a completed or cancelled reassignment clears
// adding and removing with [].
type PartitionChangeRecord struct {
	TopicID             UUID    `json:"topicId"`
	Partition           int32   `json:"partition"`
	Leader              int32   `json:"leader"`
	ISR                 []int32 `json:"isr"`
	ELR                 []int32 `json:"elr,omitzero"`
	LastKnownELR        []int32 `json:"lastKnownElr,omitzero"`
	LeaderRecoveryState int8    `json:"leaderRecoveryState,omitempty"`
	LeaderEpoch         int32   `json:"leaderEpoch"`
	PartitionEpoch      int32   `json:"partitionEpoch"`
	// Version 2.
	Replicas         []int32 `json:"replicas,omitzero"`
	AddingReplicas   []int32 `json:"addingReplicas,omitzero"`
	RemovingReplicas []int32 `json:"removingReplicas,omitzero"`
}

// RemoveTopicRecord deletes a topic with its partitions and configs.
type RemoveTopicRecord struct {
	TopicID UUID `json:"topicId"`
}

// Config resource types.
const (
	ResourceTopic  = "topic"
	ResourceBroker = "broker"
)

// ConfigRecord sets (Value != nil) or deletes (Value == nil) a dynamic config. For
// ResourceTopic, ResourceName is the topic name. For ResourceBroker it is a node id, or ""
// for the cluster-wide default.
type ConfigRecord struct {
	ResourceType string  `json:"resourceType"`
	ResourceName string  `json:"resourceName"`
	Key          string  `json:"key"`
	Value        *string `json:"value"`
}

// ProducerIDsRecord records that producer ids below NextProducerID have been handed out.
type ProducerIDsRecord struct {
	BrokerID       int32 `json:"brokerId"`
	NextProducerID int64 `json:"nextProducerId"`
}

// ClusterIDRecord sets the cluster id; written once at bootstrap.
type ClusterIDRecord struct {
	ClusterID string `json:"clusterId"`
}

// FeatureLevelRecord finalizes a feature at a level (Kafka's FeatureLevelRecord): the
// cluster-wide metadata.version, kraft.version, group.version, ... (features.go). Level 0
// removes a feature; metadata.version is never removed. The controller commits these records in
// batches of their own, so a node of an older build (which cannot decode them) skips only them.
type FeatureLevelRecord struct {
	Name  string `json:"name"`
	Level int16  `json:"level"`
}

func (FeatureLevelRecord) recordType() string    { return "featureLevel" }
func (RegisterBrokerRecord) recordType() string  { return "registerBroker" }
func (BrokerChangeRecord) recordType() string    { return "brokerChange" }
func (TopicRecord) recordType() string           { return "topic" }
func (PartitionRecord) recordType() string       { return "partition" }
func (PartitionChangeRecord) recordType() string { return "partitionChange" }
func (RemoveTopicRecord) recordType() string     { return "removeTopic" }
func (ConfigRecord) recordType() string          { return "config" }
func (ProducerIDsRecord) recordType() string     { return "producerIds" }
func (ClusterIDRecord) recordType() string       { return "clusterId" }

// recordVersions is the newest version of each record type; decoders accept 1..it.
// A version bump only adds optional fields, so older records decode into the same struct.
// A record is written with the lowest version that holds what it carries (versioned), so
// nodes of the previous release keep applying every record that does not use new fields
// (a rolling upgrade), and refuse, rather than misapply, one that does.
var recordVersions = map[string]int{
	"registerBroker":  2,
	"brokerChange":    1,
	"topic":           1,
	"partition":       3,
	"partitionChange": 2,
	"removeTopic":     1,
	"config":          1,
	"producerIds":     1,
	"clusterId":       1,
	"featureLevel":    1,
}

// versioned is a record whose version depends on the fields it uses.
type versioned interface {
	version() int
}

func (r PartitionRecord) version() int {
	if len(r.AddingReplicas) > 0 || len(r.RemovingReplicas) > 0 {
		return 3
	}
	return 2
}

func (r PartitionChangeRecord) version() int {
	if r.Replicas != nil || r.AddingReplicas != nil || r.RemovingReplicas != nil {
		return 2
	}
	return 1
}

// recordVersion is the version r is written with.
func recordVersion(r Record) int {
	if v, ok := r.(versioned); ok {
		return v.version()
	}
	return recordVersions[r.recordType()]
}

// batchVersion is the version of the batch envelope.
const batchVersion = 1

var recordTypes = map[string]func() Record{
	"registerBroker":  func() Record { return &RegisterBrokerRecord{} },
	"brokerChange":    func() Record { return &BrokerChangeRecord{} },
	"topic":           func() Record { return &TopicRecord{} },
	"partition":       func() Record { return &PartitionRecord{} },
	"partitionChange": func() Record { return &PartitionChangeRecord{} },
	"removeTopic":     func() Record { return &RemoveTopicRecord{} },
	"config":          func() Record { return &ConfigRecord{} },
	"producerIds":     func() Record { return &ProducerIDsRecord{} },
	"clusterId":       func() Record { return &ClusterIDRecord{} },
	"featureLevel":    func() Record { return &FeatureLevelRecord{} },
}

// ErrBadRecord is returned for a log entry that cannot be decoded or applied.
var ErrBadRecord = errors.New("metadata: bad record")

type batchJSON struct {
	V       int               `json:"v"`
	Records []json.RawMessage `json:"records"`
}

type recordHeader struct {
	Type string `json:"type"`
	V    int    `json:"v"`
}

// EncodeBatch encodes records as one log entry.
func EncodeBatch(records []Record) ([]byte, error) {
	b := batchJSON{V: batchVersion, Records: make([]json.RawMessage, 0, len(records))}
	for _, r := range records {
		raw, err := encodeRecord(r)
		if err != nil {
			return nil, err
		}
		b.Records = append(b.Records, raw)
	}
	return json.Marshal(b)
}

func encodeRecord(r Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode %s record: %w", r.recordType(), err)
	}
	head := fmt.Sprintf(`{"type":%q,"v":%d`, r.recordType(), recordVersion(r))
	if len(body) <= 2 { // "{}"
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), body[1:]...), nil
}

// DecodeBatch decodes a log entry written by EncodeBatch. Records are returned as pointers
// to the record structs (*TopicRecord, ...).
func DecodeBatch(data []byte) ([]Record, error) {
	var b batchJSON
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: batch: %w", ErrBadRecord, err)
	}
	if b.V < 1 || b.V > batchVersion {
		return nil, fmt.Errorf("%w: unsupported batch version %d", ErrBadRecord, b.V)
	}
	out := make([]Record, 0, len(b.Records))
	for i, raw := range b.Records {
		var h recordHeader
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("%w: record %d: %w", ErrBadRecord, i, err)
		}
		mk, ok := recordTypes[h.Type]
		if !ok {
			return nil, fmt.Errorf("%w: record %d: unknown type %q", ErrBadRecord, i, h.Type)
		}
		if h.V < 1 || h.V > recordVersions[h.Type] {
			return nil, fmt.Errorf("%w: record %d: %s version %d unsupported", ErrBadRecord, i, h.Type, h.V)
		}
		r := mk()
		if err := json.Unmarshal(raw, r); err != nil {
			return nil, fmt.Errorf("%w: record %d (%s): %w", ErrBadRecord, i, h.Type, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// UUID is a Kafka UUID (topic ids). Its text form is Kafka's: unpadded base64url, 22 chars.
type UUID [16]byte

var b64 = base64.RawURLEncoding

func (u UUID) String() string { return b64.EncodeToString(u[:]) }

// MarshalText implements encoding.TextMarshaler.
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *UUID) UnmarshalText(b []byte) error {
	p, err := ParseUUID(string(b))
	if err != nil {
		return err
	}
	*u = p
	return nil
}

// ParseUUID parses Kafka's base64url form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	raw, err := b64.DecodeString(s)
	if err != nil || len(raw) != 16 {
		return u, fmt.Errorf("invalid uuid %q", s)
	}
	copy(u[:], raw)
	return u, nil
}

// metadataTopicID is Kafka's reserved id of the metadata topic (0...01).
var metadataTopicID = UUID{15: 1}

// RandomUUID returns a random (version 4) UUID, avoiding the ids Kafka reserves (zero and
// the metadata topic id) and ids whose text form starts with '-' (like Kafka's
// Uuid.randomUuid, so they can be passed on command lines).
func RandomUUID() UUID {
	for {
		var u UUID
		if _, err := rand.Read(u[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand.Read never fails on supported platforms
		}
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		if u == (UUID{}) || u == metadataTopicID || strings.HasPrefix(u.String(), "-") {
			continue
		}
		return u
	}
}

// NewClusterID returns a random cluster id in Kafka's format (22 base64url chars).
func NewClusterID() string { return RandomUUID().String() }

// cloneInt32s copies s; nil and empty both become an empty, non-nil slice, so an image applied
// from the log and one restored from a snapshot of it hold the same value.
func cloneInt32s(s []int32) []int32 {
	return append([]int32{}, s...)
}

// nilIfEmpty is s, or nil when s is empty (a record field left out).
func nilIfEmpty(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return s
}
