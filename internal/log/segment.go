package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

const (
	offsetEntrySize = 8  // relOffset uint32 + position uint32
	timeEntrySize   = 12 // timestamp int64 + relOffset uint32
)

// segment is one .log file with its sparse .index and .timeindex.
//
// INVARIANT: a segment is immutable once rolled (only the last segment of a
// Log is appended to). INVARIANT: offset index entries have strictly
// increasing relative offsets and positions; time index entries have strictly
// increasing timestamps and non-decreasing relative offsets. Both are kept in
// memory; their files are written whole (writeIndexes, fsynced) when the
// segment is sealed by a roll, at Close, after recovery or truncation and by
// the cleaner, and are not held open, so a partition costs one descriptor
// per segment. After a crash the active segment is always recovered from its
// .log, which rebuilds its indexes.
//
// Fields are written by the appender (Log.appendMu held) and, for those
// readers use, with Log.mu held for writing; readers hold Log.mu for reading.
type segment struct {
	base      int64
	fs        vfs.FS
	dir       string
	log       vfs.File
	osLog     *os.File     // log's *os.File when the FS has them (sendfile), else nil
	idxSuffix string       // after the index files' extensions: cleanedSuffix until swapped in
	offIndex  []byte       // offsetEntrySize entries
	timeIndex []byte       // timeEntrySize entries
	aborted   []AbortedTxn // the aborted-transaction index (txnindex.go)

	size        int64 // bytes of whole batches in the .log
	next        int64 // offset after the last batch; base when empty
	maxTs       int64 // largest batch max timestamp, -1 if none
	maxTsOffset int64 // last offset of the batch holding maxTs

	// Appender-only state.
	idxStale        bool // the index files do not hold the in-memory entries
	txnStale        bool // the .txnindex file does not hold aborted
	txnLost         bool // the .txnindex file could not be read at Open (txnindex.go)
	hasTxnFile      bool // a .txnindex file may exist
	bytesSinceIndex int64
	firstAppendMs   int64 // clock time of the first append (or of Open), -1 when empty
	dirty           bool  // written since the last fsync
}

func segmentName(base int64, ext string) string { return fmt.Sprintf("%020d%s", base, ext) }

func (s *segment) path(ext string) string { return filepath.Join(s.dir, segmentName(s.base, ext)) }

// openSegment opens (creating when create is set, truncating stale files) the
// three files of the segment with the given base offset.
func openSegment(fsys vfs.FS, dir string, base int64, create bool) (*segment, error) {
	return openSegmentFiles(fsys, dir, base, "", create)
}

// openSegmentFiles is openSegment for files named with suffix after their
// extension (the cleaner writes NNN.log.cleaned & co); path still names the
// final files.
func openSegmentFiles(fsys vfs.FS, dir string, base int64, suffix string, create bool) (*segment, error) {
	s := &segment{base: base, fs: fsys, dir: dir, idxSuffix: suffix, next: base, maxTs: -1, maxTsOffset: -1, firstAppendMs: -1, idxStale: create}
	var err error
	if create {
		for _, ext := range []string{".index", ".timeindex", txnIndexExt} {
			if err := fsys.Remove(s.path(ext) + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("create segment: stale index: %w", err)
			}
		}
		s.log, err = fsys.Create(s.path(".log") + suffix)
	} else {
		s.log, err = fsys.OpenReadWrite(s.path(".log")+suffix, false)
	}
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	s.osLog, _ = vfs.OSFile(s.log)
	return s, nil
}

func (s *segment) close() error {
	if s.log == nil {
		return nil
	}
	return s.log.Close()
}

func (s *segment) sync() error {
	if err := s.log.Sync(); err != nil {
		return &syncError{fmt.Errorf("fsync %s: %w", s.log.Name(), err)}
	}
	s.dirty = false
	return nil
}

func (s *segment) offsetEntries() int { return len(s.offIndex) / offsetEntrySize }
func (s *segment) timeEntries() int   { return len(s.timeIndex) / timeEntrySize }

