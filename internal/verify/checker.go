package verify

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Ack is a record the cluster acknowledged (acks=all): where it said the record is, and when the
// acknowledgement arrived (since the run started).
type Ack struct {
	ID        ID
	Partition int32
	Offset    int64
	At        time.Duration
}

// Read is a record of this run found when the topic was read back.
type Read struct {
	ID        ID
	Partition int32
	Offset    int64
}

// Fault is one fault the run injected: what, into which node, when it started and when the node
// was back (both since the run started; Recovered is 0 if it never came back).
type Fault struct {
	Kind      string        `json:"kind"`
	Node      int32         `json:"node"`
	At        time.Duration `json:"-"`
	Recovered time.Duration `json:"-"`
	AtMs      int64         `json:"at_ms"`
	DownMs    int64         `json:"down_ms"`
	Err       string        `json:"error,omitempty"`
}

// Input is everything the checker needs, gathered by Run (or made up by a test).
type Input struct {
	// Sent is, per producer, how many records it attempted: sequence numbers 0..Sent[p]-1.
	Sent  map[int]int64
	Acks  []Ack
	Reads []Read
	// Foreign counts records in the topic that are not this run's (another run's, or not written
	// by moldau verify); Corrupt counts records of this run whose value does not match their key.
	Foreign, Corrupt int64
	Faults           []Fault
	// ProduceEnd is when producing stopped (since the run started): the stall measurement's end.
	ProduceEnd time.Duration
	// ProduceErrors counts the errors of unacknowledged records by message.
	ProduceErrors map[string]int64
	// Problems are findings outside the accounting: a node's unexpected exit or panic, a read-back
	// that could not finish. Each fails the run.
	Problems []string
}

// sampleSize bounds each list of example ids in a report.
const sampleSize = 10

// Report is the accounting of one run. Every count is of records of this run.
type Report struct {
	Topic          string `json:"topic"`
	Partitions     int32  `json:"partitions"`
	Replication    int16  `json:"replication_factor"`
	MinInsync      int    `json:"min_insync_replicas"`
	DurationMs     int64  `json:"duration_ms"`
	Attempted      int64  `json:"attempted"`
	Acknowledged   int64  `json:"acknowledged"`
	Unacknowledged int64  `json:"unacknowledged"`
	Read           int64  `json:"read"`
	// Lost: acknowledged, not read anywhere.
	Lost int64 `json:"lost"`
	// Duplicated: extra copies read of a record (acknowledged or not) beyond its first.
	Duplicated int64 `json:"duplicated"`
	// Reordered: records read, within a partition and for one producer, after a record with a
	// higher sequence number.
	Reordered int64 `json:"reordered"`
	// Moved: acknowledged in one partition, read only in another.
	Moved int64 `json:"moved"`
	// OffsetChanged: read in the acknowledged partition, but not at the acknowledged offset.
	OffsetChanged int64 `json:"offset_changed"`
	// UnacknowledgedPresent: never acknowledged (failed or unanswered), yet read. Not an error:
	// a produce whose answer was lost may have been written.
	UnacknowledgedPresent int64 `json:"unacknowledged_present"`
	// Unknown: records of this run with a sequence number no producer attempted.
	Unknown int64 `json:"unknown"`
	Corrupt int64 `json:"corrupt"`
	Foreign int64 `json:"foreign"`
	// LongestStallMs is the longest gap between successive acknowledgements (after the first
	// fault when there were faults); LongestStallAtMs when it began; StallFault the fault that
	// caused it (the first begun during the stall, else the last begun before it).
	LongestStallMs   int64            `json:"longest_stall_ms"`
	LongestStallAtMs int64            `json:"longest_stall_at_ms"`
	StallFault       string           `json:"longest_stall_fault,omitempty"`
	Faults           []Fault          `json:"faults"`
	ProduceErrors    map[string]int64 `json:"produce_errors,omitempty"`
	LostSample       []string         `json:"lost_sample,omitempty"`
	DuplicatedSample []string         `json:"duplicated_sample,omitempty"`
	ReorderedSample  []string         `json:"reordered_sample,omitempty"`
	MovedSample      []string         `json:"moved_sample,omitempty"`
	OffsetSample     []string         `json:"offset_changed_sample,omitempty"`
	// Transactions is set for a --transactions run (CheckTxn).
	Transactions *TxnReport `json:"transactions,omitempty"`
	OK           bool       `json:"ok"`
	Problems     []string   `json:"problems,omitempty"`
}

