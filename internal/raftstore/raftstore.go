// Package raftstore is Moldau's glue to hashicorp/raft: it opens the log and stable store
// (hashicorp/raft-wal, in Dir/wal), the snapshot store (snapshot.go) and a transport,
// bootstraps the cluster once, and exposes a small Node API (Apply with a context, leadership,
// snapshots, Close).
//
// The FSM itself lives in internal/metadata; raftstore knows nothing about what the log holds.
//
// Files: every file of the raft store goes through Config.FS (the filesystem seam, package
// vfs): the WAL's segment files (walFS, raft-wal's pluggable VFS), its meta store
// (wal-meta.json, walMeta, instead of raft-wal's default bbolt file) and the snapshots. So
// disk faults in tests reach the raft store and a vfs.MemFS can hold it, power loss included.
//
// Migration: a data dir written before raft-wal has Dir/raft.db (raft-boltdb). Open copies
// its logs and stable keys into a new WAL once and renames it raft.db.migrated (migrate.go);
// that one read of the old file is bolt's own I/O on the OS filesystem.
package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/moldau/moldau/internal/vfs"
)

var (
	// ErrNotLeader is returned by Apply when this node is not (or stopped being) the raft
	// leader. When leadership is lost mid-commit the entry may still commit later.
	ErrNotLeader = errors.New("raftstore: not the raft leader")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("raftstore: closed")
	// ErrNoLeader is returned by WaitLeader when no leadership was won before the deadline.
	ErrNoLeader = errors.New("raftstore: no leader elected")
)

// Config configures a raft node. Zero values get the defaults noted on each field.
type Config struct {
	// NodeID is this node's id (Kafka's node.id); the raft server id is its decimal form.
	NodeID int32
	// Dir holds wal/ (the raft log and stable store) and snapshots/. Created if missing.
	Dir string
	// FS holds Dir: every file of the raft store is read and written through it (nil:
	// vfs.Default).
	FS vfs.FS
	// WALSegmentSize is the size at which a WAL segment file is sealed and a new one started
	// (default raft-wal's, 64 MiB; files are not preallocated, so a segment takes only the
	// bytes written to it).
	WALSegmentSize int
	// Mux, when set, carries the raft transport on a listener shared with the Kafka protocol
	// (the CONTROLLER listener); BindAddr is then ignored. Close does not close the Mux's
	// Kafka side.
	Mux *Mux
	// BindAddr is the host:port the TCP transport listens on. Empty (and no Mux): in-memory
	// transport (single node, no extra port).
	BindAddr string
	// AdvertiseAddr is the address other voters dial; defaults to BindAddr.
	AdvertiseAddr string
	// Voters maps node id to raft address (host:port) of the initial voter set. Empty, or
	// only this node: a single-voter cluster is bootstrapped. Used on first start only.
	Voters map[int32]string

	// SnapshotThreshold: snapshot when this many entries were applied since the last one
	// (default 1024). SnapshotInterval: how often raft checks the threshold (default 30s).
	// TrailingLogs: entries kept after a snapshot for slow followers (default 1024).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots are kept on disk (default 2).
	SnapshotRetain int

	// HeartbeatTimeout and ElectionTimeout default to 50ms for a single voter (fast
	// start-up, nothing to disagree with) and to raft's defaults (1s) otherwise.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderTimeout bounds Open's wait for leadership of a single voter (default 30s).
	LeaderTimeout time.Duration

	// Logger, when set, receives hashicorp's logs (as component=raft, raft.wal, ...), at WARN
	// and above unless Debug and within the logger's own level. Otherwise LogOutput receives
	// them in hclog's format (default os.Stderr).
	Logger    *slog.Logger
	LogOutput io.Writer
	Debug     bool
}

// hclog is the logger hashicorp's code gets: through cfg.Logger when set, else hclog's own
// format on cfg.LogOutput.
func (cfg *Config) hclog(name string, level hclog.Level) hclog.Logger {
	if cfg.Logger != nil {
		return newSlogLogger(cfg.Logger, name, level)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: cfg.LogOutput})
}

