package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const consumeUsage = `Usage: moldau consume TOPIC [options]

Prints records of TOPIC, one per line (the value, by default), until interrupted, --count records
were printed, or --timeout passed without a record.

--format is a template: %k key, %v value, %t timestamp (ms), %p partition, %o offset,
%h headers (k:v,k:v), %T topic, %% a percent sign; \n and \t are escapes. A newline is
added unless the template ends with one.`

// startKind says where a consumer starts.
type startKind int

const (
	startLatest    startKind = iota // the log end: only new records
	startEarliest                   // the log start
	startOffset                     // an absolute offset, in every selected partition
	startTimestamp                  // the first offset whose timestamp is >= a millisecond
)

// consumeSpec describes what consumeRecords reads.
type consumeSpec struct {
	topics      []string
	regex       bool  // topics are regular expressions (--include)
	partition   int32 // -1: all partitions
	start       startKind
	offset      int64 // startOffset
	timestamp   int64 // startTimestamp, ms since the epoch
	group       string
	maxMessages int64         // <= 0: unlimited
	idle        time.Duration // > 0: stop when no record arrives for this long
	opts        []kgo.Opt
	// autoCreate asks the broker to create missing topics (Kafka's consumer default,
	// allow.auto.create.topics=true; the broker's auto.create.topics.enable decides).
	autoCreate bool
	// warnMissing reports, once, a subscribed topic that does not exist (and was not created),
	// then keeps waiting for it, as Kafka's console consumer does.
	warnMissing bool
}

// errIdleTimeout reports that consumeRecords stopped because --timeout passed without records.
var errIdleTimeout = errors.New("timed out waiting for records")

// explicitOffsets resolves the per-partition start offsets for partition-, offset- and
// timestamp-based starts (no consumer group is involved then).
func explicitOffsets(e *env, adm *kadm.Client, spec consumeSpec) (map[string]map[int32]kgo.Offset, error) {
	ctx, cancel := e.adminCtx()
	defer cancel()
	md, err := adm.Metadata(ctx, spec.topics...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var listed kadm.ListedOffsets
	if spec.start == startTimestamp {
		if listed, err = adm.ListOffsetsAfterMilli(ctx, spec.timestamp, spec.topics...); err != nil {
			return nil, fmt.Errorf("list offsets after %d: %w", spec.timestamp, err)
		}
	}
	out := map[string]map[int32]kgo.Offset{}
	for _, t := range spec.topics {
		td, ok := md.Topics[t]
		if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %q does not exist", t)
		}
		if td.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", t, td.Err)
		}
		ps := map[int32]kgo.Offset{}
		for p := range td.Partitions {
			if spec.partition >= 0 && p != spec.partition {
				continue
			}
			var o kgo.Offset
			switch spec.start {
			case startLatest:
				o = kgo.NewOffset().AtEnd()
			case startEarliest:
				o = kgo.NewOffset().AtStart()
			case startOffset:
				o = kgo.NewOffset().At(spec.offset)
			case startTimestamp:
				lo, ok := listed.Lookup(t, p)
				if !ok || lo.Err != nil {
					return nil, fmt.Errorf("no offset for %s[%d] at %d: %v", t, p, spec.timestamp, lo.Err)
				}
				o = kgo.NewOffset().At(lo.Offset)
			}
			ps[p] = o
		}
		if spec.partition >= 0 && len(ps) == 0 {
			return nil, fmt.Errorf("topic %s has no partition %d (it has %d)", t, spec.partition, len(td.Partitions))
		}
		out[t] = ps
	}
	return out, nil
}

