package verify

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func ack(p int, seq int64, part int32, off int64, at time.Duration) Ack {
	return Ack{ID: ID{p, seq}, Partition: part, Offset: off, At: at}
}

func read(p int, seq int64, part int32, off int64) Read {
	return Read{ID: ID{p, seq}, Partition: part, Offset: off}
}

// counts is the part of a Report the table checks.
type counts struct {
	Attempted, Acknowledged, Unacknowledged, Read, Lost, Duplicated, Reordered, Moved, OffsetChanged, UnackedPresent, Unknown int64
	OK                                                                                                                        bool
}

func countsOf(r Report) counts {
	return counts{r.Attempted, r.Acknowledged, r.Unacknowledged, r.Read, r.Lost, r.Duplicated, r.Reordered, r.Moved, r.OffsetChanged, r.UnacknowledgedPresent, r.Unknown, r.OK}
}

func TestCheckAccounting(t *testing.T) {
	// Producer 0 sent 4 records, producer 1 sent 3; the clean case reads every one where it was acked.
	sent := map[int]int64{0: 4, 1: 3}
	cleanAcks := []Ack{ack(0, 0, 0, 0, 1), ack(0, 1, 1, 0, 2), ack(0, 2, 0, 1, 3), ack(0, 3, 0, 2, 4),
		ack(1, 0, 0, 3, 1), ack(1, 1, 1, 1, 2), ack(1, 2, 1, 2, 3)}
	cleanReads := func() []Read {
		var rs []Read
		for _, a := range cleanAcks {
			rs = append(rs, Read{a.ID, a.Partition, a.Offset})
		}
		return rs
	}
	tests := []struct {
		name  string
		acks  []Ack
		reads []Read
		want  counts
	}{
		{"clean", cleanAcks, cleanReads(), counts{7, 7, 0, 7, 0, 0, 0, 0, 0, 0, 0, true}},
		{"one lost", cleanAcks, cleanReads()[1:], counts{7, 7, 0, 6, 1, 0, 0, 0, 0, 0, 0, false}},
		{"duplicate in the same partition", cleanAcks, append(cleanReads(), read(0, 0, 0, 4)),
			counts{7, 7, 0, 8, 0, 1, 0, 0, 0, 0, 0, false}},
		{"reordered: p0/2 written after p0/3 in partition 0", cleanAcks,
			[]Read{read(0, 0, 0, 0), read(0, 1, 1, 0), read(0, 3, 0, 1), read(0, 2, 0, 2), read(1, 0, 0, 3), read(1, 1, 1, 1), read(1, 2, 1, 2)},
			// p0/2 and p0/3 are also at other offsets than acked
			counts{7, 7, 0, 7, 0, 0, 1, 0, 2, 0, 0, false}},
		{"other producers interleaved are not a reordering", cleanAcks,
			[]Read{read(1, 0, 0, 0), read(0, 0, 0, 1), read(0, 2, 0, 2), read(0, 3, 0, 3), read(0, 1, 1, 0), read(1, 1, 1, 1), read(1, 2, 1, 2)},
			counts{7, 7, 0, 7, 0, 0, 0, 0, 4, 0, 0, false}},
		{"moved to another partition", cleanAcks, append(cleanReads()[:6], read(1, 2, 0, 9)),
			counts{7, 7, 0, 7, 0, 0, 0, 1, 0, 0, 0, false}},
		{"unacknowledged but present is not an error", cleanAcks[:6], cleanReads(),
			counts{7, 6, 1, 7, 0, 0, 0, 0, 0, 1, 0, true}},
		{"unacknowledged and absent is not an error", cleanAcks[:6], cleanReads()[:6],
			counts{7, 6, 1, 6, 0, 0, 0, 0, 0, 0, 0, true}},
		{"a sequence number never sent", cleanAcks, append(cleanReads(), read(1, 3, 0, 9)),
			counts{7, 7, 0, 7, 0, 0, 0, 0, 0, 0, 1, false}},
		{"duplicate of an unacknowledged record", cleanAcks[:6], append(cleanReads(), read(1, 2, 1, 3)),
			counts{7, 6, 1, 8, 0, 1, 0, 0, 0, 1, 0, false}},
		{"nothing acknowledged fails", nil, nil, counts{7, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(Input{Sent: sent, Acks: tt.acks, Reads: tt.reads})
			if got := countsOf(r); got != tt.want {
				t.Errorf("counts\n got %+v\nwant %+v\nproblems %q", got, tt.want, r.Problems)
			}
			if r.OK != (len(r.Problems) == 0) {
				t.Errorf("OK = %v with problems %q", r.OK, r.Problems)
			}
		})
	}
}

