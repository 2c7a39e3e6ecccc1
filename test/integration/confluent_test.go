package integration

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// codecs are the compression types every client round trip runs with, and the codec id each
// leaves in a stored batch's attributes (the broker keeps the producer's compression when the
// topic's compression.type is "producer", the default).
var codecs = []struct {
	name string
	id   int16
}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

// pyRecord is a record as testdata/confluent.py reads and prints it.
type pyRecord struct {
	Partition     *int32       `json:"partition,omitempty"`
	Offset        int64        `json:"offset"`
	Key           *string      `json:"key"`
	Value         *string      `json:"value"`
	Headers       [][2]*string `json:"headers"`
	Timestamp     int64        `json:"timestamp,omitempty"`
	TimestampType int          `json:"timestamp_type,omitempty"`
}

func (r pyRecord) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

func str(s string) *string { return &s }

func i32(i int32) *int32 { return &i }

// delivery is a delivery report printed by confluent.py produce.
type delivery struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error"`
}

// confluentProduce produces recs with confluent-kafka-python (acks=all, idempotent, codec) and
// returns their delivery reports in order.
func confluentProduce(t *testing.T, addr, topic, codec string, recs []pyRecord) []delivery {
	t.Helper()
	needConfluent(t)
	var in strings.Builder
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	out := mustRun(t, in.String(), python, "testdata/confluent.py", "produce", addr, topic, codec)
	var ds []delivery
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var d delivery
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("delivery report %q: %v", line, err)
		}
		ds = append(ds, d)
	}
	if len(ds) != len(recs) {
		t.Fatalf("%d delivery reports for %d records:\n%s", len(ds), len(recs), out)
	}
	return ds
}

// confluentConsume reads topic with confluent-kafka-python from the beginning (or from the
// offsets of fromTimestamp, when it is given) to the end of every partition.
func confluentConsume(t *testing.T, addr, topic string, fromTimestamp ...int64) []pyRecord {
	t.Helper()
	needConfluent(t)
	args := []string{"testdata/confluent.py", "consume", addr, topic}
	for _, ts := range fromTimestamp {
		args = append(args, strconv.FormatInt(ts, 10))
	}
	out := mustRun(t, "", python, args...)
	var recs []pyRecord
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var r pyRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// checkCodec fails unless every batch stored in topic's partitions carries codec.
func checkCodec(t *testing.T, addr, topic string, partitions int32, codec int16) {
	t.Helper()
	for p := range partitions {
		batches := storedBatches(t, addr, topic, p)
		if len(batches) == 0 {
			t.Errorf("%s-%d: no batches served", topic, p)
		}
		for _, b := range batches {
			if b.Codec != codec {
				t.Errorf("%s-%d: stored batches %v, want every one with codec %d", topic, p, batches, codec)
				break
			}
		}
	}
}

// TestConfluentRoundTripEveryCodec: confluent-kafka-python produces with each compression.type,
// acks=all and enable.idempotence=true, and reads back the same keys (a null one among them),
// values (an empty one), headers (repeated names, an empty and a null value, in order) and
// explicit CreateTime timestamps, at the offsets its delivery reports gave.
func TestConfluentRoundTripEveryCodec(t *testing.T) {
	needConfluent(t)
	b := startBroker(t)
	const base = int64(1_600_000_000_000)
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := "confluent-" + codec.name
			createTopic(t, b.Addr, topic, 2, nil)
			var recs []pyRecord
			for i := range 40 {
				r := pyRecord{
					Partition: i32(int32(i % 2)),
					Key:       str(fmt.Sprintf("key-%02d", i)),
					Value:     str(fmt.Sprintf("%s value %02d %s", codec.name, i, strings.Repeat("compressible ", 8))),
					Headers:   [][2]*string{{str("trace"), str("t-" + strconv.Itoa(i))}, {str("dup"), str("1")}, {str("dup"), str("2")}},
					Timestamp: base + int64(i)*1000 + int64(i%3), // not monotonic across partitions
				}
				switch i {
				case 5:
					r.Key = nil
				case 6:
					r.Value = str("")
				case 7:
					r.Headers = nil
				case 8:
					r.Headers = [][2]*string{{str("empty"), str("")}, {str("null"), nil}}
				}
				recs = append(recs, r)
			}
			ds := confluentProduce(t, b.Addr, topic, codec.name, recs)
			want := map[string]pyRecord{}
			for i, d := range ds {
				if d.Error != "" || d.Partition != *recs[i].Partition {
					t.Fatalf("record %d: delivery report %+v", i, d)
				}
				r := recs[i]
				r.Offset, r.TimestampType = d.Offset, 1 // CreateTime
				if r.Headers == nil {
					r.Headers = [][2]*string{}
				}
				want[fmt.Sprintf("%d/%d", d.Partition, d.Offset)] = r
			}
			got := confluentConsume(t, b.Addr, topic)
			if len(got) != len(want) {
				t.Errorf("consumed %d records, want %d", len(got), len(want))
			}
			for _, g := range got {
				at := fmt.Sprintf("%d/%d", *g.Partition, g.Offset)
				w, ok := want[at]
				if g.Headers == nil {
					g.Headers = [][2]*string{}
				}
				if !ok || !reflect.DeepEqual(g, w) {
					t.Errorf("partition/offset %s:\n got %v\nwant %v", at, g, w)
				}
			}
			checkCodec(t, b.Addr, topic, 2, codec.id)
		})
	}
	b.stop()
}