// consumeRecords consumes per spec, calling emit for each record in order of arrival, until
// maxMessages records were emitted, the idle timeout passed (errIdleTimeout) or the context was
// cancelled. A group consumer commits exactly the records it emitted before it returns.
func consumeRecords(e *env, seeds []string, spec consumeSpec, emit func(*kgo.Record) error) (int64, error) {
	opts := append([]kgo.Opt{}, spec.opts...)
	explicit := spec.partition >= 0 || spec.start == startOffset || spec.start == startTimestamp
	switch {
	case explicit:
		if spec.group != "" {
			return 0, errors.New("a start partition, offset or timestamp cannot be combined with a consumer group")
		}
		adm, err := newAdmin(seeds)
		if err != nil {
			return 0, err
		}
		offsets, err := explicitOffsets(e, adm, spec)
		adm.Close()
		if err != nil {
			return 0, err
		}
		opts = append(opts, kgo.ConsumePartitions(offsets))
	default:
		reset := kgo.NewOffset().AtEnd()
		if spec.start == startEarliest {
			reset = kgo.NewOffset().AtStart()
		}
		opts = append(opts, kgo.ConsumeTopics(spec.topics...), kgo.ConsumeResetOffset(reset))
		if spec.autoCreate {
			opts = append(opts, kgo.AllowAutoTopicCreation())
		}
		if spec.regex {
			opts = append(opts, kgo.ConsumeRegex())
		}
		if spec.group != "" {
			opts = append(opts, kgo.ConsumerGroup(spec.group), kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second))
		}
	}
	// joined is closed once the client can fetch: at once without a group; with one, when the
	// first join ends (kgo calls OnPartitionsAssigned after every join, even an empty one). The
	// idle timeout counts from then, so a group's join (group.initial.rebalance.delay.ms, 3 s by
	// default) does not use it up.
	joined := make(chan struct{})
	if spec.group != "" {
		var once sync.Once
		opts = append(opts, kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { close(joined) })
		}))
	} else {
		close(joined)
	}
	cl, err := newClient(seeds, opts...)
	if err != nil {
		return 0, err
	}
	var count int64
	defer func() {
		if spec.group != "" {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				fmt.Fprintf(e.stderr, "%s: commit offsets for group %s: %v\n", e.name, spec.group, err)
			}
			cancel()
		}
		cl.Close()
	}()

	if spec.warnMissing && !spec.regex && !explicit {
		if missing := warnMissingTopics(e, cl, spec.topics, spec.autoCreate); len(missing) > 0 {
			// kgo looks for a missing topic again only at its metadata max age; poll for it, as
			// Kafka's consumer does, so the consumer starts as soon as the topic is created.
			ctx, cancel := context.WithCancel(e.ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				awaitTopics(ctx, cl, missing, spec.autoCreate)
			}()
			defer func() { cancel(); <-done }()
		}
	}
	warned := map[string]bool{}
	for {
		pollCtx, cancel := e.ctx, context.CancelFunc(func() {})
		if spec.idle > 0 {
			pollCtx, cancel = idleContext(e.ctx, spec.idle, joined)
		}
		fetches := cl.PollFetches(pollCtx)
		timedOut := pollCtx.Err() != nil && e.ctx.Err() == nil
		cancel()
		if fetches.IsClientClosed() {
			return count, nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			msg := fmt.Sprintf("%s: warning: fetch %s[%d]: %v", e.name, t, p, err)
			if !warned[msg] {
				warned[msg] = true
				fmt.Fprintln(e.stderr, msg)
			}
		})
		n := 0
		for _, r := range fetches.Records() {
			if err := emit(r); err != nil {
				return count, err
			}
			n++
			count++
			if spec.group != "" {
				cl.MarkCommitRecords(r)
			}
			if spec.maxMessages > 0 && count >= spec.maxMessages {
				return count, nil
			}
		}
		if e.ctx.Err() != nil {
			return count, nil
		}
		if n == 0 && timedOut {
			return count, errIdleTimeout
		}
	}
}

// idleContext is a context cancelled idle after ready is closed (or with parent).
func idleContext(parent context.Context, idle time.Duration, ready <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		t := time.NewTimer(idle)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// parseStart parses an --offset value: earliest, latest or a non-negative number.
func parseStart(s string) (startKind, int64, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "earliest", "beginning", "oldest":
		return startEarliest, 0, true
	case "latest", "end", "newest":
		return startLatest, 0, true
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, 0, false
	}
	return startOffset, n, true
}

// parseTimestamp accepts milliseconds since the epoch or an RFC 3339 time (a date-time without a
// zone is read in loc, as Kafka's --to-datetime does).
func parseTimestamp(s string, loc *time.Location) (int64, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), true
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UnixMilli(), true
		}
	}
	return 0, false
}

// parseIdle accepts a Go duration ("5s") or a number of milliseconds.
func parseIdle(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Millisecond, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}

// recordTemplate renders records for moldau consume --format.
type recordTemplate string

func (t recordTemplate) write(w io.Writer, r *kgo.Record) error {
	var b strings.Builder
	s := string(t)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		if c != '%' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'k':
			b.Write(r.Key)
		case 'v':
			b.Write(r.Value)
		case 't':
			b.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))
		case 'p':
			b.WriteString(itoa32(r.Partition))
		case 'o':
			b.WriteString(strconv.FormatInt(r.Offset, 10))
		case 'T':
			b.WriteString(r.Topic)
		case 'h':
			for j, h := range r.Headers {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(h.Key)
				b.WriteByte(':')
				b.Write(h.Value)
			}
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	out := b.String()
	if !strings.HasSuffix(out, "\n") && !strings.HasSuffix(s, `\n`) {
		out += "\n"
	}
	_, err := io.WriteString(w, out)
	return err
}

