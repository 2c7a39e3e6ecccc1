// Package broker wires a Moldau node together: the metadata controller (raft), the partitions
// hosted here, the group coordinator, the request handlers and the client listeners. It keeps the local
// partitions in line with the metadata image and runs the background maintenance (retention).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/handler"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metrics"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/raftstore"
	"github.com/moldau/moldau/internal/replica"
	"github.com/moldau/moldau/internal/server"
	"github.com/moldau/moldau/internal/txn"
	"github.com/moldau/moldau/internal/vfs"
)

// Broker is one running Moldau node.
type Broker struct {
	cfg   *config.Config
	log   *slog.Logger
	clock systemClock

	locks []*dirLock // one per log dir, held from the start of Start to the end of Shutdown
	// storage is the log dirs' meta.properties (node id, cluster id, directory ids).
	storage *storage
	meta    *metadata.Controller
	parts   *partition.Manager
	// replicas applies each metadata image to the partitions hosted here: opens them, makes
	// them leaders or followers (fetching from their leader), sends ISR changes. applied is the
	// image it last applied (REQUIRES: syncMu).
	replicas *replica.Manager
	applied  *metadata.Image
	groups   *group.Coordinator
	offsets  *offsetsStore
	txns     *txn.Coordinator // the transaction coordinator (txn.go)
	peers    *peerClients     // the transaction coordinator's clients of the other brokers
	markers  *markerSender    // the transaction coordinator's MarkerSender
	// txnCountWarned: the partition count mismatch of __transaction_state was logged
	// (REQUIRES: syncMu).
	txnCountWarned bool
	listeners      []*clientListener // every client listener, in the order of listeners
	// ctrlMux splits the CONTROLLER listener between raft and the controller APIs (Kafka
	// protocol); ctrlSrv serves the latter. Both nil without a controller listener.
	ctrlMux *raftstore.Mux
	ctrlSrv *server.Server
	// http is the HTTP listener (http.go): console, admin API, /metrics, /healthz, /readyz.
	http      httpState
	httpLevel *slog.LevelVar // the logger's level, which the admin API changes
	version   string         // the release the admin API reports (WithVersion)

	// leaderQuota and followerQuota are the replication quotas (KIP-73), set from the
	// effective broker config and the topics' throttled replicas on every Sync (quotas.go).
	leaderQuota, followerQuota *replica.Quota

	syncMu sync.Mutex // serialises Sync

	shutdownOnce sync.Once
	shutdownErr  error

	// incarnation is this process's incarnation id (set once by registerSelf); brokerEpoch
	// the epoch its registration got (heartbeats carry it).
	incarnation metadata.UUID
	brokerEpoch atomic.Int64

	stop chan struct{}
	// shuttingDown is closed when a controlled shutdown starts: the heartbeat loop hands over.
	shuttingDown chan struct{}
	wg           sync.WaitGroup // background loops

	// lag is the consumer lag of the groups coordinated here (lag.go).
	lag *metrics.LagTracker
	// lagSrc resolves high watermarks and record timestamps for lag, the tracker's and the
	// admin API's (nil before Start).
	lagSrc *lagSource
	// isrShrinks and isrExpands count the ISR changes of partitions led here that the
	// controller committed (alterPartition).
	isrShrinks, isrExpands atomic.Int64
}

// clientListener is one entry of listeners: its bound socket and the server that serves it.
type clientListener struct {
	bind       config.Listener // as configured
	advertised config.Listener // as advertised, a port of 0 replaced by the bound port
	ln         net.Listener
	// mux, on a broker-only node's inter-broker listener, splits off the raft connections of the
	// metadata log this node follows as a non-voter; clients are served from its Kafka side.
	mux *raftstore.Mux
	srv *server.Server // nil until Start has wired the handler
}

// serveLn is what the listener's Kafka server accepts from.
func (l *clientListener) serveLn() net.Listener {
	if l.mux != nil {
		return l.mux.Kafka()
	}
	return l.ln
}

