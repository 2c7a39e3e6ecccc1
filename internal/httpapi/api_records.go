package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/moldau/moldau/internal/record"
)

// The records endpoint (GET /api/v1/topics/{name}/records) streams NDJSON: one "record" line per
// match, a "progress" line at least every progressInterval or progressRecords records scanned,
// and a last "done" line. The scan reads every batch from the start offsets up to the high
// watermarks taken when the request started, so a filter never skips a record; it stops early
// at limit matches, max_scan records scanned, or when the client goes away.

const (
	progressInterval = 500 * time.Millisecond
	progressRecords  = 10000
	// readBytes is how much one read of a partition asks for.
	readBytes = 1 << 20
	maxLimit  = 10000
)

// Value is a decoded key, value or header value.
type Value struct {
	Encoding string `json:"encoding"` // utf8, json or hex
	Text     string `json:"text"`
}

type recordLine struct {
	Type          string        `json:"type"` // "record"
	Partition     int32         `json:"partition"`
	Offset        int64         `json:"offset"`
	Timestamp     int64         `json:"timestamp"`
	TimestampType string        `json:"timestamp_type"` // create_time or log_append_time
	Key           *Value        `json:"key"`
	Value         *Value        `json:"value"`
	Headers       []headerValue `json:"headers"`
	Size          int           `json:"size"`
}

type headerValue struct {
	Key   string `json:"key"`
	Value *Value `json:"value"`
}

type progressLine struct {
	Type    string `json:"type"` // "progress"
	Scanned int64  `json:"scanned"`
	Matched int64  `json:"matched"`
}

type doneLine struct {
	Type    string `json:"type"` // "done"
	Scanned int64  `json:"scanned"`
	Matched int64  `json:"matched"`
	// Next is, per partition scanned, the offset to continue from.
	Next map[string]int64 `json:"next"`
	// Reason is why the scan stopped: end, limit, max_scan or error.
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
}

// scanParams are the parsed query of a records request.
type scanParams struct {
	partitions []int32
	start      string // offset, timestamp, earliest, latest
	at         int64  // the offset or timestamp
	limit      int64
	maxScan    int64 // 0: unbounded
	filter     []byte
	filterIn   string // any, key, value, header
	decode     string // auto, utf8, json, hex
}

func (a *api) parseScan(r *http.Request, topic TopicSummary) (scanParams, error) {
	q := r.URL.Query()
	p := scanParams{start: "earliest", filter: []byte(q.Get("filter")), filterIn: q.Get("filter_in"), decode: q.Get("decode")}
	if s := q.Get("partition"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 || int(n) >= topic.Partitions {
			return p, notFound("partition %s: topic %s has partitions 0..%d", s, topic.Name, topic.Partitions-1)
		}
		p.partitions = []int32{int32(n)}
	} else {
		for i := range topic.Partitions {
			p.partitions = append(p.partitions, int32(i))
		}
	}
	set := 0
	if s := q.Get("offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return p, badRequest("offset=%q: not an integer", s)
		}
		p.start, p.at = "offset", n
		set++
	}
	if s := q.Get("timestamp"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return p, badRequest("timestamp=%q: not an integer (unix ms)", s)
		}
		p.start, p.at = "timestamp", n
		set++
	}
	if s := q.Get("from"); s != "" {
		if s != "earliest" && s != "latest" {
			return p, badRequest("from=%q: earliest or latest", s)
		}
		p.start = s
		set++
	}
	if set > 1 {
		return p, badRequest("give one of offset, timestamp and from")
	}
	var err error
	if p.limit, err = queryInt(r, "limit", 50); err != nil {
		return p, err
	}
	if p.limit < 1 || p.limit > maxLimit {
		return p, badRequest("limit=%d: must be 1..%d", p.limit, maxLimit)
	}
	if p.maxScan, err = queryInt(r, "max_scan", 0); err != nil {
		return p, err
	}
	if p.maxScan < 0 {
		return p, badRequest("max_scan=%d: must be >= 0", p.maxScan)
	}
	switch p.filterIn {
	case "":
		p.filterIn = "any"
	case "any", "key", "value", "header":
	default:
		return p, badRequest("filter_in=%q: any, key, value or header", p.filterIn)
	}
	switch p.decode {
	case "":
		p.decode = "auto"
	case "auto", "utf8", "json", "hex":
	default:
		return p, badRequest("decode=%q: auto, utf8, json or hex", p.decode)
	}
	return p, nil
}