func sample(s *[]string, format string, a ...any) {
	if len(*s) < sampleSize {
		*s = append(*s, fmt.Sprintf(format, a...))
	}
}

// Check does the accounting. It is a pure function of in: the tests drive it with made-up inputs.
func Check(in Input) Report {
	r := Report{Foreign: in.Foreign, Corrupt: in.Corrupt, ProduceErrors: in.ProduceErrors,
		Faults: make([]Fault, len(in.Faults))}
	for i, f := range in.Faults {
		f.AtMs = f.At.Milliseconds()
		if f.Recovered > 0 {
			f.DownMs = (f.Recovered - f.At).Milliseconds()
		}
		r.Faults[i] = f
	}
	for _, n := range in.Sent {
		r.Attempted += n
	}
	acked := make(map[ID]Ack, len(in.Acks))
	for _, a := range in.Acks {
		if _, dup := acked[a.ID]; !dup {
			acked[a.ID] = a
		}
	}
	r.Acknowledged = int64(len(acked))
	r.Unacknowledged = r.Attempted - r.Acknowledged

	found := make(map[ID][]Read, len(in.Reads))
	for _, rd := range in.Reads {
		if rd.ID.Seq >= in.Sent[rd.ID.Producer] {
			r.Unknown++
			continue
		}
		r.Read++
		found[rd.ID] = append(found[rd.ID], rd)
	}

	// Lost, moved, offset changed: walk the acknowledgements in a fixed order so samples are stable.
	ids := make([]ID, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmpID)
	for _, id := range ids {
		a := acked[id]
		copies := found[id]
		if len(copies) == 0 {
			r.Lost++
			sample(&r.LostSample, "%s acked at partition %d offset %d", id, a.Partition, a.Offset)
			continue
		}
		inPart, atOffset := false, false
		for _, c := range copies {
			if c.Partition == a.Partition {
				inPart = true
				atOffset = atOffset || c.Offset == a.Offset
			}
		}
		switch {
		case !inPart:
			r.Moved++
			sample(&r.MovedSample, "%s acked at partition %d offset %d, read at partition %d offset %d", id, a.Partition, a.Offset, copies[0].Partition, copies[0].Offset)
		case !atOffset:
			r.OffsetChanged++
			sample(&r.OffsetSample, "%s acked at partition %d offset %d, read at another offset", id, a.Partition, a.Offset)
		}
	}
	// Duplicates and records present without an acknowledgement.
	readIDs := make([]ID, 0, len(found))
	for id := range found {
		readIDs = append(readIDs, id)
	}
	slices.SortFunc(readIDs, cmpID)
	for _, id := range readIDs {
		copies := found[id]
		if _, ok := acked[id]; !ok {
			r.UnacknowledgedPresent++
		}
		if len(copies) > 1 {
			r.Duplicated += int64(len(copies) - 1)
			sample(&r.DuplicatedSample, "%s read %d times (first at partition %d offset %d)", id, len(copies), copies[0].Partition, copies[0].Offset)
		}
	}
	r.Reordered, r.ReorderedSample = reordered(in.Reads, in.Sent)
	r.LongestStallMs, r.LongestStallAtMs, r.StallFault = longestStall(in.Acks, in.Faults, in.ProduceEnd)
	r.judge(in.Problems)
	return r
}

func cmpID(a, b ID) int {
	return cmp.Or(cmp.Compare(a.Producer, b.Producer), cmp.Compare(a.Seq, b.Seq))
}