// Listener describes one client listener of a running broker.
type Listener struct {
	Name       string
	Addr       net.Addr        // the bound address
	Advertised config.Listener // what clients that connect to it are told
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures Start.
type Option func(*options)

type options struct {
	fs      vfs.FS
	level   *slog.LevelVar // WithLogLevel
	version string         // WithVersion
}

// WithFS puts every file of the log dirs (partition logs, checkpoints, markers) and the raft
// store (its WAL and snapshots) on fsys instead of the OS filesystem; tests inject disk faults
// with vfs.NewFaultFS over vfs.Default, or run on vfs.NewMem.
func WithFS(fsys vfs.FS) Option { return func(o *options) { o.fs = fsys } }

// Start locks the log dirs, binds every client listener, starts the metadata quorum, recovers
// the logs, starts the group coordinator and serves. The broker serves clients when Start returns.
//
// Start fails at once, before anything that could wait, when a log dir is in use by another
// process (its .lock) or a listener's port is taken. A failed start leaves a log dir that was
// empty or missing before it as it was. Start stops early, with ctx's error, when ctx ends.
func Start(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...Option) (*Broker, error) {
	if logger == nil {
		logger = slog.Default()
	}
	o := options{fs: vfs.Default}
	for _, opt := range opts {
		opt(&o)
	}
	b := &Broker{cfg: cfg, log: logger, stop: make(chan struct{}), shuttingDown: make(chan struct{})}
	b.setPhase("locking the log dirs")
	ok := false
	defer func() {
		if !ok {
			if b.http.srv != nil {
				b.http.srv.Close()
			}
			for _, l := range b.listeners {
				l.ln.Close()
			}
			if b.ctrlSrv == nil && b.ctrlMux != nil {
				b.ctrlMux.Kafka().Close()
			}
			b.closeParts()
			releaseDirLocks(b.locks, true)
		}
	}()

	if len(cfg.LogDirs) == 0 {
		return nil, errors.New("broker: no log.dirs configured")
	}
	if !cfg.IsBroker {
		return nil, errors.New("process.roles=controller is not supported yet: run the node as broker,controller (or broker)")
	}
	// First the log dir locks: they are all that keeps a second process from writing the same
	// logs and raft WAL (raft-wal takes no lock of its own).
	var err error
	if b.locks, err = lockLogDirs(cfg.LogDirs); err != nil {
		return nil, err
	}
	// Then meta.properties: data of another node or another cluster is never opened.
	b.storage, err = checkStorage(o.fs, cfg, logger)
	if err != nil {
		return nil, err
	}
	// Then every client listener, before anything is written to the log dirs. Binding before
	// registering also lets a listener on port 0 advertise the port it got.
	for i, ln := range cfg.Listeners {
		netLn, err := net.Listen("tcp", ln.Addr())
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listener %s: address %s is already in use; stop what listens there or choose another port (listeners)", ln, ln.Addr())
			}
			return nil, fmt.Errorf("listener %s: %w", ln, err)
		}
		adv := cfg.AdvertisedListeners[i]
		if adv.Port == 0 {
			adv.Port = netLn.Addr().(*net.TCPAddr).Port
		}
		b.listeners = append(b.listeners, &clientListener{bind: ln, advertised: adv, ln: netLn})
	}
	// And the CONTROLLER listener: raft and the controller APIs share it (raftstore.Mux).
	if cfg.ControllerListener != "" {
		ln, err := net.Listen("tcp", cfg.ControllerListener)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("controller listener: address %s is already in use; stop what listens there or choose another port (controller.quorum.voters, listeners)", cfg.ControllerListener)
			}
			return nil, fmt.Errorf("controller listener %s: %w", cfg.ControllerListener, err)
		}
		b.ctrlMux = raftstore.NewMux(ln, logger)
	}
	// And http.listener, which serves /healthz and /readyz from now on. The registry exists
	// whether or not it is served: the counters are kept anyway.
	m := metrics.New()
	m.Gauge("kafka_server_kafkaserver_brokerstate", "Kafka's BrokerState: 1 starting, 3 running, 7 shutting down.", b.brokerState)
	b.setPhase("starting the metadata quorum")
	b.version = o.version
	if err := b.startHTTP(m, o.level); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}

	// A broker-only node follows the metadata log as a raft non-voter (Kafka's observer) over its
	// inter-broker listener: the voters dial it there with raft's prefix byte.
	raftMux, raftAdvertise := b.ctrlMux, raftAdvertiseAddr(cfg)
	if !cfg.IsController {
		l := b.interBrokerListener()
		l.mux = raftstore.NewMux(l.ln, logger)
		raftMux = l.mux
		raftAdvertise = net.JoinHostPort(l.advertised.Host, strconv.Itoa(l.advertised.Port))
	}

	voters := make(map[int32]string)
	for _, v := range cfg.ControllerQuorumVoters {
		voters[v.ID] = v.Addr()
	}
	leaderBalance := metadata.LeaderBalance{
		Enable:        cfg.AutoLeaderRebalanceEnable,
		Percentage:    int(cfg.LeaderImbalancePerBrokerPercentage),
		CheckInterval: time.Duration(cfg.LeaderImbalanceCheckIntervalSeconds) * time.Second,
	}
	meta, err := metadata.Start(ctx, metadata.Config{
		NodeID:                   cfg.NodeID,
		RaftDir:                  filepath.Join(cfg.LogDirs[0], "__raft"),
		RaftFS:                   o.fs,
		RaftMux:                  raftMux,
		RaftAdvertiseAddr:        raftAdvertise,
		RaftListenerName:         b.interBrokerListener().bind.Name,
		Voters:                   voters,
		ClusterID:                b.storage.clusterID(),
		NumPartitions:            cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		MinInSyncReplicas:        int(cfg.MinInsyncReplicas),
		UncleanLeaderElection:    cfg.UncleanLeaderElectionEnable,
		ValidateTopicConfig:      config.ValidateTopicConfig,
		ValidateBrokerConfig:     config.ValidateBrokerConfig,
		SessionTimeout:           time.Duration(cfg.BrokerSessionTimeoutMs) * time.Millisecond,
		HeartbeatInterval:        time.Duration(cfg.BrokerHeartbeatIntervalMs) * time.Millisecond,
		LeaderBalance:            leaderBalance,
		Logger:                   logger.With("component", "controller"),
		RaftLogger:               logger, // raft's lines in the broker's format, component=raft
	})
	if err != nil {
		return nil, fmt.Errorf("broker: start metadata quorum: %w", err)
	}
	b.meta = meta
	if err := b.storage.recordClusterID(meta.Image().ClusterID()); err != nil {
		return nil, err
	}

	b.setPhase("registering with the metadata quorum")
	if err := b.registerWithQuorum(ctx); err != nil {
		return nil, err
	}
	// A node of a cluster learns the cluster id from the quorum: by now it has it.
	if err := b.storage.recordClusterID(meta.Image().ClusterID()); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}

	b.setPhase("opening the partitions")
	b.parts, err = partition.NewManager(cfg.LogDirs, b.clock, partition.WithFS(o.fs), partition.WithLogger(logger),
		partition.WithSyncObserver(m.LogSynced))
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	for _, err := range b.parts.CheckpointErrors() {
		b.log.Error("high-watermark checkpoint ignored: its partitions start from their log start offsets (a single replica then commits its whole log at once); it is rewritten within seconds", "err", err)
	}
	b.leaderQuota, b.followerQuota = newQuotas(cfg, b.clock)
	b.replicas = replica.NewManager(b.replicaConfig(m))
	if err := b.Sync(); err != nil {
		return nil, fmt.Errorf("broker: open partitions: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}

	b.setPhase("loading the consumer offsets")
	b.offsets, err = newOffsetsStore(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("broker: consumer offsets: %w", err)
	}
	b.groups = group.NewCoordinator(group.Config{
		InitialRebalanceDelay: time.Duration(cfg.GroupInitialRebalanceDelayMs) * time.Millisecond,
		MinSessionTimeout:     time.Duration(cfg.GroupMinSessionTimeoutMs) * time.Millisecond,
		MaxSessionTimeout:     time.Duration(cfg.GroupMaxSessionTimeoutMs) * time.Millisecond,
		OffsetsRetention:      time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute,
		OffsetsPartitions:     b.offsets.partitions, // a group is served by its partition's leader
		Logger:                logger,
		RecordsSkipped:        m.InternalRecordsSkipped(metadata.ConsumerOffsetsTopic),
	}, b.offsets, nil)
	b.txns = b.newTxnCoordinator()
	b.syncCoordinators()

	endpoints := make(map[string]handler.Endpoint, len(b.listeners))
	for _, l := range b.listeners {
		endpoints[l.bind.Name] = handler.Endpoint{Host: l.advertised.Host, Port: int32(l.advertised.Port)}
	}
	h := handler.New(handler.Options{
		NodeID:                 cfg.NodeID,
		Listeners:              endpoints,
		AutoCreateTopics:       cfg.AutoCreateTopicsEnable,
		FetchSessionCacheSlots: int(cfg.FetchSessionCacheSlots),
		LeaderQuota:            b.leaderQuota,
		TxnVerifier:            &txnVerifier{b: b},
		TxnVerificationEnable:  cfg.TransactionPartitionVerificationEnable,
		Txns:                   b.txns,
	}, b.meta, b.parts, b.groups, b, logger)

	overrides := make(map[string]int, len(cfg.MaxConnectionsPerIPOverrides))
	for host, n := range cfg.MaxConnectionsPerIPOverrides {
		overrides[host] = int(n)
	}
	limits, err := server.NewLimits(server.LimitsConfig{
		QueuedMaxRequestBytes:        cfg.QueuedMaxRequestBytes,
		MaxConnections:               int(cfg.MaxConnections),
		MaxConnectionsPerIP:          int(cfg.MaxConnectionsPerIP),
		MaxConnectionsPerIPOverrides: overrides,
		Logger:                       logger,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}

	m.Gauge("moldau_partitions", "Partitions hosted by this broker.", func() float64 { return float64(len(b.parts.All())) })
	m.Gauge("moldau_log_bytes", "Bytes of all partition logs on this broker.", func() float64 {
		var n int64
		for _, p := range b.parts.All() {
			n += p.Size()
		}
		return float64(n)
	})
	m.Gauge("moldau_queued_request_bytes", "Bytes of requests partially received or not yet handled (bounded by queued.max.request.bytes).",
		func() float64 { return float64(limits.QueuedRequestBytes()) })
	m.Gauge("moldau_connections", "Open client connections.", func() float64 { return float64(limits.Connections()) })
	m.Counter("moldau_connections_rejected_total", "Connections closed at once because their address had max.connections.per.ip connections.",
		func() float64 { return float64(limits.RejectedConnections()) })
	b.quotaMetrics(m)
	sh := m.Instrument(h)

	for _, l := range b.listeners {
		l.srv = server.New(server.Config{
			Ln:              l.serveLn(),
			Listener:        l.bind.Name,
			MaxRequestBytes: cfg.SocketRequestMaxBytes,
			IdleTimeout:     time.Duration(cfg.ConnectionsMaxIdleMs) * time.Millisecond,
			Limits:          limits, // one for every listener: the budget and the connection caps are broker-wide
			Observer:        m,      // Kafka's RequestMetrics
			Logger:          logger.With("listener", l.bind.Name),
		}, sh)
		if err := l.srv.Listen(); err != nil {
			return nil, fmt.Errorf("broker: listener %s: %w", l.bind, err)
		}
	}
	for _, l := range b.listeners {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := l.srv.Serve(); err != nil {
				b.log.Error("listener stopped", "listener", l.bind.Name, "err", err)
			}
		}()
	}
	if b.ctrlMux != nil {
		b.ctrlSrv = server.New(server.Config{
			Ln:              b.ctrlMux.Kafka(),
			Listener:        controllerListenerName(cfg),
			MaxRequestBytes: cfg.SocketRequestMaxBytes,
			IdleTimeout:     time.Duration(cfg.ConnectionsMaxIdleMs) * time.Millisecond,
			Limits:          limits,
			Observer:        m, // its requests count in RequestMetrics too, as in Kafka's combined mode
			Logger:          logger.With("listener", controllerListenerName(cfg)),
		}, controllerHandler{h})
		if err := b.ctrlSrv.Listen(); err != nil {
			return nil, fmt.Errorf("broker: controller listener: %w", err)
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.ctrlSrv.Serve(); err != nil {
				b.log.Error("controller listener stopped", "err", err)
			}
		}()
	}
	b.wg.Add(3)
	go b.followMetadata()
	go b.maintenance()
	go b.heartbeats()
	if cfg.LogCleanerEnable {
		b.wg.Add(1)
		go b.cleaner()
	}
	if err := m.Register(kafkaGauges{b}); err != nil {
		return nil, fmt.Errorf("broker: metrics: %w", err)
	}
	if err := m.Register(raftGauges{b}); err != nil {
		return nil, fmt.Errorf("broker: metrics: %w", err)
	}
	if err := b.startLag(m); err != nil {
		return nil, fmt.Errorf("broker: metrics: %w", err)
	}
	b.attachAPI()
	b.http.phase.Store(nil) // ready from now on, unless Ready finds a reason
	ok = true
	return b, nil
}

// Addr is the address the first client listener is bound to.
func (b *Broker) Addr() net.Addr { return b.listeners[0].ln.Addr() }

// Listeners describes every client listener, in the order of the listeners config.
func (b *Broker) Listeners() []Listener {
	out := make([]Listener, len(b.listeners))
	for i, l := range b.listeners {
		out[i] = Listener{Name: l.bind.Name, Addr: l.ln.Addr(), Advertised: l.advertised}
	}
	return out
}

// Controller exposes the metadata controller (tests, tools).
func (b *Broker) Controller() *metadata.Controller { return b.meta }

// Sync brings the partitions hosted here in line with the latest metadata image (the replica
// manager opens, leads, follows and deletes them) and the group coordinator with the
// __consumer_offsets partitions this broker leads. It implements handler.Cluster.
func (b *Broker) Sync() error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	im := b.meta.Image()
	err := b.replicas.Apply(b.applied, im)
	b.applied = im
	b.syncCoordinators()
	b.applyQuotas(im)
	return err
}

