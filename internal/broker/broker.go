// Package broker wires a Moldau node together: the metadata controller (raft), the partitions
// hosted here, the group coordinator, the request handlers and the listener. It keeps the local
// partitions in line with the metadata image and runs the background maintenance (retention).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/handler"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metrics"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/server"
)

// Broker is one running Moldau node.
type Broker struct {
	cfg   *config.Config
	log   *slog.Logger
	clock systemClock

	meta    *metadata.Controller
	parts   *partition.Manager
	groups  *group.Coordinator
	offsets *offsetsStore
	srv     *server.Server
	ln      net.Listener    // the bound client listener, served by srv
	metrics *metrics.Server // metrics.listener: /metrics and /debug/pprof/; nil when off

	advertised config.Listener // the client listener as advertised, with its bound port

	syncMu sync.Mutex // serialises Sync

	stop chan struct{}
	wg   sync.WaitGroup // background loops
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Start opens the data directories, recovers the logs, starts the metadata quorum, the group
// coordinator and the listener. The broker serves clients when Start returns.
func Start(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.Default()
	}
	b := &Broker{cfg: cfg, log: logger, stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			if b.metrics != nil {
				b.metrics.Shutdown(context.Background())
			}
			if b.ln != nil {
				b.ln.Close()
			}
			b.closeParts()
		}
	}()

	if len(cfg.LogDirs) == 0 {
		return nil, errors.New("broker: no log.dirs configured")
	}
	for _, d := range cfg.LogDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("broker: create log dir: %w", err)
		}
	}

	voters := make(map[int32]string)
	for _, v := range cfg.ControllerQuorumVoters {
		voters[v.ID] = v.Addr()
	}
	meta, err := metadata.Start(ctx, metadata.Config{
		NodeID:                   cfg.NodeID,
		RaftDir:                  filepath.Join(cfg.LogDirs[0], "__raft"),
		RaftBindAddr:             cfg.ControllerListener,
		RaftAdvertiseAddr:        cfg.ControllerListener,
		Voters:                   voters,
		ClusterID:                cfg.ClusterID,
		NumPartitions:            cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		ValidateTopicConfig:      config.ValidateTopicConfig,
		ValidateBrokerConfig:     config.ValidateBrokerConfig,
		LogOutput:                os.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: start metadata quorum: %w", err)
	}
	b.meta = meta

	// Bind before registering: a listener on port 0 advertises the port it got.
	ln := cfg.Listeners[0]
	netLn, err := net.Listen("tcp", ln.Addr())
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", ln.Addr(), err)
	}
	b.ln = netLn
	adv := cfg.AdvertisedListeners[0]
	if adv.Port == 0 {
		adv.Port = netLn.Addr().(*net.TCPAddr).Port
	}
	b.advertised = adv
	if err := b.registerSelf(ctx, adv.Host, int32(adv.Port)); err != nil {
		return nil, err
	}

	b.parts, err = partition.NewManager(cfg.LogDirs, b.clock)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.Sync(); err != nil {
		return nil, fmt.Errorf("broker: open partitions: %w", err)
	}

	b.offsets, err = newOffsetsStore(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("broker: consumer offsets: %w", err)
	}
	b.groups = group.NewCoordinator(group.Config{
		InitialRebalanceDelay: time.Duration(cfg.GroupInitialRebalanceDelayMs) * time.Millisecond,
		MinSessionTimeout:     time.Duration(cfg.GroupMinSessionTimeoutMs) * time.Millisecond,
		MaxSessionTimeout:     time.Duration(cfg.GroupMaxSessionTimeoutMs) * time.Millisecond,
		OffsetsRetention:      time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute,
	}, b.offsets, nil)

	h := handler.New(handler.Options{
		NodeID:                 cfg.NodeID,
		Host:                   adv.Host,
		Port:                   int32(adv.Port),
		AutoCreateTopics:       cfg.AutoCreateTopicsEnable,
		FetchSessionCacheSlots: int(cfg.FetchSessionCacheSlots),
	}, b.meta, b.parts, b.groups, b, logger)

	var sh server.Handler = h
	if cfg.MetricsListener != "" {
		m := metrics.New()
		m.Gauge("moldau_partitions", "Partitions hosted by this broker.", func() float64 { return float64(len(b.parts.All())) })
		m.Gauge("moldau_log_bytes", "Bytes of all partition logs on this broker.", func() float64 {
			var n int64
			for _, p := range b.parts.All() {
				n += p.Size()
			}
			return float64(n)
		})
		if b.metrics, err = m.Listen(cfg.MetricsListener, logger); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		sh = m.Instrument(h)
	}

	b.srv = server.New(server.Config{
		Ln:              netLn,
		Listener:        ln.Name,
		MaxRequestBytes: cfg.SocketRequestMaxBytes,
		Logger:          logger,
	}, sh)
	if err := b.srv.Listen(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.wg.Add(3)
	go func() {
		defer b.wg.Done()
		if err := b.srv.Serve(); err != nil {
			b.log.Error("listener stopped", "err", err)
		}
	}()
	go b.followMetadata()
	go b.maintenance()
	if cfg.LogCleanerEnable {
		b.wg.Add(1)
		go b.cleaner()
	}
	ok = true
	return b, nil
}