// reordered walks each partition in offset order and, per producer, counts the records that come
// after one with a higher sequence number. A second copy of a record already seen in the partition
// is a duplicate, not a reordering.
func reordered(reads []Read, sent map[int]int64) (int64, []string) {
	type key struct {
		partition int32
		producer  int
	}
	byPart := map[key][]Read{}
	for _, rd := range reads {
		if rd.ID.Seq >= sent[rd.ID.Producer] {
			continue
		}
		k := key{rd.Partition, rd.ID.Producer}
		byPart[k] = append(byPart[k], rd)
	}
	keys := make([]key, 0, len(byPart))
	for k := range byPart {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.producer, b.producer))
	})
	var n int64
	var samples []string
	for _, k := range keys {
		rs := byPart[k]
		slices.SortStableFunc(rs, func(a, b Read) int { return cmp.Compare(a.Offset, b.Offset) })
		seen := map[int64]bool{}
		var maxSeq int64 = -1
		var maxOff int64
		for _, rd := range rs {
			if seen[rd.ID.Seq] {
				continue
			}
			seen[rd.ID.Seq] = true
			if rd.ID.Seq < maxSeq {
				n++
				sample(&samples, "%s at partition %d offset %d after p%d/%d at offset %d", rd.ID, rd.Partition, rd.Offset, k.producer, maxSeq, maxOff)
				continue
			}
			maxSeq, maxOff = rd.ID.Seq, rd.Offset
		}
	}
	return n, samples
}

// longestStall is the longest gap between successive acknowledgements, the last one ending at
// end (when producing stopped). With faults, only gaps that end after the first fault began count:
// the stall a fault caused, not a slow start.
func longestStall(acks []Ack, faults []Fault, end time.Duration) (ms, atMs int64, fault string) {
	times := make([]time.Duration, 0, len(acks)+1)
	for _, a := range acks {
		times = append(times, a.At)
	}
	slices.Sort(times)
	if end > 0 && (len(times) == 0 || end > times[len(times)-1]) {
		times = append(times, end)
	}
	from := time.Duration(-1)
	if len(faults) > 0 {
		from = faults[0].At
		for _, f := range faults {
			from = min(from, f.At)
		}
	}
	var best, bestAt time.Duration
	for i := 1; i < len(times); i++ {
		if times[i] <= from {
			continue
		}
		if g := times[i] - times[i-1]; g > best {
			best, bestAt = g, times[i-1]
		}
	}
	if best == 0 {
		return 0, 0, ""
	}
	// The fault that caused it: the first one that began during the stall, else the last one
	// that began before it.
	var cause *Fault
	for i := range faults {
		f := &faults[i]
		switch {
		case f.At >= bestAt && f.At <= bestAt+best:
			if cause == nil || cause.At < bestAt || f.At < cause.At {
				cause = f
			}
		case f.At < bestAt:
			if cause == nil || (cause.At < bestAt && f.At > cause.At) {
				cause = f
			}
		}
	}
	if cause != nil {
		fault = fmt.Sprintf("%s node %d at %s", cause.Kind, cause.Node, cause.At.Round(time.Millisecond))
	}
	return best.Milliseconds(), bestAt.Milliseconds(), fault
}

// judge fills Problems and OK: a run passes when something was acknowledged and every
// acknowledged record is read back exactly once, in order, where it was acknowledged, and no node
// misbehaved.
func (r *Report) judge(problems []string) {
	add := func(n int64, what string) {
		if n > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d %s", n, what))
		}
	}
	if r.Acknowledged == 0 {
		r.Problems = append(r.Problems, "nothing was acknowledged")
	}
	add(r.Lost, "acknowledged records lost")
	add(r.Duplicated, "duplicated records")
	add(r.Reordered, "reordered records")
	add(r.Moved, "acknowledged records moved to another partition")
	add(r.OffsetChanged, "acknowledged records at another offset")
	add(r.Corrupt, "corrupt records (value does not match key)")
	add(r.Unknown, "records with a sequence number never sent")
	r.Problems = append(r.Problems, problems...)
	r.OK = len(r.Problems) == 0
}