func hosts(replicas []int32, id int32) bool {
	for _, r := range replicas {
		if r == id {
			return true
		}
	}
	return false
}

// followMetadata re-syncs partitions whenever the metadata image changes.
func (b *Broker) followMetadata() {
	defer b.wg.Done()
	ch := b.meta.Subscribe()
	defer b.meta.Unsubscribe(ch)
	for {
		select {
		case <-b.stop:
			return
		case <-ch:
			if err := b.storage.recordClusterID(b.meta.Image().ClusterID()); err != nil {
				b.log.Error("this node's log dirs belong to another cluster than the metadata quorum's", "err", err)
			}
			if err := b.Sync(); err != nil {
				b.log.Warn("sync partitions with metadata", "err", err)
			}
		}
	}
}

// highWatermarkCheckpointInterval is Kafka's replica.high.watermark.checkpoint.interval.ms.
const highWatermarkCheckpointInterval = 5 * time.Second

// maintenance enforces retention every log.retention.check.interval.ms and checkpoints the high
// watermarks every five seconds (read back at start: partition.StartHighWatermark).
func (b *Broker) maintenance() {
	defer b.wg.Done()
	interval := time.Duration(b.cfg.LogRetentionCheckIntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	retention := time.NewTicker(interval)
	defer retention.Stop()
	checkpoint := time.NewTicker(highWatermarkCheckpointInterval)
	defer checkpoint.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-retention.C:
			b.EnforceRetention()
		case <-checkpoint.C:
			if err := b.parts.WriteHighWatermarks(); err != nil {
				b.log.Warn("checkpoint high watermarks", "err", err)
			}
		}
	}
}