// jsonRecord is one line of moldau consume --json. Keys and values are strings when they are
// valid UTF-8; otherwise they are base64 in key_b64 / value_b64.
type jsonRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp int64             `json:"timestamp"`
	Key       *string           `json:"key"`
	KeyB64    []byte            `json:"key_b64,omitempty"`
	Value     *string           `json:"value"`
	ValueB64  []byte            `json:"value_b64,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func writeJSONRecord(w io.Writer, r *kgo.Record) error {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli()}
	text := func(b []byte, s **string, raw *[]byte) {
		switch {
		case b == nil:
		case utf8.Valid(b):
			v := string(b)
			*s = &v
		default:
			*raw = b
		}
	}
	text(r.Key, &j.Key, &j.KeyB64)
	text(r.Value, &j.Value, &j.ValueB64)
	if len(r.Headers) > 0 {
		j.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			j.Headers[h.Key] = string(h.Value)
		}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func runConsume(e *env, args []string) error {
	fs := newFlagSet("consume")
	var bootstrap, offsetS, timestampS, partitionS, countS, group, timeoutS, format, isolation string
	var fromBeginning, printKey, asJSON bool
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start at the earliest offset (the group's reset policy with --group)")
	fs.StringVar(&offsetS, "offset", "", "start offset: earliest, latest or N (N in every partition unless --partition)")
	fs.StringVar(&timestampS, "timestamp", "", "start at the first record at or after this time: ms since the epoch or RFC 3339")
	fs.StringVar(&partitionS, "partition", "-1", "only this partition (-1: all)")
	stringVars(fs, &countS, "0", "exit after this many records (0: unlimited)", "count", "n")
	stringVars(fs, &group, "", "consume as this consumer group and commit what was printed", "group", "g")
	fs.StringVar(&timeoutS, "timeout", "", "exit when no record arrived for this long (e.g. 5s, or ms)")
	fs.StringVar(&format, "format", "", "output template (see above)")
	fs.BoolVar(&printKey, "print-key", false, "print key<TAB>value")
	fs.BoolVar(&asJSON, "json", false, "print each record as a JSON object")
	fs.StringVar(&isolation, "isolation-level", "read_uncommitted", "read_committed (skip aborted transactions, stop at open ones) or read_uncommitted")
	pos, err := e.parseArgs(fs, args, consumeUsage)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return e.usagef("want exactly one topic, got %d arguments: moldau consume TOPIC [options]", len(pos))
	}
	spec := consumeSpec{topics: pos, partition: -1, group: group}
	iso, err := e.isolationOpt(isolation)
	if err != nil {
		return err
	}
	spec.opts = append(spec.opts, iso)
	p, err := e.parseInt("partition", partitionS, -1, "a partition number >= 0 (or -1 for all)")
	if err != nil {
		return err
	}
	spec.partition = int32(p)
	if spec.maxMessages, err = e.parseInt("count", countS, 0, "a non-negative integer"); err != nil {
		return err
	}
	if timeoutS != "" {
		d, ok := parseIdle(timeoutS)
		if !ok || d == 0 {
			return e.argf("--timeout must be a positive duration like 5s or a number of milliseconds, got %q", timeoutS)
		}
		spec.idle = d
	}
	starts := 0
	if fromBeginning {
		starts++
		spec.start = startEarliest
	}
	if offsetS != "" {
		starts++
		k, n, ok := parseStart(offsetS)
		if !ok {
			return e.argf("--offset must be earliest, latest or a non-negative offset, got %q", offsetS)
		}
		spec.start, spec.offset = k, n
	}
	if timestampS != "" {
		starts++
		ts, ok := parseTimestamp(timestampS, time.Local)
		if !ok {
			return e.argf("--timestamp must be milliseconds since the epoch or an RFC 3339 time like 2024-05-01T12:00:00Z, got %q", timestampS)
		}
		spec.start, spec.timestamp = startTimestamp, ts
	}
	if starts > 1 {
		return e.usagef("give at most one of --from-beginning, --offset and --timestamp")
	}
	if group != "" && (spec.partition >= 0 || spec.start == startOffset || spec.start == startTimestamp) {
		return e.usagef("--group starts at the group's committed offsets; it cannot be combined with --partition, --offset N or --timestamp (use 'moldau group reset-offsets' to move the group)")
	}
	if asJSON && (format != "" || printKey) {
		return e.usagef("--json cannot be combined with --format or --print-key")
	}
	tmpl := recordTemplate("%v")
	switch {
	case format != "":
		tmpl = recordTemplate(format)
	case printKey:
		tmpl = "%k\t%v"
	}
	seeds := e.bootstrap(bootstrap)
	if err := ensureTopicsExist(e, seeds, spec.topics); err != nil {
		return err
	}
	emit := func(r *kgo.Record) error { return tmpl.write(e.stdout, r) }
	if asJSON {
		emit = func(r *kgo.Record) error { return writeJSONRecord(e.stdout, r) }
	}
	_, err = consumeRecords(e, seeds, spec, emit)
	if errors.Is(err, errIdleTimeout) {
		return nil
	}
	return err
}

// ensureTopicsExist fails with a clear message when a topic is missing, rather than letting a
// consumer wait forever for it.
func ensureTopicsExist(e *env, seeds []string, topics []string) error {
	adm, err := newAdmin(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := e.adminCtx()
	defer cancel()
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var missing []string
	for _, t := range topics {
		if td, ok := md.Topics[t]; !ok || td.Err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("topic %s does not exist (create it with 'moldau topic create %s')", strings.Join(missing, ", "), missing[0])
	}
	return nil
}
