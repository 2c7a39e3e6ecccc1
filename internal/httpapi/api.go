package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Backend is what the admin API reads from and acts through; the broker implements it
// (internal/broker/httpapi.go). Writes go through a Kafka client of the broker's own listener,
// so they are validated, forwarded and replicated as any client's are; reads come from the
// metadata image and the local partitions where they hold the answer.
//
// Errors that carry a Kafka error code wrap a *kerr.Error; the API answers them with that code
// (errors.go).
type Backend interface {
	Cluster(ctx context.Context) (Cluster, error)
	// Throughput is this node's ring of per-second samples, oldest first.
	Throughput() []ThroughputSample

	// Topics is every topic, sorted by name, from the metadata image (no network).
	Topics() []TopicSummary
	Topic(ctx context.Context, name string) (TopicDetail, error)
	CreateTopic(ctx context.Context, t NewTopic) error
	DeleteTopic(ctx context.Context, name string) error
	TopicConfigs(ctx context.Context, name string) ([]ConfigEntry, error)
	AlterTopicConfigs(ctx context.Context, name string, set map[string]string, del []string) error
	// Partitions returns the partition count of topic and partitions [offset, offset+limit).
	Partitions(ctx context.Context, topic string, offset, limit int) (total int, parts []PartitionInfo, err error)

	// ListOffsets answers, for each partition asked, the log start offset (at = -2), the high
	// watermark (at = -1) or the first offset whose timestamp is at least at (ms), or the high
	// watermark when there is none.
	ListOffsets(ctx context.Context, topic string, partitions []int32, at int64) (map[int32]int64, error)
	// ReadBatches returns whole record batches (v2 wire format) of a partition from offset, up
	// to about maxBytes (at least one batch), below the high watermark. An empty answer at an
	// offset below the high watermark means nothing more can be read there.
	ReadBatches(ctx context.Context, topic string, partition int32, offset int64, maxBytes int32) ([]byte, error)
	Produce(ctx context.Context, topic string, r ProduceRecord) (Produced, error)

	Groups(ctx context.Context) ([]GroupSummary, error)
	Group(ctx context.Context, id string) (GroupDetail, error)
	GroupLagHistory(ctx context.Context, id string) (LagHistory, error)
	ResetOffsets(ctx context.Context, id string, req ResetOffsets) ([]OffsetReset, error)
	DeleteGroup(ctx context.Context, id string) error

	Reassignments(ctx context.Context) ([]Reassignment, error)
	Reassign(ctx context.Context, parts []PartitionReplicas) ([]PartitionResult, error)
	CancelReassignments(ctx context.Context, parts []TopicPartition) ([]PartitionResult, error)
	ElectLeaders(ctx context.Context, unclean bool, parts []TopicPartition) ([]PartitionResult, error)
}

// APIOptions configures NewAPI.
type APIOptions struct {
	Level  *slog.LevelVar // the log level /api/v1/log/level reads and sets
	Logger *slog.Logger
	// Version is the broker's version in /api/v1/cluster; empty: the main module's build version.
	Version string
}

//go:embed openapi.yaml
var openAPI []byte

// route is one endpoint of the API. apiRoutes is the one list the mux is built from, and the list
// the OpenAPI consistency test compares with openapi.yaml.
type route struct {
	method, path string
	handle       func(a *api, w http.ResponseWriter, r *http.Request)
}

var apiRoutes = []route{
	{"GET", "/api/v1/openapi.yaml", (*api).openapi},
	{"GET", "/api/v1/cluster", (*api).cluster},
	{"GET", "/api/v1/cluster/throughput", (*api).throughput},
	{"GET", "/api/v1/topics", (*api).listTopics},
	{"POST", "/api/v1/topics", (*api).createTopic},
	{"GET", "/api/v1/topics/{name}", (*api).topic},
	{"DELETE", "/api/v1/topics/{name}", (*api).deleteTopic},
	{"GET", "/api/v1/topics/{name}/configs", (*api).topicConfigs},
	{"PATCH", "/api/v1/topics/{name}/configs", (*api).alterTopicConfigs},
	{"GET", "/api/v1/topics/{name}/partitions", (*api).partitions},
	{"GET", "/api/v1/topics/{name}/records", (*api).readRecords},
	{"POST", "/api/v1/topics/{name}/records", (*api).produce},
	{"GET", "/api/v1/groups", (*api).groups},
	{"GET", "/api/v1/groups/{id}", (*api).group},
	{"DELETE", "/api/v1/groups/{id}", (*api).deleteGroup},
	{"GET", "/api/v1/groups/{id}/lag", (*api).groupLag},
	{"POST", "/api/v1/groups/{id}/offsets/reset", (*api).resetOffsets},
	{"GET", "/api/v1/reassignments", (*api).reassignments},
	{"POST", "/api/v1/reassignments", (*api).reassign},
	{"DELETE", "/api/v1/reassignments", (*api).cancelReassignments},
	{"POST", "/api/v1/leaders/elect", (*api).electLeaders},
	{"GET", "/api/v1/log/level", (*api).logLevel},
	{"PUT", "/api/v1/log/level", (*api).setLogLevel},
}

type api struct {
	b       Backend
	level   *slog.LevelVar
	log     *slog.Logger
	version string
}

// NewAPI returns the handler of /api/v1/ (the paths in apiRoutes, described by openapi.yaml).
func NewAPI(b Backend, opts APIOptions) http.Handler {
	a := &api{b: b, level: opts.Level, log: opts.Logger, version: opts.Version}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			a.version = bi.Main.Version
		}
	}
	mux := http.NewServeMux()
	for _, rt := range apiRoutes {
		h := rt.handle
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { h(a, w, r) })
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "no such endpoint: " + r.Method + " " + r.URL.Path + " (see /api/v1/openapi.yaml)"})
	})
	return mux
}

