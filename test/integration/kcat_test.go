package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKcatRoundTripEveryCodec: for each codec, kcat produces keyed records with headers (a
// repeated name and an empty value among them; librdkafka stamps CreateTime), confluent-kafka-python
// adds records with explicit timestamps, and kcat reads everything back with
// -f '%p %o %T %k %s %h': keys, values, headers and timestamps as produced, batches stored with the
// producer's codec.
func TestKcatRoundTripEveryCodec(t *testing.T) {
	kcat := needKcat(t)
	needConfluent(t)
	b := startBroker(t)
	const base = int64(1_650_000_000_000)
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := "kcat-" + codec.name
			createTopic(t, b.Addr, topic, 1, nil)
			const n = 30
			var in strings.Builder
			var want []record
			for i := range n {
				v := fmt.Sprintf("%s-%02d-%s", codec.name, i, strings.Repeat("moldau", 12))
				fmt.Fprintf(&in, "key-%02d:%s\n", i, v)
				want = append(want, record{Offset: int64(i), Key: fmt.Sprintf("key-%02d", i), Value: v, Headers: "h1=a,h2=,h1=b"})
			}
			before := time.Now().UnixMilli()
			mustRun(t, in.String(), kcat, "-P", "-b", b.Addr, "-t", topic, "-p", "0", "-K", ":",
				"-H", "h1=a", "-H", "h2=", "-H", "h1=b", "-z", codec.name, "-X", "acks=all")
			after := time.Now().UnixMilli()

			var recs []pyRecord
			for i := range 10 {
				ts := base + int64(i)*60_000
				r := pyRecord{Partition: i32(0), Key: str(fmt.Sprintf("py-%d", i)), Value: str(fmt.Sprintf("py value %d %s", i, strings.Repeat("x", 50))),
					Headers: [][2]*string{{str("src"), str("python")}, {str("i"), str(strconv.Itoa(i))}}, Timestamp: ts}
				recs = append(recs, r)
				want = append(want, record{Offset: int64(n + i), Key: *r.Key, Value: *r.Value, Headers: "src=python,i=" + strconv.Itoa(i), Timestamp: ts})
			}
			confluentProduce(t, b.Addr, topic, codec.name, recs)

			out := mustRun(t, "", kcat, "-C", "-b", b.Addr, "-t", topic, "-o", "beginning", "-e", "-q",
				"-f", `%p\t%o\t%T\t%k\t%s\t%h\n`)
			got := parseKcat(t, out)
			if len(got) != len(want) {
				t.Errorf("kcat consumed %d records, want %d:\n%s", len(got), len(want), out)
			}
			for i := range min(len(got), len(want)) {
				g, w := got[i], want[i]
				if w.Timestamp == 0 { // stamped by librdkafka while kcat ran
					if g.Timestamp < before || g.Timestamp > after {
						t.Errorf("record %d: timestamp %d, want the CreateTime kcat set, within [%d, %d]", i, g.Timestamp, before, after)
					}
					w.Timestamp = g.Timestamp
				}
				if g != w {
					t.Errorf("record %d:\n got %v\nwant %v", i, g, w)
				}
			}
			checkCodec(t, b.Addr, topic, 1, codec.id)
		})
	}
	b.stop()
}

// parseKcat parses lines printed with -f '%p\t%o\t%T\t%k\t%s\t%h\n'.
func parseKcat(t *testing.T, out string) []record {
	t.Helper()
	var recs []record
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("kcat line %q: %d fields, want 6", line, len(f))
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		ts, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("kcat line %q: bad partition, offset or timestamp", line)
		}
		recs = append(recs, record{Partition: int32(p), Offset: o, Timestamp: ts, Key: f[3], Value: f[4], Headers: f[5]})
	}
	return recs
}