// Addr is the address the client listener is bound to.
func (b *Broker) Addr() net.Addr { return b.srv.Addr() }

// Advertised is the advertised client listener.
func (b *Broker) Advertised() config.Listener { return b.advertised }

// MetricsAddr is the bound metrics.listener address, nil when metrics are off.
func (b *Broker) MetricsAddr() net.Addr {
	if b.metrics == nil {
		return nil
	}
	return b.metrics.Addr()
}

// Controller exposes the metadata controller (tests, tools).
func (b *Broker) Controller() *metadata.Controller { return b.meta }

// registerSelf records this broker's advertised endpoint in the metadata when it changed.
func (b *Broker) registerSelf(ctx context.Context, host string, port int32) error {
	if have, ok := b.meta.Image().Broker(b.cfg.NodeID); ok && have.Host == host && have.Port == port {
		return nil
	}
	if err := b.meta.RegisterBroker(ctx, metadata.Broker{NodeID: b.cfg.NodeID, Host: host, Port: port}); err != nil {
		return fmt.Errorf("broker: register node %d: %w", b.cfg.NodeID, err)
	}
	return nil
}

// Sync opens the partitions the metadata assigns to this broker, applies changed topic configs,
// and closes and deletes the partitions of topics that no longer exist (including topics deleted
// while this broker was down). It implements handler.Cluster.
func (b *Broker) Sync() error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	im := b.meta.Image()
	var errs []error
	for _, t := range im.Topics() {
		settings, err := b.settingsFor(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range t.Partitions {
			if !hosts(p.Replicas, b.cfg.NodeID) {
				continue
			}
			part, err := b.parts.Ensure(t.Name, p.Partition, settings, p.LeaderEpoch)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if part.Settings() != settings {
				part.UpdateSettings(settings)
			}
		}
	}
	keep := func(topic string, p int32) bool {
		t, ok := im.Topic(topic)
		return ok && int(p) < len(t.Partitions) && hosts(t.Partitions[p].Replicas, b.cfg.NodeID)
	}
	for _, topic := range b.parts.Orphans(keep) {
		if _, ok := im.Topic(topic); ok {
			continue // only some partitions moved away: reassignment is not supported yet
		}
		b.log.Info("deleting partitions of removed topic", "topic", topic)
		if err := b.parts.RemoveTopic(topic); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
			if err := b.Sync(); err != nil {
				b.log.Warn("sync partitions with metadata", "err", err)
			}
		}
	}
}

// highWatermarkCheckpointInterval is Kafka's replica.high.watermark.checkpoint.interval.ms.
const highWatermarkCheckpointInterval = 5 * time.Second

// maintenance enforces retention every log.retention.check.interval.ms and checkpoints the high
// watermarks every five seconds.
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
		l, hw := p.Log(), p.HighWatermark()
		if !force && !l.NeedsCleaning(hw) {
			continue
		}
		st, err := l.Clean(hw)
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

// Shutdown stops serving, then flushes and closes every log and the metadata quorum.
func (b *Broker) Shutdown(ctx context.Context) error {
	var errs []error
	if b.srv != nil {
		if err := b.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop listener: %w", err))
		}
	}
	if b.metrics != nil {
		if err := b.metrics.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop metrics listener: %w", err))
		}
	}
	close(b.stop)
	b.wg.Wait()
	if b.groups != nil {
		b.groups.Close()
	}
	if err := b.closeParts(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Broker) closeParts() error {
	var errs []error
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
