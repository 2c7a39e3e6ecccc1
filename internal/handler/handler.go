// Package handler answers Kafka requests: one file per API key, each starting with the versions it
// supports and registering that range in the table ApiVersions advertises, so the advertised and
// the implemented versions cannot drift apart.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/server"
	"github.com/moldau/moldau/internal/txn"
)

// api is one implemented API key: its version range and its handler.
type api struct {
	key      int16
	min, max int16
	handle   func(h *Handler, ctx context.Context, req *server.Request) (kmsg.Response, error)
	// controllerOnly APIs (broker -> controller) are served and advertised only on the
	// CONTROLLER listener, as in Kafka; on a client listener they close the connection.
	controllerOnly bool
}

// apis is filled by the init functions of the per-API files and never changed afterwards.
var apis = map[int16]api{}

func register(key kmsg.Key, min, max int16, fn func(h *Handler, ctx context.Context, req *server.Request) (kmsg.Response, error)) {
	if kmax := kmsg.RequestForKey(key.Int16()).MaxVersion(); max > kmax {
		panic(fmt.Sprintf("handler for %s registers v%d, kmsg knows up to v%d", key.Name(), max, kmax))
	}
	apis[key.Int16()] = api{key: key.Int16(), min: min, max: max, handle: fn}
}

// registerController registers an API served only on the CONTROLLER listener.
func registerController(key kmsg.Key, min, max int16, fn func(h *Handler, ctx context.Context, req *server.Request) (kmsg.Response, error)) {
	register(key, min, max, fn)
	a := apis[key.Int16()]
	a.controllerOnly = true
	apis[key.Int16()] = a
}

