package broker

// The broker's HTTP listener (http.listener): the web console, the admin API, /metrics, /healthz
// and /readyz (internal/httpapi). It is bound with the Kafka listeners, before anything can wait,
// and serves from then on: /healthz answers while the node waits for its metadata quorum, /readyz
// says what it waits for, and /api/v1/ answers 503 until Start has returned.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/moldau/moldau/internal/console"
	"github.com/moldau/moldau/internal/httpapi"
	"github.com/moldau/moldau/internal/metrics"
)

// WithLogLevel gives Start the level of its logger, which the admin API reads and changes
// (GET and PUT /api/v1/log/level). Without it the API changes a level of its own that no logger
// uses.
func WithLogLevel(lv *slog.LevelVar) Option { return func(o *options) { o.level = lv } }

// WithVersion gives Start the release it is (cmd/moldau's version), which GET /api/v1/cluster
// and the console report. Without it they report the main module's build version.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// httpState is the broker's side of the HTTP listener.
type httpState struct {
	srv *httpapi.Server // nil when http.listener is empty
	// api is the /api/v1/ handler, stored when Start has finished: before that the API's backend
	// (this broker) is half built and /api/v1/ answers 503.
	api atomic.Pointer[http.Handler]
	// phase is what Start is doing, for /readyz while it runs; nil once it has returned.
	phase    atomic.Pointer[string]
	stopping atomic.Bool // Shutdown has begun
	// lastHeartbeat is when the controller last answered a heartbeat (unix ns; 0 never).
	lastHeartbeat atomic.Int64
}

// setPhase records what Start does now (/readyz shows it as "starting: ...").
func (b *Broker) setPhase(what string) { b.http.phase.Store(&what) }

// brokerState is Kafka's BrokerState of this broker (kafka_server_kafkaserver_brokerstate):
// STARTING (1) while Start runs, RUNNING (3) once it has returned, SHUTTING_DOWN (7) from
// Shutdown on.
func (b *Broker) brokerState() float64 {
	switch {
	case b.http.stopping.Load():
		return 7
	case b.http.phase.Load() != nil:
		return 1
	}
	return 3
}

// startHTTP binds http.listener and serves it (a no-op when it is empty). m is the registry
// /metrics serves; the API is attached by serveAPI once Start is done.
func (b *Broker) startHTTP(m *metrics.Metrics, level *slog.LevelVar) error {
	if b.cfg.HTTPListener == "" {
		return nil
	}
	if level == nil {
		level = new(slog.LevelVar)
		level.Set(b.cfg.LogLevel)
	}
	b.httpLevel = level
	srv, err := httpapi.Listen(httpapi.Config{
		Addr:    b.cfg.HTTPListener,
		Pprof:   b.cfg.HTTPPprof,
		Metrics: m.Handler(),
		API:     http.HandlerFunc(b.serveAPI),
		Console: console.Handler(),
		Ready:   b.Ready,
		Logger:  b.log.With("component", "http"),
	})
	if err != nil {
		return err
	}
	b.http.srv = srv
	return nil
}

// attachAPI makes /api/v1/ serve: called at the end of Start.
func (b *Broker) attachAPI() {
	if b.http.srv == nil {
		return
	}
	h := httpapi.NewAPI(b.apiBackend(), httpapi.APIOptions{Level: b.httpLevel, Version: b.version, Logger: b.log.With("component", "api")})
	b.http.api.Store(&h)
}