// Node is an open raft node.
type Node struct {
	cfg    Config
	raft   *raft.Raft
	store  *wal.WAL
	snaps  *snapshotStore
	trans  raft.Transport
	logger hclog.Logger
	single bool

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// ServerID is the raft server id of a node id.
func ServerID(nodeID int32) raft.ServerID {
	return raft.ServerID(strconv.FormatInt(int64(nodeID), 10))
}

func (cfg *Config) setDefaults() {
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 1024
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = 30 * time.Second
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = 1024
	}
	if cfg.SnapshotRetain <= 0 {
		cfg.SnapshotRetain = 2
	}
	if cfg.LeaderTimeout <= 0 {
		cfg.LeaderTimeout = 30 * time.Second
	}
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
}

// singleVoter reports whether the configured voter set is just this node.
func (cfg *Config) singleVoter() bool {
	if len(cfg.Voters) == 0 {
		return true
	}
	_, self := cfg.Voters[cfg.NodeID]
	return len(cfg.Voters) == 1 && self
}

// Open opens (or creates) the raft node in cfg.Dir with fsm as its state machine. On first
// start it bootstraps the configured voters (only once: existing state is never
// re-bootstrapped). For a single voter it waits until this node is leader and every
// committed entry has been applied to fsm.
func Open(cfg Config, fsm raft.FSM) (*Node, error) {
	cfg.setDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("raftstore: no directory")
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if err := mkdirDurable(cfg.FS, cfg.Dir); err != nil {
		return nil, fmt.Errorf("raftstore: create dir: %w", err)
	}
	// A single voter elects itself at every start, which hashicorp/raft reports as a WARN
	// ("heartbeat timeout reached"): expected, so only errors are shown there.
	level := hclog.Warn
	if cfg.singleVoter() {
		level = hclog.Error
	}
	if cfg.Debug {
		level = hclog.Debug
	}
	logger := cfg.hclog("raft", level)

	n := &Node{cfg: cfg, logger: logger, single: cfg.singleVoter(), closed: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.closeResources()
		}
	}()

	var err error
	walDir := filepath.Join(cfg.Dir, walDirName)
	if err := migrateBolt(cfg, walDir, cfg.hclog("raft", hclog.Info)); err != nil {
		return nil, err
	}
	n.store, err = openWAL(cfg.FS, walDir, cfg.WALSegmentSize, logger.Named("wal"))
	if err != nil {
		return nil, err
	}
	n.snaps, err = newSnapshotStore(cfg.FS, cfg.Dir, cfg.SnapshotRetain, logger.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("raftstore: open snapshot store: %w", err)
	}
	switch {
	case cfg.Mux != nil:
		var adv net.Addr
		if cfg.AdvertiseAddr != "" {
			adv, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
			if err != nil {
				return nil, fmt.Errorf("raftstore: advertise address %q: %w", cfg.AdvertiseAddr, err)
			}
		}
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  cfg.Mux.RaftLayer(adv),
			MaxPool: 3,
			Timeout: 10 * time.Second,
			Logger:  logger.Named("transport"),
		})
	case cfg.BindAddr == "":
		_, n.trans = raft.NewInmemTransport(raft.ServerAddress("inmem:" + string(ServerID(cfg.NodeID))))
	default:
		var adv net.Addr
		if cfg.AdvertiseAddr != "" {
			adv, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
			if err != nil {
				return nil, fmt.Errorf("raftstore: advertise address %q: %w", cfg.AdvertiseAddr, err)
			}
		}
		n.trans, err = raft.NewTCPTransportWithLogger(cfg.BindAddr, adv, 3, 10*time.Second, logger.Named("transport"))
		if err != nil {
			return nil, fmt.Errorf("raftstore: listen %s: %w", cfg.BindAddr, err)
		}
	}

	rc := raft.DefaultConfig()
	rc.LocalID = ServerID(cfg.NodeID)
	rc.Logger = logger
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	if n.single {
		// A lone voter has no one to hear from: it waits one random timeout (between 1x and 2x
		// HeartbeatTimeout) at every start before electing itself, which is most of a cold start.
		rc.HeartbeatTimeout = 50 * time.Millisecond
		rc.ElectionTimeout = 50 * time.Millisecond
		rc.LeaderLeaseTimeout = 25 * time.Millisecond
	}
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
		rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, cfg.HeartbeatTimeout)
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}

	logs, err := raft.NewLogCache(512, n.store)
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	hasState, err := raft.HasExistingState(logs, n.store, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: check existing state: %w", err)
	}
	if !hasState {
		if err := n.bootstrap(rc, logs); err != nil {
			return nil, err
		}
	}

	n.raft, err = raft.NewRaft(rc, fsm, logs, n.store, n.snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	if n.single {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.LeaderTimeout)
		defer cancel()
		if err := n.WaitLeader(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return n, nil
}

// bootstrap writes the initial configuration. Only called when there is no existing state.
// A node that is not among the voters does not bootstrap (it waits to be added).
func (n *Node) bootstrap(rc *raft.Config, logs raft.LogStore) error {
	var servers []raft.Server
	if n.single {
		servers = []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr()}}
	} else {
		if _, self := n.cfg.Voters[n.cfg.NodeID]; !self {
			return nil
		}
		for id, addr := range n.cfg.Voters {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: ServerID(id), Address: raft.ServerAddress(addr)})
		}
	}
	err := raft.BootstrapCluster(rc, logs, n.store, n.snaps, n.trans, raft.Configuration{Servers: servers})
	if err != nil {
		return fmt.Errorf("raftstore: bootstrap: %w", err)
	}
	return nil
}