func (a *api) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(openAPI)
}

// orEmpty is s, or an empty slice for nil: a list in an answer is [] when empty, never null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// writeJSON answers v with status (never cached: every answer is the state now).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// readJSON decodes the request body into v (unknown fields are refused, so a typo is not
// silently ignored).
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

// Error is an API error: the HTTP status and the body's code, kafka_code and message.
type Error struct {
	Status    int
	Code      string // Kafka's error name, or BAD_REQUEST / NOT_FOUND / INTERNAL
	KafkaCode int16  // 0 when Code is not a Kafka error
	Message   string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: fmt.Sprintf(format, args...)}
}

// kafkaStatus is the HTTP status of the Kafka errors that are not 500.
var kafkaStatus = map[int16]int{
	kerr.UnknownTopicOrPartition.Code:     http.StatusNotFound,
	kerr.UnknownTopicID.Code:              http.StatusNotFound,
	kerr.GroupIDNotFound.Code:             http.StatusNotFound,
	kerr.NoReassignmentInProgress.Code:    http.StatusNotFound,
	kerr.TopicAlreadyExists.Code:          http.StatusConflict,
	kerr.NonEmptyGroup.Code:               http.StatusConflict,
	kerr.ReassignmentInProgress.Code:      http.StatusConflict,
	kerr.ElectionNotNeeded.Code:           http.StatusConflict,
	kerr.InvalidTopicException.Code:       http.StatusBadRequest,
	kerr.InvalidPartitions.Code:           http.StatusBadRequest,
	kerr.InvalidReplicationFactor.Code:    http.StatusBadRequest,
	kerr.InvalidReplicaAssignment.Code:    http.StatusBadRequest,
	kerr.InvalidConfig.Code:               http.StatusBadRequest,
	kerr.InvalidRequest.Code:              http.StatusBadRequest,
	kerr.InvalidGroupID.Code:              http.StatusBadRequest,
	kerr.PolicyViolation.Code:             http.StatusBadRequest,
	kerr.RecordListTooLarge.Code:          http.StatusBadRequest,
	kerr.MessageTooLarge.Code:             http.StatusBadRequest,
	kerr.InvalidRecord.Code:               http.StatusBadRequest,
	kerr.UnsupportedCompressionType.Code:  http.StatusBadRequest,
	kerr.TopicAuthorizationFailed.Code:    http.StatusForbidden,
	kerr.GroupAuthorizationFailed.Code:    http.StatusForbidden,
	kerr.ClusterAuthorizationFailed.Code:  http.StatusForbidden,
	kerr.PreferredLeaderNotAvailable.Code: http.StatusConflict,
	kerr.EligibleLeadersNotAvailable.Code: http.StatusConflict,
}

// apiError classifies err: an *Error as it is, a Kafka error (wrapped *kerr.Error) with its
// code, a canceled request as 499-like BAD_REQUEST, anything else as a 500.
func apiError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		st, ok := kafkaStatus[ke.Code]
		if !ok {
			st = http.StatusInternalServerError
		}
		return &Error{Status: st, Code: ke.Message, KafkaCode: ke.Code, Message: err.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: kerr.RequestTimedOut.Message, KafkaCode: kerr.RequestTimedOut.Code, Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: err.Error()}
}

type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code      string `json:"code"`
	KafkaCode int16  `json:"kafka_code"`
	Message   string `json:"message"`
}

func writeError(w http.ResponseWriter, err error) {
	e := apiError(err)
	writeJSON(w, e.Status, errorBody{errorJSON{e.Code, e.KafkaCode, e.Message}})
}

// queryInt parses the query parameter name as an int, def when absent.
func queryInt(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest("%s=%q: not an integer", name, s)
	}
	return n, nil
}

// page parses limit and offset (limit within 1..max, offset >= 0).
func page(r *http.Request, def, max int64) (offset, limit int, err error) {
	l, err := queryInt(r, "limit", def)
	if err != nil {
		return 0, 0, err
	}
	o, err := queryInt(r, "offset", 0)
	if err != nil {
		return 0, 0, err
	}
	if l < 1 || l > max {
		return 0, 0, badRequest("limit=%d: must be 1..%d", l, max)
	}
	if o < 0 {
		return 0, 0, badRequest("offset=%d: must be >= 0", o)
	}
	return int(o), int(l), nil
}

func queryBool(r *http.Request, name string) (value, set bool, err error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, false, badRequest("%s=%q: not true or false", name, s)
	}
	return v, true, nil
}

func (a *api) logLevel(w http.ResponseWriter, r *http.Request) {
	if a.level == nil {
		writeError(w, notFound("the log level is not adjustable in this process"))
		return
	}
	writeJSON(w, http.StatusOK, logLevelJSON{Level: a.level.Level().String()})
}

type logLevelJSON struct {
	Level string `json:"level"`
}

func (a *api) setLogLevel(w http.ResponseWriter, r *http.Request) {
	if a.level == nil {
		writeError(w, notFound("the log level is not adjustable in this process"))
		return
	}
	var req logLevelJSON
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(req.Level))); err != nil {
		writeError(w, badRequest("level %q: one of DEBUG, INFO, WARN, ERROR", req.Level))
		return
	}
	old := a.level.Level()
	a.level.Set(lv)
	a.log.Info("log level changed through the admin API", "from", old.String(), "to", lv.String())
	writeJSON(w, http.StatusOK, logLevelJSON{Level: lv.String()})
}
