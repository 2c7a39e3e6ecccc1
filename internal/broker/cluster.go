package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

// controllerHandler serves the CONTROLLER listener: the same handler, with every request marked
// as forwarded so the metadata controller runs it here or answers NOT_CONTROLLER, never forwards
// it again.
type controllerHandler struct{ server.Handler }

func (c controllerHandler) Handle(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	return c.Handler.Handle(metadata.Forwarded(ctx), req)
}

// controllerListenerName is the name requests on the CONTROLLER listener carry.
func controllerListenerName(cfg *config.Config) string {
	if len(cfg.ControllerListenerNames) > 0 {
		return cfg.ControllerListenerNames[0]
	}
	return "CONTROLLER"
}

// raftAdvertiseAddr is the address other voters dial this node at: its own entry in
// controller.quorum.voters, else the controller listener as advertised.
func raftAdvertiseAddr(cfg *config.Config) string {
	for _, v := range cfg.ControllerQuorumVoters {
		if v.ID == cfg.NodeID {
			return v.Addr()
		}
	}
	if cfg.ControllerAdvertisedListener != "" {
		return cfg.ControllerAdvertisedListener
	}
	return cfg.ControllerListener
}

// clustered reports whether this node is part of a cluster, not a node started alone.
func (b *Broker) clustered() bool { return !b.cfg.Standalone() }

// quorumWaitLog is how often start-up says it is still waiting for the metadata quorum.
const quorumWaitLog = 10 * time.Second

// registerWithQuorum registers this broker, retrying while the metadata quorum has no leader
// (the other voters are not up yet), until ctx ends. A cluster's first node waits here for a
// majority of controller.quorum.voters, as a Kafka node does.
func (b *Broker) registerWithQuorum(ctx context.Context, host string, port int32) error {
	lastLog := time.Now()
	for {
		var err error
		if b.meta.Image().ClusterID() == "" {
			// The first leader writes the cluster id; a registration carries it.
			err = fmt.Errorf("%w: the cluster id is not known yet", metadata.ErrNotController)
		} else {
			err = b.registerSelf(ctx, host, port)
		}
		if err == nil || !errors.Is(err, metadata.ErrNotController) && !isTimeout(err) {
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

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kerr.RequestTimedOut)
}

// syncCoordinators makes the group coordinator serve exactly the __consumer_offsets partitions
// this broker leads and hosts: it loads a partition on becoming its leader and drops its groups
// on losing it. REQUIRES: b.syncMu held, or Start before serving.
func (b *Broker) syncCoordinators() {
	if b.groups == nil {
		return // Start has not built the coordinator yet; it calls this once it has
	}
	t, ok := b.meta.Image().Topic(metadata.ConsumerOffsetsTopic)
	if !ok {
		return
	}
	for _, p := range t.Partitions {
		if p.Leader == b.cfg.NodeID && b.parts.Get(t.Name, p.Partition) != nil {
			if err := b.groups.Elect(p.Partition); err != nil {
				b.log.Warn("group coordinator: load partition", "partition", p.Partition, "err", err)
			}
			continue
		}
		b.groups.Resign(p.Partition)
	}
}