// WaitLeader blocks until this node is the leader and a barrier has been applied, i.e.
// every entry committed before it is reflected in the FSM.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.raft.State() != raft.Leader {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: node %d: %w", ErrNoLeader, n.cfg.NodeID, ctx.Err())
		case <-n.closed:
			return ErrClosed
		case <-t.C:
		}
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return mapErr(err)
	}
	return nil
}

// Apply commits cmd to the raft log and returns the FSM's response for it. It waits until the
// entry is applied on this node or ctx is done (the entry may then still commit).
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	select {
	case <-n.closed:
		return nil, ErrClosed
	default:
	}
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	enqueue := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		enqueue = max(time.Until(d), time.Millisecond)
	}
	f := n.raft.Apply(cmd, enqueue)
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // always resolves: commit, lost leadership or shutdown
	select {
	case err := <-done:
		if err != nil {
			return nil, mapErr(err)
		}
		return f.Response(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("raftstore: apply: %w", ctx.Err())
	}
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("raftstore: %w", err)
}

// LeaderCh delivers true when this node gains leadership and false when it loses it (raft's
// LeaderCh: one consumer only, values may be dropped if not read).
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// Done is closed by Close.
func (n *Node) Done() <-chan struct{} { return n.closed }

// IsLeader reports whether this node currently believes it is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's node id and raft address, if one is known.
func (n *Node) Leader() (nodeID int32, addr string, ok bool) {
	a, id := n.raft.LeaderWithID()
	if id == "" {
		return -1, "", false
	}
	v, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1, string(a), false
	}
	return int32(v), string(a), true
}

// Snapshot takes a snapshot now (raft also takes them by threshold).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raftstore: snapshot: %w", err)
	}
	return nil
}

// Snapshots lists the snapshots on disk, newest first.
func (n *Node) Snapshots() ([]*raft.SnapshotMeta, error) { return n.snaps.List() }

// FirstIndex is the first index still in the log store (grows as snapshots compact the log).
func (n *Node) FirstIndex() (uint64, error) { return n.store.FirstIndex() }

// Raft exposes the underlying raft (membership changes, stats).
func (n *Node) Raft() *raft.Raft { return n.raft }