// TestReplayByTimestamp: records with timestamps T1 < T2 < T3 in two batches (one gzip, one
// not); a consumer starting at a timestamp gets exactly the records at or after it, also when the
// first such record is in the middle of a batch.
func TestReplayByTimestamp(t *testing.T) {
	kcat := needKcat(t)
	needConfluent(t)
	b := startBroker(t)
	const topic = "replay"
	createTopic(t, b.Addr, topic, 1, nil)
	const t1, t2, t3 = int64(1_700_000_000_000), int64(1_700_000_060_000), int64(1_700_000_120_000)
	rec := func(v string, ts int64) pyRecord {
		return pyRecord{Partition: i32(0), Key: str("k" + v), Value: str(v), Timestamp: ts}
	}
	confluentProduce(t, b.Addr, topic, "gzip", []pyRecord{rec("a", t1), rec("b", t1), rec("c", t2)})
	confluentProduce(t, b.Addr, topic, "none", []pyRecord{rec("d", t2), rec("e", t3), rec("f", t3)})
	if got := storedBatches(t, b.Addr, topic, 0); len(got) != 2 {
		t.Fatalf("stored batches %v, want the two produced", got)
	}

	for _, tc := range []struct {
		from int64
		want string // offset:value of every record kcat prints
	}{
		{t1 - 1, "0:a 1:b 2:c 3:d 4:e 5:f"},
		{t1, "0:a 1:b 2:c 3:d 4:e 5:f"},
		{t1 + 1, "2:c 3:d 4:e 5:f"}, // mid first batch
		{t2, "2:c 3:d 4:e 5:f"},
		{t2 + 1, "4:e 5:f"}, // mid second batch
		{t3, "4:e 5:f"},
	} {
		out := mustRun(t, "", kcat, "-C", "-b", b.Addr, "-t", topic, "-p", "0", "-o", "s@"+strconv.FormatInt(tc.from, 10), "-e", "-q", "-f", "%o:%s\n")
		if got := strings.Join(strings.Fields(out), " "); got != tc.want {
			t.Errorf("kcat -o s@%d: got %q, want %q", tc.from, got, tc.want)
		}
	}

	// offsets_for_times, and a consumer starting from its answer.
	for _, tc := range []struct {
		ts   int64
		want int64
	}{{t1 - 1, 0}, {t1 + 1, 2}, {t2, 2}, {t3, 4}, {t3 + 1, -1}} {
		out := mustRun(t, "", python, "testdata/confluent.py", "offsets-for-times", b.Addr, topic, "0", strconv.FormatInt(tc.ts, 10))
		var got struct{ Offset int64 }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("offsets-for-times output %q: %v", out, err)
		}
		if got.Offset != tc.want {
			t.Errorf("offsets_for_times(%d) = %d, want %d", tc.ts, got.Offset, tc.want)
		}
	}
	var values []string
	for _, r := range confluentConsume(t, b.Addr, topic, t2+1) {
		values = append(values, fmt.Sprintf("%d:%s@%d", r.Offset, *r.Value, r.Timestamp))
	}
	if got, want := strings.Join(values, " "), fmt.Sprintf("4:e@%d 5:f@%d", t3, t3); got != want {
		t.Errorf("confluent consume from %d: got %q, want %q", t2+1, got, want)
	}
	b.stop()
}
