package broker

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metaprops"
	"github.com/moldau/moldau/internal/vfs"
)

// storage is this node's meta.properties, one per log dir (internal/metaprops), as Kafka's
// KafkaRaftServer.initializeLogDirs keeps them: checked against the configuration before
// anything else is read from the log dirs, and written into the dirs that have none as soon as
// the cluster id is known (cluster.id, the id `kafka-storage format -t` wrote, or the one the
// metadata quorum holds).
type storage struct {
	cfg *config.Config
	log *slog.Logger

	mu struct {
		sync.Mutex
		ens      *metaprops.Ensemble
		complete bool // every dir has a meta.properties of ens.ClusterID()
	}
}

// checkStorage loads the meta.properties of every log dir and checks them, as Kafka does at
// start: all of them must name this node (node.id) and one cluster, which must be cluster.id
// when that is set. Start calls it right after locking the log dirs. Dirs without the file
// (a fresh node, or data written before Moldau kept meta.properties) are fine: recordClusterID
// formats them.
func checkStorage(fsys vfs.FS, cfg *config.Config, logger *slog.Logger) (*storage, error) {
	ens, err := metaprops.Load(fsys, cfg.LogDirs)
	if err != nil {
		return nil, fmt.Errorf("log dirs: %w", err)
	}
	if err := ens.Verify(cfg.ClusterID, cfg.NodeID); err != nil {
		return nil, fmt.Errorf("log dirs: %w", err)
	}
	s := &storage{cfg: cfg, log: logger}
	s.mu.ens = ens
	return s, nil
}

// clusterID is the cluster id the metadata quorum must have: cluster.id if set, else the one in
// the log dirs' meta.properties (kafka-storage format -t), else "" (the quorum makes one).
func (s *storage) clusterID() string {
	if s.cfg.ClusterID != "" {
		return s.cfg.ClusterID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.ens.ClusterID()
}

// recordClusterID is called with the cluster id the metadata quorum reports once it is known
// ("" = not yet: nothing to do). It refuses an id other than the one the log dirs already hold
// (this node's data belongs to another cluster) and writes meta.properties into every dir that
// has none. Cheap after the first success; safe for concurrent use.
func (s *storage) recordClusterID(id string) error {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.complete && s.mu.ens.ClusterID() == id {
		return nil
	}
	written, err := s.mu.ens.Complete(id, s.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("log dirs: %w (the metadata quorum's cluster id is %s)", err, id)
	}
	for _, d := range written {
		s.log.Info("wrote meta.properties", "dir", d, "cluster_id", id, "node_id", s.cfg.NodeID)
	}
	s.mu.complete = true
	return nil
}

// directoryIDs are the directory ids of the log dirs that have a meta.properties with one
// (broker registrations carry them).
func (s *storage) directoryIDs() []metadata.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metadata.UUID
	for _, d := range s.mu.ens.Dirs() {
		p, ok := s.mu.ens.Props(d)
		if !ok || p.DirectoryID == "" {
			continue
		}
		if id, err := metaprops.ParseUUID(p.DirectoryID); err == nil {
			out = append(out, metadata.UUID(id))
		}
	}
	return out
}
