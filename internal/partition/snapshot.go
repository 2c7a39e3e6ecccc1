package partition

// Producer-state snapshots: the idempotent producer state written at the log end offset at Close
// and whenever an append rolls a new segment (as Kafka's ProducerStateManager snapshots at every
// roll), so that the next Open, after a crash too, replays only the batches after it instead of
// every batch header of the log.
//
// INVARIANT: a snapshot at offset X holds exactly the state a replay of the log's batches below
// X gives, for as long as the file exists. What keeps it: it is written under appendMu at the log
// end, after the producer state took every batch appended (Close, or right after the appends
// that rolled a segment); the log below X never changes afterwards except by
// TruncateTo and TruncateFullyAndStartAt, which remove the file (durably) before they truncate;
// retention and DeleteRecords only move the log start (a snapshot below the new start is not
// used) and compaction only removes records (their producers stay remembered, as in Kafka).
// The log's aborted-transaction index is persisted before each snapshot (log.PersistTxnIndexes),
// so the replay after it, which re-adds the aborts it meets, leaves the index complete. A
// file that is unreadable, fails its CRC, or lies outside [log start, log end] is ignored: the
// whole log is replayed, as without a snapshot.
//
// Format (big-endian): "MPS2", offset int64, count uint32, then per producer: id int64,
// epoch int16, txnFirst int64 (the first offset of its open transaction, -1), coordEpoch int32,
// lastTs int64, n uint8, n × (firstSeq, lastSeq int32; baseOffset, lastOffset, timestamp
// int64); then the CRC-32C of everything before it. "MPS1" (before transactions) is read too:
// it lacks txnFirst, coordEpoch and lastTs (no transaction open, lastTs the last batch's).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

// ProducerSnapshotFile is the name of the producer-state snapshot in a partition's directory.
const ProducerSnapshotFile = "producer-state.snapshot"