func TestCheckSamplesNameTheRecords(t *testing.T) {
	r := Check(Input{Sent: map[int]int64{0: 2}, Acks: []Ack{ack(0, 0, 0, 0, 1), ack(0, 1, 0, 1, 2)},
		Reads: []Read{read(0, 1, 0, 1), read(0, 1, 0, 2)}})
	if want := []string{"p0/0 acked at partition 0 offset 0"}; !reflect.DeepEqual(r.LostSample, want) {
		t.Errorf("lost sample %q, want %q", r.LostSample, want)
	}
	if len(r.DuplicatedSample) != 1 || !strings.HasPrefix(r.DuplicatedSample[0], "p0/1 read 2 times") {
		t.Errorf("duplicated sample %q", r.DuplicatedSample)
	}
	want := []string{"1 acknowledged records lost", "1 duplicated records"}
	if !reflect.DeepEqual(r.Problems, want) {
		t.Errorf("problems %q, want %q", r.Problems, want)
	}
}

func TestCheckProblemsFromOutsideFailTheRun(t *testing.T) {
	r := Check(Input{Sent: map[int]int64{0: 1}, Acks: []Ack{ack(0, 0, 0, 0, 1)}, Reads: []Read{read(0, 0, 0, 0)},
		Problems: []string{"node 2 exited unexpectedly"}})
	if r.OK || len(r.Problems) != 1 || r.Problems[0] != "node 2 exited unexpectedly" {
		t.Errorf("OK %v problems %q", r.OK, r.Problems)
	}
}

func TestLongestStall(t *testing.T) {
	ms := time.Millisecond
	acks := []Ack{ack(0, 0, 0, 0, 100*ms), ack(0, 1, 0, 1, 900*ms), // a slow start: 800ms
		ack(0, 2, 0, 2, 1000*ms), ack(0, 3, 0, 3, 1600*ms), ack(0, 4, 0, 4, 1700*ms)}
	tests := []struct {
		name             string
		faults           []Fault
		end              time.Duration
		wantMs, wantAtMs int64
		wantFault        string
	}{
		{"no faults: the longest gap", nil, 1700 * ms, 800, 100, ""},
		{"after the fault only", []Fault{{Kind: "kill", Node: 1, At: 1000 * ms}}, 1700 * ms, 600, 1000, "kill node 1 at 1s"},
		{"acks stop after the fault: the gap runs to the end of producing",
			[]Fault{{Kind: "pause", Node: 2, At: 1650 * ms}}, 4 * time.Second, 2300, 1700, "pause node 2 at 1.65s"},
		{"the first fault begun during the stall caused it", []Fault{{Kind: "kill", Node: 1, At: 950 * ms}, {Kind: "pause", Node: 3, At: 1200 * ms},
			{Kind: "restart", Node: 2, At: 1300 * ms}}, 1700 * ms, 600, 1000, "pause node 3 at 1.2s"},
		{"else the last one begun before it", []Fault{{Kind: "kill", Node: 1, At: 920 * ms}, {Kind: "pause", Node: 3, At: 950 * ms}},
			1700 * ms, 600, 1000, "pause node 3 at 950ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotMs, gotAt, gotFault := longestStall(acks, tt.faults, tt.end)
			if gotMs != tt.wantMs || gotAt != tt.wantAtMs || gotFault != tt.wantFault {
				t.Errorf("longestStall = %d ms at %d ms (%q), want %d ms at %d ms (%q)", gotMs, gotAt, gotFault, tt.wantMs, tt.wantAtMs, tt.wantFault)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	id := ID{Producer: 3, Seq: 123456}
	k := encodeKey("ab12", id)
	if got, ok := decodeKey("ab12", k); !ok || got != id {
		t.Fatalf("decodeKey(%q) = %v, %v", k, got, ok)
	}
	if _, ok := decodeKey("other", k); ok {
		t.Errorf("a key of run ab12 decoded as run other's")
	}
	for _, bad := range []string{"", "mv1/ab12/p3", "mv1/ab12/x3/1", "mv1/ab12/p-1/1", "mv1/ab12/p3/-5", "mv1/ab12/p3/1/2", "hello"} {
		if _, ok := decodeKey("ab12", []byte(bad)); ok {
			t.Errorf("decodeKey(%q) accepted", bad)
		}
	}
	v := encodeValue("ab12", id, 100)
	if len(v) != 100 || !valueMatches(k, v) {
		t.Errorf("value %q (%d bytes) does not match key %q", v, len(v), k)
	}
	if valueMatches(k, encodeValue("ab12", ID{3, 1}, 100)) {
		t.Errorf("another record's value matches")
	}
}

func TestParseFaults(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false}, {"none", nil, false}, {"kill", []string{"kill"}, false},
		{" kill, pause ,restart", []string{"kill", "pause", "restart"}, false},
		{"kill,kill,pause", []string{"kill", "kill", "pause"}, false},
		{"kill,", nil, true}, {"stop", nil, true},
	} {
		got, err := ParseFaults(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFaults(%q) = %q, %v", tt.in, got, err)
		}
	}
}
