package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metrics"
	"github.com/moldau/moldau/internal/replica"
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

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kerr.RequestTimedOut)
}

// syncCoordinators makes the group coordinator serve exactly the __consumer_offsets partitions
// this broker leads and hosts: it loads a partition on becoming its leader and drops its groups
// on losing it. REQUIRES: b.syncMu held, or Start before serving.
func (b *Broker) syncCoordinators() {
	b.syncTxnCoordinator()
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

// interBrokerListener is the listener other brokers reach this one on (inter.broker.listener.name,
// else the first).
func (b *Broker) interBrokerListener() *clientListener {
	for _, l := range b.listeners {
		if l.bind.Name == b.cfg.InterBrokerListener {
			return l
		}
	}
	return b.listeners[0]
}

// interBrokerAddr is broker id's address on the inter-broker listener (its host and port when
// it registered none by that name): where follower fetches and the coordinators' requests go.
func (b *Broker) interBrokerAddr(id int32) (string, bool) {
	listener := b.interBrokerListener().bind.Name
	br, ok := b.meta.Image().Broker(id)
	if !ok {
		return "", false
	}
	for _, e := range br.Endpoints {
		if e.Name == listener {
			return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))), true
		}
	}
	return net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), true
}

// replicaConfig configures the replica manager: follower fetches go to the leader's
// inter-broker listener, ISR changes to the controller (forwarded), the leaders check the
// broker epochs of the active brokers (KIP-903).
func (b *Broker) replicaConfig(m *metrics.Metrics) replica.Config {
	return replica.Config{
		NodeID:         b.cfg.NodeID,
		Parts:          b.parts,
		Settings:       b.settingsFor,
		BrokerAddr:     b.interBrokerAddr,
		AlterPartition: b.alterPartition,
		BrokerEpoch:    b.brokerEpoch.Load,
		EligibleBrokers: func(im *metadata.Image) map[int32]int64 {
			out := map[int32]int64{}
			for _, br := range im.Brokers() {
				if br.Active() {
					out[br.NodeID] = br.Epoch
				}
			}
			return out
		},
		Logger:                b.log,
		ReplicaLagTimeMax:     time.Duration(b.cfg.ReplicaLagTimeMaxMs) * time.Millisecond,
		FetchWaitMax:          time.Duration(b.cfg.ReplicaFetchWaitMaxMs) * time.Millisecond,
		FetchBackoff:          time.Duration(b.cfg.ReplicaFetchBackoffMs) * time.Millisecond,
		FetchMaxBytes:         b.cfg.ReplicaFetchMaxBytes,
		FetchResponseMaxBytes: b.cfg.ReplicaFetchResponseMaxBytes,
		FollowerQuota:         b.followerQuota,
		Appended:              m.ReplicationBytesIn,
	}
}

// alterPartition sends a leader's ISR changes to the controller (AlterPartition, with the broker
// epochs its followers fetched with). The replica manager's contract (replica.Config): an error
// wrapping OPERATION_NOT_ATTEMPTED means no change was applied, so the changes are proposed anew
// from the next image; any other error leaves them pending, to be sent again. The controller's
// refusals are definite (the whole request refused with STALE_BROKER_EPOCH, or every partition
// refused): not attempted. A request whose outcome is unknown (no answer) and a mixed answer are
// plain errors: sending again is safe, an applied change is then refused as stale.
func (b *Broker) alterPartition(ctx context.Context, updates []replica.ISRUpdate) error {
	items := make([]metadata.AlterPartitionItem, len(updates))
	for i, u := range updates {
		it := metadata.AlterPartitionItem{TopicID: u.TopicID, Partition: u.Partition, LeaderEpoch: u.LeaderEpoch,
			PartitionEpoch: u.PartitionEpoch}
		for j, id := range u.NewISR {
			epoch := int64(-1)
			if j < len(u.NewISRBrokerEpochs) {
				epoch = u.NewISRBrokerEpochs[j]
			}
			it.NewISR = append(it.NewISR, metadata.ISRMember{BrokerID: id, BrokerEpoch: epoch})
		}
		items[i] = it
	}
	// The committed ISR each change starts from: a smaller proposal is a shrink, a larger one an
	// expansion (ProposeISR makes one or the other), counted when the controller commits it.
	im := b.meta.Image()
	from := make([]int, len(updates))
	for i, u := range updates {
		from[i] = -1
		if t, ok := im.TopicByID(u.TopicID); ok && int(u.Partition) < len(t.Partitions) {
			from[i] = len(t.Partitions[u.Partition].ISR)
		}
	}
	results, err := b.meta.AlterPartition(ctx, b.cfg.NodeID, b.brokerEpoch.Load(), items)
	if errors.Is(err, kerr.StaleBrokerEpoch) {
		return fmt.Errorf("%w: %w", kerr.OperationNotAttempted, err)
	}
	if err != nil {
		return err
	}
	var errs []error
	refused := 0
	for i, r := range results {
		if r.Err == nil && from[i] >= 0 {
			switch n := len(updates[i].NewISR); {
			case n < from[i]:
				b.isrShrinks.Add(1)
			case n > from[i]:
				b.isrExpands.Add(1)
			}
		}
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s-%d: %w", updates[i].Topic, updates[i].Partition, r.Err))
			// NEW_LEADER_ELECTED is not a refusal: the change committed and completed a
			// reassignment that moved the leadership. It stays pending (the high watermark
			// waits for the ISR it proposed) until the image with it arrives.
			if !errors.Is(r.Err, kerr.NewLeaderElected) {
				refused++
			}
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case refused == len(results):
		return fmt.Errorf("%w: the controller refused every change: %w", kerr.OperationNotAttempted, errors.Join(errs...))
	}
	return errors.Join(errs...)
}