var (
	snapshotMagic   = [4]byte{'M', 'P', 'S', '2'}
	snapshotMagicV1 = [4]byte{'M', 'P', 'S', '1'}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeProducerSnapshot encodes ps at offset.
func encodeProducerSnapshot(ps producerStates, offset int64) []byte {
	ids := make([]int64, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	be := binary.BigEndian
	b := append([]byte(nil), snapshotMagic[:]...)
	b = be.AppendUint64(b, uint64(offset))
	b = be.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := ps[id]
		b = be.AppendUint64(b, uint64(id))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint64(b, uint64(e.txnFirst))
		b = be.AppendUint32(b, uint32(e.coordEpoch))
		b = be.AppendUint64(b, uint64(e.lastTs))
		b = append(b, byte(len(e.batches)))
		for _, m := range e.batches {
			b = be.AppendUint32(b, uint32(m.firstSeq))
			b = be.AppendUint32(b, uint32(m.lastSeq))
			b = be.AppendUint64(b, uint64(m.baseOffset))
			b = be.AppendUint64(b, uint64(m.lastOffset))
			b = be.AppendUint64(b, uint64(m.timestamp))
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeProducerSnapshot decodes a snapshot; any damage is an error, never a panic.
func decodeProducerSnapshot(b []byte) (producerStates, int64, error) {
	bad := func(why string) (producerStates, int64, error) {
		return nil, 0, fmt.Errorf("producer snapshot: %s", why)
	}
	if len(b) < 4+8+4+4 || ([4]byte(b[:4]) != snapshotMagic && [4]byte(b[:4]) != snapshotMagicV1) {
		return bad("no header")
	}
	v2 := [4]byte(b[:4]) == snapshotMagic
	fixed := 8 + 2 + 1
	if v2 {
		fixed += 8 + 4 + 8
	}
	be := binary.BigEndian
	body, sum := b[:len(b)-4], be.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return bad("crc mismatch")
	}
	offset := int64(be.Uint64(body[4:]))
	count := be.Uint32(body[12:])
	rest := body[16:]
	if offset < 0 || uint64(count)*uint64(fixed) > uint64(len(rest)) {
		return bad("bad offset or count")
	}
	const batchSize = 4 + 4 + 8 + 8 + 8
	ps := make(producerStates, count)
	for range count {
		if len(rest) < fixed {
			return bad("truncated producer")
		}
		id, epoch := int64(be.Uint64(rest)), int16(be.Uint16(rest[8:]))
		e := newProducerEntry(epoch)
		if v2 {
			e.txnFirst, e.coordEpoch, e.lastTs = int64(be.Uint64(rest[10:])), int32(be.Uint32(rest[18:])), int64(be.Uint64(rest[22:]))
			if e.txnFirst < -1 || e.txnFirst > offset {
				return bad("bad transaction offset")
			}
		}
		n := int(rest[fixed-1])
		rest = rest[fixed:]
		if n > maxCachedBatches || len(rest) < n*batchSize {
			return bad("bad batch count")
		}
		if _, dup := ps[id]; dup || id < 0 {
			return bad("bad producer id")
		}
		e.batches = make([]batchMeta, n)
		for i := range e.batches {
			e.batches[i] = batchMeta{
				firstSeq: int32(be.Uint32(rest)), lastSeq: int32(be.Uint32(rest[4:])),
				baseOffset: int64(be.Uint64(rest[8:])), lastOffset: int64(be.Uint64(rest[16:])),
				timestamp: int64(be.Uint64(rest[24:])),
			}
			rest = rest[batchSize:]
		}
		if n > 0 && !v2 {
			e.lastTs = e.batches[n-1].timestamp
		}
		ps[id] = e
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	return ps, offset, nil
}

func (p *Partition) snapshotPath() string { return filepath.Join(p.path, ProducerSnapshotFile) }

// writeProducerSnapshot writes the snapshot at the log end offset. REQUIRES: appendMu held, and
// p.producers holding every batch below the log end.
func (p *Partition) writeProducerSnapshot() error {
	// Every aborted-transaction entry below the snapshot's offset must be on disk before it:
	// the replay after a restart starts at the snapshot and re-adds only what is after it.
	if err := p.log.PersistTxnIndexes(); err != nil {
		return fmt.Errorf("partition %s-%d: write producer snapshot: %w", p.Topic, p.Index, err)
	}
	data := encodeProducerSnapshot(p.producers, p.log.LogEndOffset())
	if err := log.WriteFileAtomic(p.dir.fs(), p.path, ProducerSnapshotFile, data); err != nil {
		return fmt.Errorf("partition %s-%d: write producer snapshot: %w", p.Topic, p.Index, err)
	}
	return nil
}

// removeProducerSnapshot removes the snapshot durably, before the log below its offset changes.
// REQUIRES: appendMu held.
func (p *Partition) removeProducerSnapshot() error {
	fsys := p.dir.fs()
	err := fsys.Remove(p.snapshotPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = log.SyncDir(fsys, p.path)
	}
	if err != nil {
		return fmt.Errorf("partition %s-%d: remove producer snapshot: %w", p.Topic, p.Index, err)
	}
	return nil
}

// loadProducerSnapshot returns the snapshot's state and offset if it can be used; ok false
// otherwise (no file, damaged, outside the log).
func (p *Partition) loadProducerSnapshot() (producerStates, int64, bool) {
	data, err := vfs.ReadFile(p.dir.fs(), p.snapshotPath())
	if err != nil {
		return nil, 0, false
	}
	ps, off, err := decodeProducerSnapshot(data)
	if err != nil || off < p.log.LogStartOffset() || off > p.log.LogEndOffset() {
		return nil, 0, false
	}
	return ps, off, true
}

// snapshotIfRolled writes the producer snapshot when the appends just made rolled a new segment
// (segmentsBefore is the count before them), so that a start after a crash replays at most
// about one segment's batch headers. A failure is logged and changes nothing else: the older
// snapshot, if any, stays valid. REQUIRES: appendMu held.
func (p *Partition) snapshotIfRolled(segmentsBefore int) {
	if p.log.NumSegments() == segmentsBefore || p.log.Failed() != nil {
		return
	}
	if err := p.writeProducerSnapshot(); err != nil {
		logger := p.dir.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("producer snapshot at segment roll not written: a start after a crash replays more of the log", "err", err)
	}
}
