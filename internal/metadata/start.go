package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/moldau/moldau/internal/raftstore"
	"github.com/moldau/moldau/internal/vfs"
)

// Config configures the metadata controller and its raft node.
type Config struct {
	NodeID int32
	// RaftDir is the raft data directory, e.g. <first log dir>/__raft.
	RaftDir string
	// RaftFS holds the raft snapshots (nil: vfs.Default); see raftstore.Config.FS.
	RaftFS vfs.FS
	// RaftMux carries the raft transport on the CONTROLLER listener, shared with the Kafka
	// protocol the controller APIs (and forwarded writes) arrive by. Nil: RaftBindAddr.
	RaftMux *raftstore.Mux
	// RaftListenerName names the listener whose endpoint, in the registration of a broker that
	// is not a voter, is that broker's raft address: the leader adds it as a raft non-voter
	// there (inter.broker.listener.name).
	RaftListenerName string
	// RaftBindAddr / RaftAdvertiseAddr: TCP transport; empty bind address (and no RaftMux) =
	// in-memory transport (single node, no extra port).
	RaftBindAddr      string
	RaftAdvertiseAddr string
	// Voters: node id -> raft address. Empty or only this node: single-voter cluster.
	Voters map[int32]string
	// ClusterID, if set, is written on first boot (and must match afterwards); otherwise a
	// random one is generated.
	ClusterID string

	NumPartitions            int32 // num.partitions, default 1
	DefaultReplicationFactor int16 // default.replication.factor, default 1
	// ValidateTopicConfig / ValidateBrokerConfig check one config key and value (the config
	// package owns their semantics); nil accepts everything. Errors are wrapped as
	// ErrInvalidConfig naming the key.
	ValidateTopicConfig  func(key, value string) error
	ValidateBrokerConfig func(key, value string) error

	// SessionTimeout is broker.session.timeout.ms: a broker that has not heartbeated for
	// longer is fenced by the active controller. Default 9s.
	SessionTimeout time.Duration
	// HeartbeatInterval is broker.heartbeat.interval.ms (default 2s): a broker whose heartbeat
	// is this late is probed (probe.go) and fenced at once if its process is gone.
	HeartbeatInterval time.Duration
	// Probe reports whether nothing listens at addr any more (the connection was refused):
	// the broker's process is gone. Default: a TCP dial with a short timeout. Tests fake it.
	Probe func(addr string) bool
	// MinInSyncReplicas and UncleanLeaderElection are the static broker defaults of
	// min.insync.replicas (default 1) and unclean.leader.election.enable (default false);
	// topic configs and the cluster-wide dynamic broker configs override them.
	MinInSyncReplicas     int
	UncleanLeaderElection bool
	// Now is the controller's clock for broker sessions (default time.Now).
	Now func() time.Time

	// LeaderBalance is the active controller's leader balance (balance.go).
	LeaderBalance LeaderBalance

	ApplyTimeout  time.Duration // bound on one commit, default 10s
	LeaderTimeout time.Duration // bound on waiting for leadership at start, default 30s

	// Raft snapshot tuning (raftstore defaults when zero).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	LogOutput io.Writer // hashicorp/raft logs (WARN unless Debug), default os.Stderr
	// RaftLogger, when set, receives hashicorp/raft's logs instead of LogOutput (raftstore.Config.Logger).
	RaftLogger *slog.Logger
	Debug      bool
	// Logger hears what the active controller decides on its own (a dead broker fenced early);
	// nil discards it.
	Logger *slog.Logger
	// ErrorLog receives errors of background work (e.g. writing the cluster id after an
	// election); nil drops them.
	ErrorLog func(error)
}