func (a *api) topicSummary(name string) (TopicSummary, error) {
	for _, t := range a.b.Topics() {
		if t.Name == name {
			return t, nil
		}
	}
	return TopicSummary{}, notFoundTopic(name)
}

func notFoundTopic(name string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "UNKNOWN_TOPIC_OR_PARTITION", KafkaCode: 3, Message: "topic " + name + " does not exist"}
}

// cursor is the scan of one partition: from next up to end (the high watermark at the start).
type cursor struct {
	partition int32
	next, end int64
}

func (a *api) readRecords(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	topic, err := a.topicSummary(name)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := a.parseScan(r, topic)
	if err != nil {
		writeError(w, err)
		return
	}
	cursors, err := a.startCursors(r, name, p)
	if err != nil {
		writeError(w, err)
		return
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var writeErr error
	emit := func(v any) {
		if writeErr == nil {
			writeErr = enc.Encode(v)
		}
	}
	flush := func() {
		if flusher != nil && writeErr == nil {
			flusher.Flush()
		}
	}

	var scanned, matched, lastProgressAt int64
	lastProgress := time.Now()
	done := doneLine{Type: "done", Next: map[string]int64{}, Reason: "end"}
	active := cursors
scan:
	for len(active) > 0 {
		// One read per partition still below its end, round robin, until every one is done.
		kept := active[:0]
		for _, c := range active {
			if err := ctx.Err(); err != nil {
				return // the client went away: nothing is listening for the done line
			}
			if writeErr != nil {
				return
			}
			data, err := a.b.ReadBatches(ctx, name, c.partition, c.next, readBytes)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				done.Reason, done.Error = "error", fmt.Sprintf("partition %d offset %d: %v", c.partition, c.next, err)
				break scan
			}
			if len(data) == 0 {
				c.next = c.end // nothing readable up to the end (deleted by retention meanwhile)
				continue
			}
			stop := ""
			err = eachRecord(data, func(h record.BatchHeader, rec record.Record, off int64) bool {
				if off < c.next {
					return true // the batch started before the offset asked for
				}
				if off >= c.end {
					return false
				}
				c.next = off + 1
				scanned++
				if p.match(rec) {
					matched++
					emit(p.line(c.partition, off, h, rec))
					if matched >= p.limit {
						stop = "limit"
						return false
					}
				}
				if p.maxScan > 0 && scanned >= p.maxScan {
					stop = "max_scan"
					return false
				}
				if scanned-lastProgressAt >= progressRecords || time.Since(lastProgress) >= progressInterval {
					emit(progressLine{"progress", scanned, matched})
					flush()
					lastProgressAt, lastProgress = scanned, time.Now()
				}
				return true
			}, func(h record.BatchHeader) {
				// A control batch (transaction marker) holds no data record: step over it.
				if h.LastOffset() >= c.next {
					c.next = min(h.LastOffset()+1, c.end)
				}
			})
			if err != nil {
				done.Reason, done.Error = "error", fmt.Sprintf("partition %d offset %d: %v", c.partition, c.next, err)
				break scan
			}
			if stop != "" {
				done.Reason = stop
				break scan
			}
			if c.next < c.end {
				kept = append(kept, c)
			}
		}
		active = kept
		flush()
		if time.Since(lastProgress) >= progressInterval {
			emit(progressLine{"progress", scanned, matched})
			flush()
			lastProgressAt, lastProgress = scanned, time.Now()
		}
	}
	for _, c := range cursors {
		done.Next[strconv.Itoa(int(c.partition))] = c.next
	}
	done.Scanned, done.Matched = scanned, matched
	emit(done)
	flush()
}

