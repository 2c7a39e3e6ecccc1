package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/migrate"
	"github.com/hashicorp/raft-wal/segment"
	"go.etcd.io/bbolt"

	"github.com/moldau/moldau/internal/vfs"
)

const (
	// walDirName is the WAL's directory in Config.Dir.
	walDirName = "wal"
	// boltFile is the raft-boltdb store of data dirs written before raft-wal; boltMigrated is
	// its name once copied into the WAL.
	boltFile     = "raft.db"
	boltMigrated = "raft.db.migrated"
	// migratingSuffix marks a WAL being filled from raft.db: it becomes walDirName (by
	// rename) only once complete and durable, so a crash mid-copy leaves no half WAL.
	migratingSuffix = ".migrating"
	// boltLockTimeout bounds the wait for raft.db's bolt file lock during migration.
	boltLockTimeout = 5 * time.Second
)

// openWAL opens (creating if needed) the raft-wal log and stable store in dir, all of its
// files on fsys.
func openWAL(fsys vfs.FS, dir string, segmentSize int, logger hclog.Logger) (*wal.WAL, error) {
	if err := mkdirDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("raftstore: create %s: %w", dir, err)
	}
	if segmentSize <= 0 {
		segmentSize = wal.DefaultSegmentSize
	}
	w, err := wal.Open(dir,
		wal.WithSegmentFiler(segment.NewFiler(dir, walFS{fs: fsys})),
		wal.WithMetaStore(newWALMeta(fsys)),
		wal.WithLogger(logger),
		wal.WithSegmentSize(segmentSize),
	)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open wal %s: %w", dir, err)
	}
	return w, nil
}

// mkdirDurable creates dir and any missing parents, and fsyncs the parent of each directory
// it created, so the new directories survive a power loss.
func mkdirDurable(fsys vfs.FS, dir string) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := fsys.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing { // deepest first; each parent exists now
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("fsync dir %s: %w", filepath.Dir(d), err)
		}
	}
	return nil
}

func exists(fsys vfs.FS, path string) (bool, error) {
	_, err := fsys.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// stableUint64Keys and stableKeys are the keys hashicorp/raft writes to its StableStore (with
// SetUint64 and Set).
var (
	stableUint64Keys = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm")}
	stableKeys       = [][]byte{[]byte("LastVoteCand")}
)

// migrateBolt moves a data dir from raft-boltdb to raft-wal: if cfg.Dir has raft.db and no
// WAL, it copies raft.db's logs and raft's stable keys (current term, last vote) into a new
// WAL, makes it durable, and renames raft.db to raft.db.migrated. Each step is crash-safe:
// the WAL is filled in wal.migrating and renamed to wal only when complete (a leftover
// wal.migrating is discarded and the copy redone); a crash after that rename but before
// raft.db's leaves both, and the next start just renames raft.db.
//
// raft.db is read by bolt itself on the OS filesystem (read-only), the one raft store file
// not read through cfg.FS; its existence is checked and its rename done on cfg.FS.
func migrateBolt(cfg Config, walDir string, logger hclog.Logger) error {
	dbPath := filepath.Join(cfg.Dir, boltFile)
	hasDB, err := exists(cfg.FS, dbPath)
	if err != nil {
		return fmt.Errorf("raftstore: stat %s: %w", dbPath, err)
	}
	if !hasDB {
		return nil
	}
	hasWAL, err := exists(cfg.FS, walDir)
	if err != nil {
		return fmt.Errorf("raftstore: stat %s: %w", walDir, err)
	}
	if !hasWAL {
		if err := copyBolt(cfg, dbPath, walDir, logger); err != nil {
			return err
		}
	}
	if err := cfg.FS.Rename(dbPath, filepath.Join(cfg.Dir, boltMigrated)); err != nil {
		return fmt.Errorf("raftstore: rename %s: %w", dbPath, err)
	}
	if err := cfg.FS.SyncDir(cfg.Dir); err != nil {
		return fmt.Errorf("raftstore: fsync dir %s: %w", cfg.Dir, err)
	}
	logger.Info("migrated the raft log from raft-boltdb to raft-wal", "from", dbPath, "to", walDir, "old file kept as", boltMigrated)
	return nil
}

func copyBolt(cfg Config, dbPath, walDir string, logger hclog.Logger) (err error) {
	tmpDir := walDir + migratingSuffix
	if err := cfg.FS.RemoveAll(tmpDir); err != nil {
		return fmt.Errorf("raftstore: remove %s: %w", tmpDir, err)
	}
	src, err := raftboltdb.New(raftboltdb.Options{
		Path: dbPath,
		// Read-only takes bolt's shared flock; an older moldau still running on the dir
		// holds it exclusively (and, from before the .lock file, nothing else stops us).
		BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: boltLockTimeout},
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("raftstore: %s is locked by another process (a moldau from before raft-wal still running on this dir?); stop it first: %w", dbPath, err)
	}
	if err != nil {
		return fmt.Errorf("raftstore: open %s to migrate it: %w", dbPath, err)
	}
	defer src.Close()

	dst, err := openWAL(cfg.FS, tmpDir, cfg.WALSegmentSize, logger.Named("wal"))
	if err != nil {
		return err
	}
	defer func() {
		if dst != nil {
			dst.Close()
		}
	}()
	last, err := src.LastIndex()
	if err != nil {
		return fmt.Errorf("raftstore: migrate %s: last index: %w", dbPath, err)
	}
	if last > 0 { // an empty log has no first entry to copy from
		if err := migrate.CopyLogs(context.Background(), dst, src, 1<<20, nil); err != nil {
			return fmt.Errorf("raftstore: migrate %s: copy logs: %w", dbPath, err)
		}
	}
	// The keys hashicorp/raft stores (raft's api.go: keyCurrentTerm, keyLastVoteTerm with
	// SetUint64, keyLastVoteCand with Set), as migrate.CopyStable copies them, except that a
	// key never set is skipped rather than an error (a node that never voted has none).
	// The uint64 ones go through GetUint64/SetUint64: raft-boltdb stores them big-endian,
	// raft-wal little-endian.
	for _, k := range stableUint64Keys {
		v, err := src.GetUint64(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("raftstore: migrate %s: read stable key %s: %w", dbPath, k, err)
		}
		if err := dst.SetUint64(k, v); err != nil {
			return fmt.Errorf("raftstore: migrate %s: write stable key %s: %w", dbPath, k, err)
		}
	}
	for _, k := range stableKeys {
		v, err := src.Get(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("raftstore: migrate %s: read stable key %s: %w", dbPath, k, err)
		}
		if err := dst.Set(k, v); err != nil {
			return fmt.Errorf("raftstore: migrate %s: write stable key %s: %w", dbPath, k, err)
		}
	}
	// Every StoreLogs and Set of the WAL fsyncs before it returns; closing it stops its
	// background work before the directory is renamed.
	err = dst.Close()
	dst = nil
	if err != nil {
		return fmt.Errorf("raftstore: migrate %s: close wal: %w", dbPath, err)
	}
	if err := cfg.FS.Rename(tmpDir, walDir); err != nil {
		return fmt.Errorf("raftstore: migrate %s: rename %s: %w", dbPath, tmpDir, err)
	}
	if err := cfg.FS.SyncDir(cfg.Dir); err != nil {
		return fmt.Errorf("raftstore: fsync dir %s: %w", cfg.Dir, err)
	}
	return nil
}
