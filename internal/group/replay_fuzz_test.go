package group

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// replaySeed is one __consumer_offsets record for the replay fuzzer's seed corpus.
type replaySeed struct {
	key, value []byte
	tombstone  bool
}

// replaySeeds are records of every kind the coordinator writes and reads, in the versions Kafka
// has written them, and the undecodable ones that once stopped the load.
func replaySeeds() []replaySeed {
	okV1 := kmsg.NewOffsetCommitKey()
	okV1.Version, okV1.Group, okV1.Topic, okV1.Partition = 1, "g", "t", 3
	okV0 := okV1
	okV0.Version = 0
	ovs := make([][]byte, 0, 4)
	for v := int16(0); v <= 3; v++ {
		ov := kmsg.NewOffsetCommitValue()
		ov.Version, ov.Offset, ov.LeaderEpoch, ov.Metadata, ov.CommitTimestamp, ov.ExpireTimestamp = v, 42, 7, "meta", 1_700_000_000_000, 1_800_000_000_000
		ovs = append(ovs, ov.AppendTo(nil))
	}
	gk := kmsg.NewGroupMetadataKey()
	gk.Version, gk.Group = 2, "g"
	gvs := make([][]byte, 0, 4)
	for v := int16(0); v <= 3; v++ {
		gv := kmsg.NewGroupMetadataValue()
		gv.Version, gv.ProtocolType, gv.Generation = v, "consumer", 5
		gv.Protocol, gv.Leader = kmsg.StringPtr("range"), kmsg.StringPtr("m1")
		gv.CurrentStateTimestamp = 1_700_000_000_000
		m := kmsg.NewGroupMetadataValueMember()
		m.MemberID, m.ClientID, m.ClientHost = "m1", "c", "/127.0.0.1"
		m.InstanceID = kmsg.StringPtr("i1")
		m.RebalanceTimeoutMillis, m.SessionTimeoutMillis = 60_000, 45_000
		m.Subscription, m.Assignment = []byte{0, 0, 0, 0, 0, 1, 0, 1, 't'}, []byte{}
		gv.Members = []kmsg.GroupMetadataValueMember{m}
		gvs = append(gvs, gv.AppendTo(nil))
	}
	empty := kmsg.NewGroupMetadataValue()
	empty.Version, empty.ProtocolType = 3, "consumer"
	return []replaySeed{
		{key: okV1.AppendTo(nil), value: ovs[3]},
		{key: okV1.AppendTo(nil), value: ovs[1]},
		{key: okV0.AppendTo(nil), value: ovs[0]},
		{key: okV0.AppendTo(nil), value: ovs[2]},
		{key: okV1.AppendTo(nil), tombstone: true},
		{key: gk.AppendTo(nil), value: gvs[3]},
		{key: gk.AppendTo(nil), value: gvs[2]},
		{key: gk.AppendTo(nil), value: gvs[0]},
		{key: gk.AppendTo(nil), value: empty.AppendTo(nil)},
		{key: gk.AppendTo(nil), tombstone: true},
		{key: []byte{1}, value: []byte("x")},           // the one-byte key of issue 7
		{key: nil, value: []byte("x")},                 // no key
		{key: []byte{0, 9, 1, 2}, value: []byte("x")},  // a record type that is not ours
		{key: okV1.AppendTo(nil), value: ovs[3][:5]},   // truncated value
		{key: gk.AppendTo(nil)[:4], value: gvs[3][:9]}, // truncated key and value
	}
}

// FuzzReplay feeds one arbitrary __consumer_offsets record, then a valid offset commit, to the
// coordinator's replay. Nothing may panic or fail the load; the record either decodes or is
// counted as skipped; the valid record after it always loads.
func FuzzReplay(f *testing.F) {
	for _, s := range replaySeeds() {
		f.Add(s.key, s.value, s.tombstone)
	}
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		store := NewMemoryStore()
		if err := store.Append("g", []KV{{Key: key, Value: value}, commitKV("fuzz-check", "t", 0, 42)}); err != nil {
			t.Fatal(err)
		}
		var skipped countingCounter
		cfg := testConfig()
		cfg.RecordsSkipped = &skipped
		c := NewCoordinator(cfg, nil, newFakeClock())
		defer c.Close()
		groups, err := replayWith(c, c.stopLoad, store.Load)
		if err != nil {
			t.Fatalf("replay failed: %v", err)
		}
		decodeErr := newReplayer(c).apply(StoredRecord{Key: key, Value: value, ProducerID: -1})
		if n := skipped.n.Load(); (decodeErr != nil) != (n == 1) || n > 1 {
			t.Fatalf("decode error %v, %d records skipped", decodeErr, n)
		}
		g := groups["fuzz-check"]
		if g == nil || g.offsets["t"][0].offset != 42 {
			t.Fatalf("the valid record after the fuzzed one did not load: %+v", g)
		}
	})
}

// TestWriteReplaySeedCorpus regenerates testdata/fuzz/FuzzReplay when MOLDAU_WRITE_SEEDS=1.
func TestWriteReplaySeedCorpus(t *testing.T) {
	if os.Getenv("MOLDAU_WRITE_SEEDS") == "" {
		t.Skip("set MOLDAU_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReplay")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range replaySeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nbool(%v)\n", s.key, s.value, s.tombstone)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