func (b *Broker) serveAPI(w http.ResponseWriter, r *http.Request) {
	h := b.http.api.Load()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"error":{"code":"BROKER_NOT_AVAILABLE","kafka_code":8,"message":"the broker is starting"}}`)
		return
	}
	(*h).ServeHTTP(w, r)
}

// HTTPAddr is the bound http.listener address, nil when it is off.
func (b *Broker) HTTPAddr() net.Addr {
	if b.http.srv == nil {
		return nil
	}
	return b.http.srv.Addr()
}

// MetricsAddr is HTTPAddr (metrics.listener is an alias of http.listener).
func (b *Broker) MetricsAddr() net.Addr { return b.HTTPAddr() }

// readyMetadataWait is how long Ready gives the local metadata image to reach the commit index
// it saw: every metadata change is briefly committed and not yet applied.
const readyMetadataWait = time.Second

// readyMaxPartitions caps the partitions /readyz names one by one.
const readyMaxPartitions = 10

// Ready reports whether this node is ready to serve (/readyz), and if not, why. It is not ready
// while (one reason each):
//
//   - "starting: <phase>": Start has not returned (waiting for the metadata quorum, opening the
//     partitions, ...);
//   - "shutting down": Shutdown has begun (its leaderships are moving away);
//   - "not registered with the controller" / "fenced by the controller": the metadata image has
//     no registration of this process's broker epoch, or has it fenced (the controller unfences
//     a broker once it has caught up with the metadata log, and fences it when its heartbeats
//     stop);
//   - "no answer to heartbeats for ...": the controller has not answered a heartbeat for
//     broker.session.timeout.ms (it has fenced this broker, or cannot be reached to say so);
//   - "no metadata quorum leader known": the raft group has no leader this node knows of;
//   - "metadata not caught up: ...": the local image stays behind the metadata log's commit index
//     for more than a second;
//   - "log dir D offline: ...": a log dir failed (a write or fsync error) and its partitions are
//     offline;
//   - "partition T-P under min ISR: ...": this node leads a partition whose ISR is smaller than
//     its min.insync.replicas, so acks=all produces to it fail (up to ten are named, then a count).
func (b *Broker) Ready() (bool, []string) {
	if p := b.http.phase.Load(); p != nil {
		return false, []string{"starting: " + *p}
	}
	if b.http.stopping.Load() {
		return false, []string{"shutting down"}
	}
	var reasons []string
	im := b.meta.Image()
	reg, ok := im.Broker(b.cfg.NodeID)
	switch {
	case !ok || reg.Epoch != b.brokerEpoch.Load():
		reasons = append(reasons, fmt.Sprintf("not registered with the controller (broker epoch %d)", b.brokerEpoch.Load()))
	case reg.Fenced:
		reasons = append(reasons, "fenced by the controller")
	case reg.InControlledShutdown:
		reasons = append(reasons, "in controlled shutdown")
	}
	if b.clustered() {
		session := time.Duration(b.cfg.BrokerSessionTimeoutMs) * time.Millisecond
		if last := b.http.lastHeartbeat.Load(); last > 0 && time.Since(time.Unix(0, last)) > session {
			reasons = append(reasons, fmt.Sprintf("no answer to heartbeats for %s (broker.session.timeout.ms=%d): the controller fences this broker",
				time.Since(time.Unix(0, last)).Round(time.Second), b.cfg.BrokerSessionTimeoutMs))
		}
	}
	if node := b.meta.Node(); node != nil {
		if _, _, ok := node.Leader(); !ok {
			reasons = append(reasons, "no metadata quorum leader known")
		} else if commit := node.Raft().CommitIndex(); im.Index() < commit {
			ctx, cancel := context.WithTimeout(context.Background(), readyMetadataWait)
			err := b.meta.WaitApplied(ctx, commit)
			cancel()
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("metadata not caught up: the local image is at index %d, the metadata log committed %d", b.meta.Image().Index(), commit))
			}
		}
	}
	offlineDirs := map[string]bool{}
	for _, d := range b.parts.LogDirs() {
		if ld := b.parts.LogDir(d); ld != nil && ld.Err() != nil {
			offlineDirs[d] = true
			reasons = append(reasons, fmt.Sprintf("log dir %s offline: %v", d, ld.Err()))
		}
	}
	var underMinISR []string
	for _, p := range b.parts.All() {
		if p.Offline() != nil {
			continue // its log dir is named above
		}
		s, ok := p.Replication()
		if !ok {
			continue // not the leader
		}
		if minISR := p.Settings().MinInsyncReplicas; len(s.ISR) < minISR {
			underMinISR = append(underMinISR, fmt.Sprintf("partition %s-%d under min ISR: ISR %v has %d replicas, min.insync.replicas is %d",
				p.Topic, p.Index, s.ISR, len(s.ISR), minISR))
		}
	}
	sort.Strings(underMinISR)
	if n := len(underMinISR); n > readyMaxPartitions {
		underMinISR = append(underMinISR[:readyMaxPartitions], fmt.Sprintf("and %d more partitions under min ISR", n-readyMaxPartitions))
	}
	reasons = append(reasons, underMinISR...)
	return len(reasons) == 0, reasons
}

// stopHTTP stops the HTTP listener (Shutdown, or a failed Start).
func (b *Broker) stopHTTP(ctx context.Context) error {
	if b.http.srv == nil {
		return nil
	}
	if err := b.http.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop http listener: %w", err)
	}
	return nil
}
