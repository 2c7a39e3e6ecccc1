package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const produceUsage = `Usage: moldau produce TOPIC [options] < lines

Sends each line of standard input as one record and waits until every record is acknowledged.
Exits non-zero if any record could not be produced.`

// acksOpts maps an acks setting to client options. Anything weaker than all-ISR acks turns off
// idempotent writes, which require acks=all.
func (e *env) acksOpts(flagName, acks string) ([]kgo.Opt, error) {
	switch strings.ToLower(strings.TrimSpace(acks)) {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, e.argf("--%s must be one of all, -1, 1, 0, got %q", flagName, acks)
}

// compressionOpt maps a codec name to the producer's batch compression.
func (e *env) compressionOpt(flagName, codec string) (kgo.Opt, error) {
	var c kgo.CompressionCodec
	switch strings.ToLower(strings.TrimSpace(codec)) {
	case "", "none":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return nil, e.argf("--%s must be one of none, gzip, snappy, lz4, zstd, got %q", flagName, codec)
	}
	return kgo.ProducerBatchCompression(c), nil
}

// lineParser turns one input line (without its line terminator) into a record; lineNo is 1-based.
type lineParser func(line []byte, lineNo int) (*kgo.Record, error)

// produceResult summarises a produce run.
type produceResult struct {
	sent, failed int64
	firstErr     error
}

// produceLines reads r line by line, parses each line into a record and produces it to topic
// (partition >= 0 pins the partition; the client must use a manual partitioner then). With sync
// each record is acknowledged before the next line is read; otherwise records are pipelined and
// flushed at EOF. Per-record failures are reported to stderr (the first maxReported of them).
// A non-nil prompt gets ">" before each line is read, as Kafka's console producer prints it.
func produceLines(e *env, cl *kgo.Client, r io.Reader, prompt io.Writer, topic string, partition int32, parse lineParser, syncSend bool) (produceResult, error) {
	const maxReported = 10
	var (
		mu  sync.Mutex
		res produceResult
	)
	done := func(rec *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			res.sent++
			return
		}
		res.failed++
		if res.firstErr == nil {
			res.firstErr = err
		}
		if res.failed <= maxReported {
			fmt.Fprintf(e.stderr, "%s: error sending record to topic %s (key: %s, value: %d bytes): %v\n",
				e.name, topic, keyDesc(rec.Key), len(rec.Value), err)
		}
	}
	br := bufio.NewReaderSize(r, 1<<16)
	lineNo := 0
	for {
		if prompt != nil {
			_, _ = io.WriteString(prompt, ">")
		}
		line, readErr := br.ReadBytes('\n')
		if readErr != nil && readErr != io.EOF {
			return res, fmt.Errorf("read input: %w", readErr)
		}
		if len(line) == 0 && readErr == io.EOF {
			break
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		rec, err := parse(line, lineNo)
		if err != nil {
			// Give the records already sent a chance to land before reporting the bad line.
			_ = cl.Flush(e.ctx)
			return res, err
		}
		rec.Topic = topic
		if partition >= 0 {
			rec.Partition = partition
		}
		if syncSend {
			done(rec, cl.ProduceSync(e.ctx, rec).FirstErr())
		} else {
			cl.Produce(e.ctx, rec, done)
		}
		if readErr == io.EOF || e.ctx.Err() != nil {
			break
		}
	}
	// Flush waits for every buffered record's promise; a cancelled context abandons the wait.
	if err := cl.Flush(e.ctx); err != nil && !errors.Is(err, context.Canceled) {
		return res, fmt.Errorf("flush: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, nil
}

func keyDesc(k []byte) string {
	if k == nil {
		return "null"
	}
	return fmt.Sprintf("%d bytes", len(k))
}

func runProduce(e *env, args []string) error {
	fs := newFlagSet("produce")
	var bootstrap, keySep, partitionS, acks, compression, lingerS string
	var headers listFlag
	var verbose bool
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	fs.StringVar(&keySep, "key-separator", "", "split each line at the first occurrence into key and value (off by default; a line without it gets a null key)")
	fs.Var(&headers, "header", "header k=v added to every record (repeatable)")
	fs.StringVar(&partitionS, "partition", "-1", "produce to this partition (-1: the partitioner picks)")
	fs.StringVar(&acks, "acks", "all", "required acks: all, -1, 1 or 0")
	fs.StringVar(&compression, "compression", "none", "batch compression: none, gzip, snappy, lz4, zstd")
	fs.StringVar(&lingerS, "linger", "0s", "how long to wait to fill a batch (Go duration)")
	fs.BoolVar(&verbose, "v", false, "print a summary to stderr")
	pos, err := e.parseArgs(fs, args, produceUsage)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return e.usagef("want exactly one topic, got %d arguments: moldau produce TOPIC [options]", len(pos))
	}
	topic := pos[0]
	partition, err := e.parseInt("partition", partitionS, -1, "a partition number >= 0 (or -1)")
	if err != nil {
		return err
	}
	linger, err := time.ParseDuration(lingerS)
	if err != nil || linger < 0 {
		return e.argf("--linger must be a non-negative duration like 5ms, got %q", lingerS)
	}
	hdrMap, hdrOrder, err := e.parseKV("header", headers)
	if err != nil {
		return err
	}
	var hdrs []kgo.RecordHeader
	for _, k := range hdrOrder {
		hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(hdrMap[k])})
	}
	opts, err := e.acksOpts("acks", acks)
	if err != nil {
		return err
	}
	comp, err := e.compressionOpt("compression", compression)
	if err != nil {
		return err
	}
	// As kcat and Kafka's producer: ask the broker to create a missing topic, and let its
	// auto.create.topics.enable decide.
	opts = append(opts, comp, kgo.ProducerLinger(linger), kgo.RecordDeliveryTimeout(2*time.Minute), kgo.AllowAutoTopicCreation())
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := newClient(e.bootstrap(bootstrap), opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	sep := []byte(keySep)
	parse := func(line []byte, _ int) (*kgo.Record, error) {
		rec := &kgo.Record{Headers: hdrs}
		if len(sep) > 0 {
			if k, v, ok := bytes.Cut(line, sep); ok {
				rec.Key = bytes.Clone(k)
				rec.Value = bytes.Clone(v)
				return rec, nil
			}
		}
		rec.Value = bytes.Clone(line)
		return rec, nil
	}
	start := e.now()
	res, err := produceLines(e, cl, e.stdin, nil, topic, int32(partition), parse, false)
	if err != nil {
		return err
	}
	if verbose {
		fmt.Fprintf(e.stderr, "produced %d records to %s in %s (%d failed)\n", res.sent, topic, e.now().Sub(start).Round(time.Millisecond), res.failed)
	}
	if res.failed > 0 {
		if errors.Is(res.firstErr, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("%d of %d records failed: %s", res.failed, res.sent+res.failed, missingTopicMessage(topic, "moldau topic create "+topic))
		}
		return fmt.Errorf("%d of %d records failed; first error: %w", res.failed, res.sent+res.failed, res.firstErr)
	}
	return nil
}

// missingTopicMessage explains a produce that failed with UNKNOWN_TOPIC_OR_PARTITION although
// the producer asked for auto-creation: the broker has auto.create.topics.enable=false.
func missingTopicMessage(topic, create string) string {
	return fmt.Sprintf("topic %s does not exist and the broker does not create topics automatically (auto.create.topics.enable=false): create it with '%s'", topic, create)
}

// itoa32 is strconv.Itoa for int32.
func itoa32(n int32) string { return strconv.Itoa(int(n)) }
