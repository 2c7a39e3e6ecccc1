package broker

// The broker's side of Kafka's broker lifecycle (the controller's is metadata/lifecycle.go):
// register an incarnation with every advertised listener, heartbeat every
// broker.heartbeat.interval.ms with the metadata offset applied here, re-register when the
// controller no longer knows the epoch, and on shutdown ask for a controlled shutdown, so the
// controller moves this broker's leaderships away before it stops serving.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/metadata"
)

// quorumWaitLog is how often start-up says it is still waiting for the metadata quorum.
const quorumWaitLog = 10 * time.Second

// registerWithQuorum registers this broker, retrying while the metadata quorum has no leader
// (the other voters are not up yet), until ctx ends. A cluster's first node waits here for a
// majority of controller.quorum.voters, as a Kafka node does.
func (b *Broker) registerWithQuorum(ctx context.Context) error {
	lastLog := time.Now()
	for {
		var err error
		if b.meta.Image().ClusterID() == "" && b.cfg.IsController {
			// The first leader writes the cluster id; a registration carries it. A broker-only
			// node gets the metadata log only once registered (the leader adds it as a raft
			// non-voter then): it registers without one.
			err = fmt.Errorf("%w: the cluster id is not known yet", metadata.ErrNotController)
		} else {
			err = b.registerSelf(ctx)
		}
		// DUPLICATE_BROKER_REGISTRATION: this node restarted while the controller still holds
		// the session of its previous process; it is fenced within broker.session.timeout.ms.
		if err == nil || !errors.Is(err, metadata.ErrNotController) && !isTimeout(err) && !errors.Is(err, kerr.DuplicateBrokerRegistration) {
			return err
		}
		if time.Since(lastLog) >= quorumWaitLog {
			b.log.Info("waiting for the metadata quorum: no controller has been elected yet; a majority of controller.quorum.voters must be running",
				"voters", len(b.cfg.ControllerQuorumVoters), "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker: start: waiting for the metadata quorum: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endpoints are this broker's advertised listeners as its registration carries them: Metadata
// on another broker answers a client with this broker's endpoint of the listener the client
// came in on.
func (b *Broker) endpoints() []metadata.Endpoint {
	out := make([]metadata.Endpoint, 0, len(b.listeners))
	for _, l := range b.listeners {
		out = append(out, metadata.Endpoint{Name: l.advertised.Name, Host: l.advertised.Host,
			Port: int32(l.advertised.Port), SecurityProtocol: securityProtocolPlaintext})
	}
	return out
}

// securityProtocolPlaintext is Kafka's SecurityProtocol id of PLAINTEXT, the only one served.
const securityProtocolPlaintext = 0

// registerSelf registers this process as a new incarnation of the broker (a fresh random
// incarnation id per start, so the controller gives it a new broker epoch; a retry reuses it)
// and heartbeats once so that it is unfenced before it serves.
func (b *Broker) registerSelf(ctx context.Context) error {
	if b.incarnation == (metadata.UUID{}) {
		b.incarnation = metadata.RandomUUID()
	}
	// meta.properties first (with the cluster id the quorum holds), so that the registration
	// carries the log dirs' directory ids.
	if err := b.storage.recordClusterID(b.meta.Image().ClusterID()); err != nil {
		return err
	}
	epoch, err := b.meta.RegisterBroker(ctx, metadata.BrokerRegistration{
		NodeID:              b.cfg.NodeID,
		ClusterID:           b.meta.Image().ClusterID(),
		IncarnationID:       b.incarnation,
		Endpoints:           b.endpoints(),
		Rack:                b.cfg.Rack,
		LogDirs:             b.storage.directoryIDs(),
		PreviousBrokerEpoch: -1,
		Features:            metadata.SupportedFeatures(),
	})
	if err != nil {
		return fmt.Errorf("broker: register node %d: %w", b.cfg.NodeID, err)
	}
	b.brokerEpoch.Store(epoch)
	// As Kafka's BrokerLifecycleManager: heartbeat often until the controller unfences this
	// broker (it has caught up with the metadata log), and only then serve.
	for {
		res, err := b.heartbeat(ctx, false)
		if err != nil {
			return fmt.Errorf("broker: first heartbeat of node %d: %w", b.cfg.NodeID, err)
		}
		if !res.IsFenced {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker: node %d still fenced by the controller: %w", b.cfg.NodeID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// heartbeatInterval is broker.heartbeat.interval.ms.
func (b *Broker) heartbeatInterval() time.Duration {
	if b.cfg.BrokerHeartbeatIntervalMs <= 0 {
		return 2 * time.Second
	}
	return time.Duration(b.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
}

// heartbeat sends one broker heartbeat with the index of the applied metadata image.
// The time of its answer is kept for Ready.
func (b *Broker) heartbeat(ctx context.Context, wantShutdown bool) (metadata.HeartbeatResult, error) {
	res, err := b.meta.BrokerHeartbeat(ctx, metadata.Heartbeat{
		NodeID:         b.cfg.NodeID,
		Epoch:          b.brokerEpoch.Load(),
		MetadataOffset: b.meta.Image().Index(),
		WantShutdown:   wantShutdown,
	})
	if err == nil {
		b.http.lastHeartbeat.Store(time.Now().UnixNano())
	}
	return res, err
}

// heartbeats keeps this broker's controller session alive. When the controller no longer knows
// this broker's epoch (a registration was lost with a controller that failed before committing
// it, or the broker was replaced), it registers again.
func (b *Broker) heartbeats() {
	defer b.wg.Done()
	t := time.NewTicker(b.heartbeatInterval())
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.shuttingDown:
			return // controlledShutdown heartbeats from now on
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), b.heartbeatInterval())
			_, err := b.heartbeat(ctx, false)
			switch {
			case errors.Is(err, kerr.StaleBrokerEpoch):
				b.log.Warn("the controller does not know this broker's epoch: registering again", "epoch", b.brokerEpoch.Load())
				err = b.registerSelf(ctx)
			case err == nil && b.registeredWithoutFeatures():
				// A controller of an older build registered this broker and dropped its feature
				// levels; until the registration has them the cluster cannot finalize
				// metadata.version. The same incarnation again amends it once a controller of
				// this build leads (an older one answers without a change).
				err = b.registerSelf(ctx)
			}
			cancel()
			if err != nil && !errors.Is(err, metadata.ErrNotController) && !errors.Is(err, metadata.ErrClosed) && !isTimeout(err) {
				b.log.Warn("broker heartbeat", "err", err)
			}
		}
	}
}

// registeredWithoutFeatures reports whether this broker's current registration in the image
// lacks the feature levels it registered with (an older build's controller wrote it).
func (b *Broker) registeredWithoutFeatures() bool {
	reg, ok := b.meta.Image().Broker(b.cfg.NodeID)
	return ok && reg.Epoch == b.brokerEpoch.Load() && reg.Features == nil
}

// controlledShutdown asks the controller, heartbeat by heartbeat, to move this broker's
// leaderships away (controlled.shutdown.enable) and returns once it answers that the broker may
// stop. It gives up after broker.session.timeout.ms or half of what is left of ctx, whichever
// is shorter (the last node of a cluster has no quorum to ask): the other brokers then take over
// once the session expires, as after a crash, and the rest of the shutdown still has time.
func (b *Broker) controlledShutdown(ctx context.Context) {
	if !b.cfg.ControlledShutdownEnable || !b.clustered() || b.brokerEpoch.Load() == 0 {
		return
	}
	close(b.shuttingDown)
	budget := time.Duration(b.cfg.BrokerSessionTimeoutMs) * time.Millisecond
	if d, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(d)/2)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, b.heartbeatInterval())
		res, err := b.heartbeat(hctx, true)
		cancel()
		switch {
		case err == nil && res.ShouldShutdown:
			b.log.Info("controlled shutdown: the controller moved this broker's leaderships away")
			return
		case err != nil && !errors.Is(err, metadata.ErrNotController) && !isTimeout(err):
			b.log.Warn("controlled shutdown heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			b.log.Warn("controlled shutdown did not finish in time: the other brokers take over this broker's partitions after broker.session.timeout.ms")
			return
		case <-t.C:
		}
	}
}