func (s *segment) offsetEntry(i int) (rel uint32, pos uint32) {
	e := s.offIndex[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

func (s *segment) timeEntry(i int) (ts int64, rel uint32) {
	e := s.timeIndex[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

// lookup returns a file position at or before the batch holding offset: the
// position of the last index entry whose offset is <= offset, else 0.
// REQUIRES: Log.mu held (either mode).
func (s *segment) lookup(offset int64) int64 {
	if offset < s.base {
		return 0
	}
	rel := offset - s.base
	n := s.offsetEntries()
	i := sort.Search(n, func(i int) bool { r, _ := s.offsetEntry(i); return int64(r) > rel })
	if i == 0 {
		return 0
	}
	_, pos := s.offsetEntry(i - 1)
	return int64(pos)
}

// lookupTime returns a file position before which no record has a timestamp
// >= ts: the position of the batch of the last time index entry with a
// timestamp < ts, else 0. REQUIRES: Log.mu held (either mode).
func (s *segment) lookupTime(ts int64) int64 {
	n := s.timeEntries()
	i := sort.Search(n, func(i int) bool { t, _ := s.timeEntry(i); return t >= ts })
	if i == 0 {
		return 0
	}
	_, rel := s.timeEntry(i - 1)
	return s.lookup(s.base + int64(rel))
}

// indexBatch updates the in-memory indexes for a batch written at pos,
// following Kafka's rule: an offset index entry (batch last offset, batch
// position) and a time index entry (max timestamp so far) whenever more than
// interval bytes were written since the last entry (the files are written
// later: idxStale). REQUIRES: Log.mu held for writing.
func (s *segment) indexBatch(pos, size, lastOffset, maxTs int64, interval int32) {
	if maxTs > s.maxTs {
		s.maxTs, s.maxTsOffset = maxTs, lastOffset
	}
	if s.bytesSinceIndex > int64(interval) {
		s.offIndex = binary.BigEndian.AppendUint32(s.offIndex, uint32(lastOffset-s.base))
		s.offIndex = binary.BigEndian.AppendUint32(s.offIndex, uint32(pos))
		s.maybeAppendTime()
		s.bytesSinceIndex = 0
		s.idxStale = true
	}
	s.bytesSinceIndex += size
	s.size = pos + size
	s.next = lastOffset + 1
}

// maybeAppendTime adds (maxTs, maxTsOffset) to the time index if maxTs is
// larger than the last entry's timestamp. REQUIRES: Log.mu held for writing.
func (s *segment) maybeAppendTime() {
	if s.maxTs < 0 {
		return
	}
	if n := s.timeEntries(); n > 0 {
		if ts, _ := s.timeEntry(n - 1); s.maxTs <= ts {
			return
		}
	}
	s.timeIndex = binary.BigEndian.AppendUint64(s.timeIndex, uint64(s.maxTs))
	s.timeIndex = binary.BigEndian.AppendUint32(s.timeIndex, uint32(s.maxTsOffset-s.base))
	s.idxStale = true
}

// writeIndexes writes both index files from memory (temp file, fsync,
// rename). REQUIRES: the appender's lock, or the segment not yet published.
func (s *segment) writeIndexes() error {
	for _, x := range []struct {
		ext string
		b   []byte
	}{{".index", s.offIndex}, {".timeindex", s.timeIndex}} {
		if err := writeFileAtomicNoDirSync(s.fs, s.path(x.ext)+s.idxSuffix, x.b); err != nil {
			return err
		}
	}
	s.idxStale = false
	return s.writeTxnIndex()
}

// readAtNoEscape is f.ReadAt(b, off) for a small b that is a caller's stack
// array: through the File interface b would escape to the heap (an
// allocation per read), so an *os.File is read directly and other files
// through a copy.
func readAtNoEscape(f vfs.File, b []byte, off int64) (int, error) {
	if of, ok := f.(*os.File); ok {
		return of.ReadAt(b, off)
	}
	tmp := make([]byte, len(b))
	n, err := f.ReadAt(tmp, off)
	copy(b, tmp[:n])
	return n, err
}

// readHeader reads the batch header at pos into buf and checks that the
// whole batch lies within limit.
func readHeader(f vfs.File, pos, limit int64, buf *[record.HeaderSize]byte) (record.BatchHeader, error) {
	if limit-pos < record.HeaderSize {
		return record.BatchHeader{}, fmt.Errorf("%s at %d: %d bytes left for a header: %w", f.Name(), pos, limit-pos, record.ErrCorrupt)
	}
	if _, err := readAtNoEscape(f, buf[:], pos); err != nil {
		return record.BatchHeader{}, fmt.Errorf("read %s at %d: %w", f.Name(), pos, err)
	}
	h, _ := record.ParseHeader(buf[:])
	if h.Length < record.HeaderSize-12 || int64(h.Size()) > limit-pos {
		return h, fmt.Errorf("%s at %d: batch length %d: %w", f.Name(), pos, h.Length, record.ErrCorrupt)
	}
	return h, nil
}

// readBatch reads and validates (length, CRC, offsets) the whole batch at pos,
// reusing *buf. next is the lowest acceptable base offset.
func (s *segment) readBatch(pos, limit, next int64, buf *[]byte) (record.BatchHeader, error) {
	if limit-pos < 12 {
		return record.BatchHeader{}, fmt.Errorf("%d trailing bytes: %w", limit-pos, record.ErrCorrupt)
	}
	var lenBuf [12]byte
	if _, err := readAtNoEscape(s.log, lenBuf[:], pos); err != nil {
		return record.BatchHeader{}, err
	}
	length := int64(int32(binary.BigEndian.Uint32(lenBuf[8:])))
	if length < record.HeaderSize-12 || 12+length > limit-pos {
		return record.BatchHeader{}, fmt.Errorf("batch length %d with %d bytes left: %w", length, limit-pos, record.ErrCorrupt)
	}
	if int64(cap(*buf)) < 12+length {
		*buf = make([]byte, 12+length)
	}
	b := (*buf)[:12+length]
	if _, err := s.log.ReadAt(b, pos); err != nil {
		return record.BatchHeader{}, err
	}
	h, err := record.ValidateStored(b)
	if err != nil {
		return h, err
	}
	if h.BaseOffset < next || h.BaseOffset > math.MaxInt64-1-int64(h.LastOffsetDelta) ||
		h.LastOffset()-s.base > math.MaxInt32 {
		return h, fmt.Errorf("batch offsets [%d, %d] after offset %d in segment %d: %w",
			h.BaseOffset, h.LastOffset(), next, s.base, record.ErrCorrupt)
	}
	return h, nil
}

// recover validates every batch of the segment from the start, truncates the
// file at the first invalid or torn byte and rebuilds both indexes in memory
// (idxStale: the files are written by the caller or at the next roll or
// Close). It reports whether bytes were cut off.
func (s *segment) recover(interval int32) (truncated bool, err error) {
	fi, err := s.log.Stat()
	if err != nil {
		return false, fmt.Errorf("recover %s: %w", s.log.Name(), err)
	}
	fileSize := fi.Size()
	s.offIndex, s.timeIndex = s.offIndex[:0], s.timeIndex[:0]
	s.size, s.next, s.maxTs, s.maxTsOffset, s.bytesSinceIndex = 0, s.base, -1, -1, 0
	var buf []byte
	pos := int64(0)
	for pos < fileSize && pos <= math.MaxInt32 {
		h, err := s.readBatch(pos, fileSize, s.next, &buf)
		if err != nil {
			break
		}
		s.indexBatch(pos, int64(h.Size()), h.LastOffset(), h.MaxTimestamp, interval)
		pos += int64(h.Size())
	}
	if pos < fileSize {
		if err := s.log.Truncate(pos); err != nil {
			return false, fmt.Errorf("recover %s: truncate at %d: %w", s.log.Name(), pos, err)
		}
		truncated = true
	}
	s.maybeAppendTime()
	s.idxStale = true // the caller writes them (sealed segments) or a roll or Close will
	s.dirty = true
	return truncated, nil
}

// load trusts the index files after sanity checks and validates only the
// batches after the last offset index entry. It reports false when the
// segment needs a full recover.
func (s *segment) load(interval int32) bool {
	fi, err := s.log.Stat()
	if err != nil {
		return false
	}
	fileSize := fi.Size()
	if s.offIndex, err = vfs.ReadFile(s.fs, s.path(".index")+s.idxSuffix); err != nil || len(s.offIndex)%offsetEntrySize != 0 {
		return false
	}
	if s.timeIndex, err = vfs.ReadFile(s.fs, s.path(".timeindex")+s.idxSuffix); err != nil || len(s.timeIndex)%timeEntrySize != 0 {
		return false
	}
	if fileSize > 0 && (s.offsetEntries() == 0 || s.timeEntries() == 0) {
		return false // nothing to trust: rebuild (cheap, the segment is small or unindexed)
	}
	var lastRel, lastPos int64 = -1, -1
	for i := range s.offsetEntries() {
		r, p := s.offsetEntry(i)
		if int64(r) <= lastRel || int64(p) <= lastPos || int64(p) >= fileSize {
			return false
		}
		lastRel, lastPos = int64(r), int64(p)
	}
	var lastTs, lastTimeRel int64 = math.MinInt64, -1
	for i := range s.timeEntries() {
		ts, r := s.timeEntry(i)
		if ts <= lastTs || int64(r) < lastTimeRel {
			return false
		}
		lastTs, lastTimeRel = ts, int64(r)
	}
	// Validate the tail: from the last indexed batch to the end of the file.
	s.size, s.next, s.maxTs, s.maxTsOffset = 0, s.base, -1, -1
	pos := int64(0)
	if lastPos >= 0 {
		pos = lastPos
	}
	var buf []byte
	first := true
	for pos < fileSize {
		h, err := s.readBatch(pos, fileSize, s.next, &buf)
		if err != nil {
			return false
		}
		if first && lastRel >= 0 && h.LastOffset() != s.base+lastRel {
			return false
		}
		first = false
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
		}
		pos += int64(h.Size())
		s.next = h.LastOffset() + 1
	}
	s.size = pos
	if lastTimeRel >= 0 {
		if s.base+lastTimeRel >= s.next {
			return false
		}
		if lastTs > s.maxTs || (lastTs == s.maxTs && s.base+lastTimeRel < s.maxTsOffset) {
			s.maxTs, s.maxTsOffset = lastTs, s.base+lastTimeRel
		}
	}
	s.bytesSinceIndex = fileSize - max(lastPos, 0)
	return true
}