// Close shuts raft down and closes the transport and stores; a leader with other voters hands
// its leadership over first. Idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		if n.raft != nil && !n.single && n.raft.State() == raft.Leader {
			// Hand leadership to a caught-up voter first: the others have a leader again
			// within a round trip instead of an election timeout. Best effort.
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.logger.Warn("leadership transfer before shutdown failed; the other voters elect after their timeout", "error", err)
			}
		}
		if n.raft != nil {
			if err := n.raft.Shutdown().Error(); err != nil {
				n.closeErr = fmt.Errorf("raftstore: shutdown: %w", err)
			}
		}
		if err := n.closeResources(); err != nil && n.closeErr == nil {
			n.closeErr = err
		}
	})
	return n.closeErr
}

func (n *Node) closeResources() error {
	var errs []error
	if c, ok := n.trans.(io.Closer); ok && c != nil {
		errs = append(errs, c.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// CommandAtOrBefore is the index of the last command entry (what reaches the FSM's Apply) at or
// before index, once this node's raft has handed index to the FSM; ok is false before that.
// Entries below the log's first index were compacted into a snapshot, which the FSM restored
// before anything later: they count as applied (0).
func (n *Node) CommandAtOrBefore(index uint64) (uint64, bool) {
	if n.raft.AppliedIndex() < index {
		return 0, false
	}
	first, err := n.store.FirstIndex()
	if err != nil {
		return 0, false
	}
	for i := index; i >= first && i > 0; i-- {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			return 0, false
		}
		if l.Type == raft.LogCommand {
			return i, true
		}
	}
	return 0, true
}

// QuorumState is what DescribeQuorum reports about the raft group, as this node sees it.
type QuorumState struct {
	LeaderID    int32  // -1 when none is known
	Term        uint64 // Kafka's leader epoch of the metadata log
	CommitIndex uint64 // Kafka's high watermark of the metadata log
	LastIndex   uint64 // this node's log end
	Voters      []int32
	NonVoters   []int32 // Kafka's observers
	// Progress is what the leader knows of each replica's log (filled by the metadata layer
	// from broker heartbeats; hashicorp/raft does not expose its followers' match index).
	Progress map[int32]ReplicaProgress
}

// ReplicaProgress is one replica's position in the metadata log as the leader last heard it.
type ReplicaProgress struct {
	LogEndOffset int64
	LastFetch    time.Time
	CaughtUp     bool // at LastFetch the replica had applied every state change the leader had
}

// Quorum reports the raft group's state as this node sees it.
func (n *Node) Quorum() (QuorumState, error) {
	st := QuorumState{LeaderID: -1, Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), LastIndex: n.raft.LastIndex()}
	if id, _, ok := n.Leader(); ok {
		st.LeaderID = id
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return st, mapErr(err)
	}
	for _, s := range f.Configuration().Servers {
		v, err := strconv.ParseInt(string(s.ID), 10, 32)
		if err != nil {
			continue
		}
		if s.Suffrage == raft.Voter {
			st.Voters = append(st.Voters, int32(v))
		} else {
			st.NonVoters = append(st.NonVoters, int32(v))
		}
	}
	// By id, as Kafka lists them: the configuration's order is whichever node bootstrapped.
	slices.Sort(st.Voters)
	slices.Sort(st.NonVoters)
	return st, nil
}

// AddNonvoter adds node id at addr to the raft group as a non-voter (it replicates the log but
// does not vote), or moves it to addr. A server already there, voter or not, is left alone.
// Only the leader can.
func (n *Node) AddNonvoter(id int32, addr string, timeout time.Duration) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return mapErr(err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == ServerID(id) && (s.Suffrage == raft.Voter || s.Address == raft.ServerAddress(addr)) {
			return nil
		}
	}
	if err := n.raft.AddNonvoter(ServerID(id), raft.ServerAddress(addr), 0, timeout).Error(); err != nil {
		return mapErr(err)
	}
	return nil
}