func (cfg *Config) setDefaults() {
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = 1
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = 1
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Probe == nil {
		cfg.Probe = refusesConnections
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 9 * time.Second
	}
	if cfg.MinInSyncReplicas <= 0 {
		cfg.MinInSyncReplicas = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	if cfg.LeaderTimeout <= 0 {
		cfg.LeaderTimeout = 30 * time.Second
	}
}

// Start opens the raft node in cfg.RaftDir with a fresh FSM (state comes back from the
// latest snapshot plus the log), waits for leadership when this is a single voter, and
// writes the cluster id on first boot.
func Start(ctx context.Context, cfg Config) (*Controller, error) {
	cfg.setDefaults()
	if cfg.RaftDir == "" {
		return nil, errors.New("metadata: no raft dir")
	}
	fsm := NewFSM()
	fsm.log = cfg.Logger
	node, err := raftstore.Open(raftstore.Config{
		NodeID:            cfg.NodeID,
		Dir:               cfg.RaftDir,
		FS:                cfg.RaftFS,
		Mux:               cfg.RaftMux,
		BindAddr:          cfg.RaftBindAddr,
		AdvertiseAddr:     cfg.RaftAdvertiseAddr,
		Voters:            cfg.Voters,
		SnapshotThreshold: cfg.SnapshotThreshold,
		SnapshotInterval:  cfg.SnapshotInterval,
		TrailingLogs:      cfg.TrailingLogs,
		LeaderTimeout:     cfg.LeaderTimeout,
		LogOutput:         cfg.LogOutput,
		Logger:            cfg.RaftLogger,
		Debug:             cfg.Debug,
	}, fsm)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	c := newController(cfg, fsm, &raftCommitter{node: node})
	if !singleVoter(cfg.NodeID, cfg.Voters) {
		c.fwd = newForwarder()
	}
	leaderCh := node.LeaderCh()
	if node.IsLeader() {
		c.mu.Lock()
		c.gainedLeadershipLocked(c.cfg.Now())
		c.mu.Unlock()
		if err := c.ensureClusterID(ctx, cfg.ClusterID); err != nil {
			node.Close()
			return nil, err
		}
	}
	c.wg.Go(func() { c.watchLeadership(leaderCh, node) })
	c.wg.Go(func() { c.sessionLoop(node.Done()) })
	c.startBalancer(node.Done())
	return c, nil
}

// singleVoter reports whether voters is empty or only this node: then this node is always the
// raft leader and nothing is forwarded.
func singleVoter(self int32, voters map[int32]string) bool {
	if len(voters) == 0 {
		return true
	}
	_, ok := voters[self]
	return ok && len(voters) == 1
}

// watchLeadership runs while the node is open. When this node becomes the raft leader it
// holds c.mu until every entry committed by earlier leaders is applied (so validation sees
// the latest image), then writes the cluster id if no leader has yet.
func (c *Controller) watchLeadership(leaderCh <-chan bool, node *raftstore.Node) {
	for {
		select {
		case <-node.Done():
			return
		case isLeader := <-leaderCh:
			if !isLeader {
				c.mu.Lock()
				c.lostLeadershipLocked()
				c.mu.Unlock()
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LeaderTimeout)
			c.mu.Lock()
			err := node.WaitLeader(ctx)
			if err == nil {
				c.gainedLeadershipLocked(c.cfg.Now())
				err = c.ensureClusterIDLocked(ctx, c.cfg.ClusterID)
				if err == nil {
					err = c.ensureMetadataVersionLocked(ctx)
				}
			}
			c.mu.Unlock()
			cancel()
			if err != nil && !errors.Is(err, ErrNotController) && !errors.Is(err, raftstore.ErrNotLeader) &&
				!errors.Is(err, raftstore.ErrClosed) && !errors.Is(err, ErrClosed) {
				c.reportError(fmt.Errorf("metadata: on gaining leadership: %w", err))
			}
		}
	}
}

// Node returns the raft node behind the controller (nil for a controller without raft).
func (c *Controller) Node() *raftstore.Node {
	if rc, ok := c.log.(*raftCommitter); ok {
		return rc.node
	}
	return nil
}

type raftCommitter struct{ node *raftstore.Node }

func (r *raftCommitter) commit(ctx context.Context, data []byte) (any, error) {
	resp, err := r.node.Apply(ctx, data)
	switch {
	case errors.Is(err, raftstore.ErrNotLeader):
		return nil, fmt.Errorf("%w: %w", ErrNotController, err)
	case errors.Is(err, raftstore.ErrClosed):
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return resp, err
}

func (r *raftCommitter) leader() (int32, bool) {
	id, _, ok := r.node.Leader()
	return id, ok
}

func (r *raftCommitter) close() error { return r.node.Close() }

func (r *raftCommitter) leaderAddr() (int32, string, bool) { return r.node.Leader() }

func (r *raftCommitter) commandAtOrBefore(index uint64) (uint64, bool) {
	return r.node.CommandAtOrBefore(index)
}

// QuorumState is the metadata quorum as one node sees it.
type QuorumState = raftstore.QuorumState

// Quorum reports the metadata quorum's state as this node sees it (DescribeQuorum). A
// controller without raft reports itself as the only voter and leader.
func (c *Controller) Quorum() (QuorumState, error) {
	if n := c.Node(); n != nil {
		st, err := n.Quorum()
		if err == nil && st.LeaderID == c.cfg.NodeID {
			st.Progress = c.quorumProgress(st.LastIndex)
		}
		return st, err
	}
	idx := c.Image().Index()
	return QuorumState{LeaderID: c.cfg.NodeID, Term: 1, CommitIndex: idx, LastIndex: idx, Voters: []int32{c.cfg.NodeID}}, nil
}

// quorumProgress is each replica's metadata offset as its broker's last heartbeat reported it
// (the active controller's sessions): a replica that had applied the leader's latest state
// change counts as at the leader's log end (the entries after it change no state). This node is
// at lastIndex now.
func (c *Controller) quorumProgress(lastIndex uint64) map[int32]raftstore.ReplicaProgress {
	now := c.cfg.Now()
	applied := int64(c.Image().Index())
	out := map[int32]raftstore.ReplicaProgress{c.cfg.NodeID: {LogEndOffset: int64(lastIndex), LastFetch: now, CaughtUp: true}}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, s := range c.sessions {
		if id == c.cfg.NodeID || s.offset < 0 || s.unheard {
			continue
		}
		p := raftstore.ReplicaProgress{LogEndOffset: s.offset, LastFetch: s.lastSeen}
		if s.offset >= applied {
			p.LogEndOffset, p.CaughtUp = max(s.offset, int64(lastIndex)), true
		}
		out[id] = p
	}
	return out
}