// EnforceRetention applies retention.ms / retention.bytes and segment.ms rolls on every partition.
func (b *Broker) EnforceRetention() {
	for _, p := range b.parts.All() {
		if p.Offline() != nil {
			continue // its log dir failed: nothing is written there any more
		}
		n, err := p.Log().EnforceRetention()
		if err != nil {
			b.log.Warn("retention", "topic", p.Topic, "partition", p.Index, "err", err)
		} else if n > 0 {
			b.log.Info("retention deleted segments", "topic", p.Topic, "partition", p.Index, "segments", n)
		}
	}
}

// cleaner compacts the logs of cleanup.policy=compact topics that need it, every
// log.cleaner.backoff.ms (Kafka's LogCleaner thread). One log at a time: a pass reads and
// rewrites the log's rolled segments without blocking its appends.
func (b *Broker) cleaner() {
	defer b.wg.Done()
	backoff := time.Duration(b.cfg.LogCleanerBackoffMs) * time.Millisecond
	if backoff <= 0 {
		backoff = 15 * time.Second
	}
	t := time.NewTicker(backoff)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.CleanLogs(false)
		}
	}
}

// CleanLogs runs a compaction pass on every compacted partition that needs one (all of them when
// force), stopping early at shutdown.
func (b *Broker) CleanLogs(force bool) {
	for _, p := range b.parts.All() {
		select {
		case <-b.stop:
			return
		default:
		}
		if p.Offline() != nil {
			continue
		}
		// The cleaner's bound is the last stable offset (Kafka's firstUncleanableOffset): below
		// the high watermark and before any transaction still open.
		l, lso := p.Log(), p.LastStableOffset()
		if !force && !l.NeedsCleaning(lso) {
			continue
		}
		st, err := l.Clean(lso)
		switch {
		case err != nil:
			b.log.Warn("log cleaner", "topic", p.Topic, "partition", p.Index, "err", err)
		case st.Segments > 0:
			b.log.Info("log cleaner compacted", "topic", p.Topic, "partition", p.Index,
				"segments", st.Segments, "bytes_before", st.BytesRead, "bytes_after", st.BytesWritten,
				"records_removed", st.RecordsRemoved)
		}
	}
}