// startCursors resolves where each partition's scan starts and ends.
func (a *api) startCursors(r *http.Request, topic string, p scanParams) ([]*cursor, error) {
	ctx := r.Context()
	ends, err := a.b.ListOffsets(ctx, topic, p.partitions, -1)
	if err != nil {
		return nil, err
	}
	starts, err := a.b.ListOffsets(ctx, topic, p.partitions, -2)
	if err != nil {
		return nil, err
	}
	var from map[int32]int64
	if p.start == "timestamp" {
		if from, err = a.b.ListOffsets(ctx, topic, p.partitions, p.at); err != nil {
			return nil, err
		}
	}
	out := make([]*cursor, 0, len(p.partitions))
	for _, part := range p.partitions {
		start, end := starts[part], ends[part]
		var next int64
		switch p.start {
		case "earliest":
			next = start
		case "latest":
			next = max(start, end-p.limit)
		case "offset":
			next = max(start, p.at)
		case "timestamp":
			next = from[part]
			if next < 0 {
				next = end
			}
			next = max(start, next)
		}
		next = min(next, end)
		out = append(out, &cursor{partition: part, next: next, end: end})
	}
	return out, nil
}

// eachRecord calls fn for every record of the data batches in data (in offset order) until fn
// returns false, and control for every control batch.
func eachRecord(data []byte, fn func(record.BatchHeader, record.Record, int64) bool, control func(record.BatchHeader)) error {
	batches, err := record.Split(data)
	if err != nil && len(batches) == 0 {
		return err
	} // else the error is a partial batch at the end of a fetch: the next read starts there
	for _, b := range batches {
		h, recs, err := record.Records(b)
		if err != nil {
			return fmt.Errorf("decode batch: %w", err)
		}
		if h.Control() {
			control(h)
			continue
		}
		for _, rec := range recs {
			if !fn(h, rec, h.BaseOffset+int64(rec.OffsetDelta)) {
				return nil
			}
		}
	}
	return nil
}

// match reports whether rec passes the text filter (a byte substring of the key, the value, a
// header's key or value, as filter_in says).
func (p *scanParams) match(rec record.Record) bool {
	if len(p.filter) == 0 {
		return true
	}
	if (p.filterIn == "any" || p.filterIn == "key") && bytes.Contains(rec.Key, p.filter) {
		return true
	}
	if (p.filterIn == "any" || p.filterIn == "value") && bytes.Contains(rec.Value, p.filter) {
		return true
	}
	if p.filterIn == "any" || p.filterIn == "header" {
		for _, h := range rec.Headers {
			if bytes.Contains([]byte(h.Key), p.filter) || bytes.Contains(h.Value, p.filter) {
				return true
			}
		}
	}
	return false
}

func (p *scanParams) line(partition int32, off int64, h record.BatchHeader, rec record.Record) recordLine {
	l := recordLine{
		Type: "record", Partition: partition, Offset: off, Timestamp: h.Timestamp(rec),
		TimestampType: "create_time", Key: decodeValue(rec.Key, p.decode), Value: decodeValue(rec.Value, p.decode),
		Headers: make([]headerValue, 0, len(rec.Headers)), Size: len(rec.Key) + len(rec.Value),
	}
	if h.LogAppendTime() {
		l.TimestampType = "log_append_time"
	}
	for _, hd := range rec.Headers {
		l.Headers = append(l.Headers, headerValue{Key: hd.Key, Value: decodeValue(hd.Value, p.decode)})
		l.Size += len(hd.Key) + len(hd.Value)
	}
	return l
}

// decodeValue renders b as how asks: auto is json when b parses as a JSON object or array, utf8
// when it is valid UTF-8, else hex; json and utf8 fall back as auto does when b is not that;
// hex is always hex. nil (a null key or value) stays nil.
func decodeValue(b []byte, how string) *Value {
	if b == nil {
		return nil
	}
	switch how {
	case "hex":
		return &Value{"hex", hex.EncodeToString(b)}
	case "json":
		if json.Valid(b) {
			return &Value{"json", string(b)}
		}
	case "utf8":
		if utf8.Valid(b) {
			return &Value{"utf8", string(b)}
		}
		return &Value{"hex", hex.EncodeToString(b)}
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		return &Value{"json", string(b)}
	}
	if utf8.Valid(b) {
		return &Value{"utf8", string(b)}
	}
	return &Value{"hex", hex.EncodeToString(b)}
}