// sortedAPIs lists the implemented APIs by key.
func sortedAPIs() []api {
	out := make([]api, 0, len(apis))
	for _, a := range apis {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// Cluster is what the handlers need from the broker that owns them.
type Cluster interface {
	// Sync opens and closes local partitions to match the metadata image; handlers call it after a
	// metadata write so the response reflects partitions that are ready.
	Sync() error
	// EnsureOffsetsTopic creates __consumer_offsets if it does not exist yet; FindCoordinator
	// calls it, as Kafka creates the topic on the first lookup of a group coordinator.
	EnsureOffsetsTopic(ctx context.Context) error
	// EnsureTransactionsTopic creates __transaction_state if it does not exist yet;
	// FindCoordinator for a transactional id calls it, as Kafka does.
	EnsureTransactionsTopic(ctx context.Context) error
	// PartitionSettings resolves the settings of a topic (broker defaults + topic overrides).
	PartitionSettings(topic string) (partition.Settings, error)
	// DescribeTopicConfigs and DescribeBrokerConfigs answer DescribeConfigs.
	DescribeTopicConfigs(topic string, keys []string, synonyms, docs bool) ([]kmsg.DescribeConfigsResponseResourceConfig, error)
	DescribeBrokerConfigs(keys []string, synonyms, docs bool) ([]kmsg.DescribeConfigsResponseResourceConfig, error)
	// ValidateTopicConfig and ValidateBrokerConfig check a config change before it is committed.
	ValidateTopicConfig(key, value string) error
	ValidateBrokerConfig(key, value string) error
}

// Options are this broker's identity and the settings handlers read.
type Options struct {
	NodeID int32
	// Listeners maps each client listener's name (server.Request.Listener) to the endpoint this
	// broker advertises on it. Metadata, FindCoordinator and DescribeCluster answer a request
	// with the endpoint of the listener it arrived on, as Kafka does, so clients stay on the
	// network they came in through (an internal and an external listener).
	Listeners        map[string]Endpoint
	Rack             string
	AutoCreateTopics bool
	// FetchSessionCacheSlots is max.incremental.fetch.session.cache.slots.
	FetchSessionCacheSlots int
	// LeaderQuota is the leader replication quota (leader.replication.throttled.rate over
	// leader.replication.throttled.replicas, replica.Quota); nil: follower fetches are never
	// throttled.
	LeaderQuota ReplicationQuota
	// TxnVerifier consults transaction coordinators for KIP-890 (txn_verifier.go); nil:
	// transactional writes are refused.
	TxnVerifier TxnVerifier
	// TxnVerificationEnable is transaction.partition.verification.enable (KIP-890 part 1): a
	// partition leader verifies a transactional producer's first write through TxnVerifier.
	TxnVerificationEnable bool
	// Txns is the transaction coordinator (InitProducerId with a transactional id,
	// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, Describe/ListTransactions); nil: none runs
	// here and those requests are refused, as before transactions existed.
	Txns *txn.Coordinator
}

// ReplicationQuota is a replication quota as the Fetch handler uses it (replica.Quota).
type ReplicationQuota interface {
	// Holds reports whether a follower fetch gets no records for a partition now: the
	// partition is throttled, the quota exceeded and the follower not in the ISR.
	Holds(topic string, partition int32, inSync bool) bool
	IsThrottled(topic string, partition int32) bool
	Record(bytes int64)
}

// Endpoint is an advertised host and port.
type Endpoint struct {
	Host string
	Port int32
}

// selfEndpoint is the endpoint this broker advertises on the listener req arrived on. A listener
// missing from Options.Listeners (a request not from a server, in tests) gets the endpoint
// registered in the metadata.
func (h *Handler) selfEndpoint(req *server.Request) Endpoint {
	if e, ok := h.opts.Listeners[req.Listener]; ok {
		return e
	}
	if b, ok := h.meta.Image().Broker(h.opts.NodeID); ok {
		return Endpoint{Host: b.Host, Port: b.Port}
	}
	return Endpoint{}
}

// brokerEndpoint is the endpoint of broker b for a request on req's listener: this broker's own
// per-listener endpoint, or the endpoint of the same listener name another broker registered
// (Kafka's rule, so clients stay on the network they came in through). A broker without that
// listener is answered with its first endpoint.
func (h *Handler) brokerEndpoint(req *server.Request, b metadata.Broker) Endpoint {
	if b.NodeID == h.opts.NodeID {
		return h.selfEndpoint(req)
	}
	for _, e := range b.Endpoints {
		if e.Name == req.Listener {
			return Endpoint{Host: e.Host, Port: e.Port}
		}
	}
	return Endpoint{Host: b.Host, Port: b.Port}
}

// Handler answers every request of this broker. It implements server.Handler.
type Handler struct {
	opts     Options
	meta     *metadata.Controller
	parts    *partition.Manager
	groups   *group.Coordinator
	cluster  Cluster
	pids     *metadata.ProducerIDs
	sessions *fetchSessionCache
	log      *slog.Logger
}

// New returns a Handler.
func New(opts Options, meta *metadata.Controller, parts *partition.Manager, groups *group.Coordinator, cluster Cluster, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{opts: opts, meta: meta, parts: parts, groups: groups, cluster: cluster, pids: &metadata.ProducerIDs{Controller: meta},
		sessions: newFetchSessionCache(opts.FetchSessionCacheSlots, time.Now), log: logger}
}

// SupportedVersion implements server.Handler.
func (h *Handler) SupportedVersion(key, version int16) bool {
	a, ok := apis[key]
	return ok && version >= a.min && version <= a.max
}

// Handle implements server.Handler: it dispatches on the API key.
func (h *Handler) Handle(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	a, ok := apis[req.Key]
	if !ok {
		return nil, fmt.Errorf("api key %d is not implemented", req.Key)
	}
	if a.controllerOnly && !metadata.IsForwarded(ctx) {
		return nil, fmt.Errorf("api key %d is served on the CONTROLLER listener only", req.Key)
	}
	return a.handle(h, ctx, req)
}

// errorCode maps an error from the layers below to a Kafka error code. It is the one place where
// that mapping happens: errors that wrap a kerr.Error carry their code; metadata sentinels map to
// theirs; anything else is UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if code, ok := metadata.ErrorCode(err); ok {
		return code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the message Kafka puts beside a code: nil for success.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