// Shutdown stops serving, then flushes and closes every log and the metadata quorum. Calls after
// the first return the first one's result.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() { b.shutdownErr = b.shutdown(ctx) })
	return b.shutdownErr
}

func (b *Broker) shutdown(ctx context.Context) error {
	var errs []error
	b.http.stopping.Store(true) // /readyz: not ready
	// While clients still reach this broker, let the controller move its leaderships away.
	b.controlledShutdown(ctx)
	for _, l := range b.listeners {
		if err := l.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop listener %s: %w", l.bind.Name, err))
		}
	}
	if b.ctrlSrv != nil {
		// The raft side of the listener stays up until the metadata quorum closes.
		if err := b.ctrlSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop controller listener: %w", err))
		}
	}
	if err := b.stopHTTP(ctx); err != nil {
		errs = append(errs, err)
	}
	close(b.stop)
	b.wg.Wait()
	if b.txns != nil {
		b.txns.Close() // its completions stop sending markers
	}
	if b.peers != nil {
		b.peers.close()
	}
	if b.groups != nil {
		b.groups.Close()
	}
	if err := b.closeParts(); err != nil {
		errs = append(errs, err)
	}
	releaseDirLocks(b.locks, false) // last: nothing writes to the log dirs any more
	return errors.Join(errs...)
}

func (b *Broker) closeParts() error {
	var errs []error
	if b.replicas != nil {
		// First: no fetcher appends to a partition being closed.
		if err := b.replicas.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close replica manager: %w", err))
		}
	}
	if b.parts != nil {
		if err := b.parts.WriteHighWatermarks(); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint high watermarks: %w", err))
		}
		if err := b.parts.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close partitions: %w", err))
		}
	}
	if b.meta != nil {
		if err := b.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close metadata: %w", err))
		}
	}
	return errors.Join(errs...)
}

// nodeName is this broker's id as DescribeConfigs names it.
func (b *Broker) nodeName() string { return strconv.Itoa(int(b.cfg.NodeID)) }
