package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/httpapi"
)

// lagRecordTime is the timestamp the lag tests give record i of partition p: an hour ago, one
// second apart, a different minute per partition, so every record's timestamp is distinct and
// known to the millisecond.
func lagRecordTime(base time.Time, p int32, i int) time.Time {
	return base.Add(time.Duration(int(p)*60+i) * time.Second)
}

// produceTimed writes n records with lagRecordTime timestamps to each of parts of topic.
func produceTimed(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, base time.Time, parts []int32, n int) {
	t.Helper()
	var rs []*kgo.Record
	for _, p := range parts {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i)), Timestamp: lagRecordTime(base, p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// lagSeries is the value of every series of the lag families on /metrics at addr, by
// "name{label=value,...}" with the labels in the order Prometheus sorts them.
func lagSeries(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	families := scrapeAddr(t, addr)
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			out[key+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// lagBounds is what lag in seconds may be for a first unconsumed record of timestamp ts: the
// broker computes it at a moment after the commit it reflects became visible (so after
// committed, the time the test sent the commit) and before the answer the test read it from
// arrived (read). Both ends are widened by a millisecond, the precision of record timestamps.
func lagBounds(ts, committed, read time.Time) (lo, hi float64) {
	return committed.Sub(ts).Seconds() - 0.001, read.Sub(ts).Seconds() + 0.001
}

// TestLagExact: with records of known timestamps and offsets committed at known positions,
// /metrics serves per partition kafka_consumergroup_lag = high watermark − committed,
// kafka_consumergroup_current_offset = committed, and kafka_consumergroup_lag_seconds = now −
// the timestamp of the record at the committed offset (the first the group has not consumed),
// within the interval between the commit and the scrape; 0 when caught up; no series for a
// partition without a commit. kafka-lag-exporter's names carry the same values, and the admin
// API agrees. Moving the commit moves the time lag to the new first unconsumed record.
func TestLagExact(t *testing.T) {
	b := testBroker(t, t.TempDir(), "offsets.topic.num.partitions", "1", "lag.history.interval.ms", "100")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "lagged"); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produceTimed(ctx, t, cl, "lagged", base, []int32{0, 1, 2, 3}, 10)

	const group = "exact"
	// Partition 0 consumed up to offset 3, 1 caught up, 2 nothing consumed, 3 never committed.
	commit := func(offsets map[int32]int64) time.Time {
		t.Helper()
		os := kadm.Offsets{}
		for p, o := range offsets {
			os.Add(kadm.Offset{Topic: "lagged", Partition: p, At: o, LeaderEpoch: -1})
		}
		sent := time.Now()
		resp, err := adm.CommitOffsets(ctx, group, os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
		return sent
	}
	committed := commit(map[int32]int64{0: 3, 1: 10, 2: 0})
	addr := b.HTTPAddr().String()
	series := func(name, p string) string {
		return name + "{consumergroup=" + group + ",partition=" + p + ",topic=lagged}"
	}
	// The tracker serves what it computed up to a second ago: wait for a scrape that shows the
	// commit.
	waitScrape := func(want map[int32]int64) (map[string]float64, time.Time) {
		t.Helper()
		var got map[string]float64
		var read time.Time
		waitFor(t, "the lag metrics to show the commit", func() bool {
			got, read = lagSeries(t, addr), time.Now()
			for p, o := range want {
				if v, ok := got[series("kafka_consumergroup_current_offset", strconv.Itoa(int(p)))]; !ok || v != float64(o) {
					return false
				}
			}
			return true
		}, func() string { return fmt.Sprint(got) })
		return got, read
	}
	got, read := waitScrape(map[int32]int64{0: 3, 1: 10, 2: 0})

	check := func(name string, want float64) {
		t.Helper()
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (served %v), want %v", name, v, ok, want)
		}
	}
	checkSeconds := func(name string, ts time.Time) float64 {
		t.Helper()
		lo, hi := lagBounds(ts, committed, read)
		v, ok := got[name]
		if !ok || v < lo || v > hi {
			t.Errorf("%s = %v (served %v), want within [%.3f, %.3f]: now − the timestamp of the first unconsumed record", name, v, ok, lo, hi)
		}
		return v
	}
	check(series("kafka_consumergroup_lag", "0"), 7)
	check(series("kafka_consumergroup_lag", "1"), 0)
	check(series("kafka_consumergroup_lag", "2"), 10)
	s0 := checkSeconds(series("kafka_consumergroup_lag_seconds", "0"), lagRecordTime(base, 0, 3))
	check(series("kafka_consumergroup_lag_seconds", "1"), 0)
	s2 := checkSeconds(series("kafka_consumergroup_lag_seconds", "2"), lagRecordTime(base, 2, 0))
	for _, name := range []string{"kafka_consumergroup_lag", "kafka_consumergroup_current_offset", "kafka_consumergroup_lag_seconds"} {
		if _, ok := got[series(name, "3")]; ok {
			t.Errorf("%s served for partition 3, which the group never committed", name)
		}
	}
	check("kafka_consumergroup_lag_sum{consumergroup="+group+",topic=lagged}", 17)
	check("kafka_consumergroup_members{consumergroup="+group+"}", 0)
	le := func(name, p string) string { return name + "{group=" + group + ",partition=" + p + ",topic=lagged}" }
	check(le("kafka_consumergroup_group_lag", "0"), 7)
	check(le("kafka_consumergroup_group_lag", "2"), 10)
	check(le("kafka_consumergroup_group_lag_seconds", "0"), s0)
	check(le("kafka_consumergroup_group_lag_seconds", "2"), s2)
	check("kafka_consumergroup_group_max_lag{group="+group+"}", 10)
	check("kafka_consumergroup_group_max_lag_seconds{group="+group+"}", math.Max(s0, s2))
	check("kafka_consumergroup_group_sum_lag{group="+group+"}", 17)
	check("kafka_consumergroup_group_topic_sum_lag{group="+group+",topic=lagged}", 17)

	// The admin API's answer agrees (its lag in seconds within the same bounds, read now).
	apiOffsets := func() (map[int32]float64, map[int32]int64, time.Time) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/api/v1/groups/" + group)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			Offsets []struct {
				Topic      string  `json:"topic"`
				Partition  int32   `json:"partition"`
				Lag        int64   `json:"lag"`
				LagSeconds float64 `json:"lag_seconds"`
			} `json:"offsets"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/groups/%s: %d %v", group, resp.StatusCode, err)
		}
		secs, lags := map[int32]float64{}, map[int32]int64{}
		for _, o := range d.Offsets {
			secs[o.Partition], lags[o.Partition] = o.LagSeconds, o.Lag
		}
		return secs, lags, time.Now()
	}
	secs, lags, apiRead := apiOffsets()
	if len(lags) != 3 || lags[0] != 7 || lags[1] != 0 || lags[2] != 10 {
		t.Errorf("API lag %v, want partitions 0, 1, 2 at 7, 0, 10", lags)
	}
	for p, ts := range map[int32]time.Time{0: lagRecordTime(base, 0, 3), 2: lagRecordTime(base, 2, 0)} {
		if lo, hi := lagBounds(ts, committed, apiRead); secs[p] < lo || secs[p] > hi {
			t.Errorf("API lag_seconds of partition %d = %v, want within [%.3f, %.3f]", p, secs[p], lo, hi)
		}
	}
	if secs[1] != 0 {
		t.Errorf("API lag_seconds of the caught-up partition 1 = %v, want 0", secs[1])
	}

	// Consuming two more records of partition 0 moves its first unconsumed record to offset 5,
	// two seconds younger.
	committed = commit(map[int32]int64{0: 5})
	got, read = waitScrape(map[int32]int64{0: 5})
	check(series("kafka_consumergroup_lag", "0"), 5)
	checkSeconds(series("kafka_consumergroup_lag_seconds", "0"), lagRecordTime(base, 0, 5))
}

// TestLagRemoteLeader: in a cluster, the node that coordinates a group computes the lag of
// partitions other nodes lead (it asks their leaders for the high watermark and the record at
// the committed offset), as exactly as of the partitions it leads.
func TestLagRemoteLeader(t *testing.T) {
	brokers := testCluster(t, 3, "offsets.topic.num.partitions", "1", "offsets.topic.replication.factor", "1", "lag.history.interval.ms", "100")
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := clusterClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "spread"); err != nil {
		t.Fatal(err)
	}
	const group = "remote"
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	parts := []int32{0, 1, 2, 3, 4, 5}
	produceTimed(ctx, t, cl, "spread", base, parts, 8)
	// Committed at 2: the first unconsumed record of every partition is its record 2.
	os := kadm.Offsets{}
	for _, p := range parts {
		os.Add(kadm.Offset{Topic: "spread", Partition: p, At: 2, LeaderEpoch: -1})
	}
	committed := time.Now()
	if resp, err := adm.CommitOffsets(ctx, group, os); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	coordID := described[group].Coordinator.NodeID
	var coord *Broker
	for _, b := range brokers {
		if b.cfg.NodeID == coordID {
			coord = b
		}
	}
	if coord == nil {
		t.Fatalf("coordinator %d is not one of the nodes", coordID)
	}
	meta, err := adm.Metadata(ctx, "spread")
	if err != nil {
		t.Fatal(err)
	}
	remote := 0
	for _, p := range meta.Topics["spread"].Partitions {
		if p.Leader != coordID {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("node %d leads every partition of spread: nothing remote to measure", coordID)
	}
	addr := coord.HTTPAddr().String()
	series := func(name string, p int32) string {
		return fmt.Sprintf("%s{consumergroup=%s,partition=%d,topic=spread}", name, group, p)
	}
	var got map[string]float64
	var read time.Time
	waitFor(t, "the coordinator's lag metrics for every partition", func() bool {
		got, read = lagSeries(t, addr), time.Now()
		for _, p := range parts {
			if _, ok := got[series("kafka_consumergroup_lag_seconds", p)]; !ok {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint(got) })
	for _, p := range meta.Topics["spread"].Partitions {
		hw, first := int64(8), lagRecordTime(base, p.Partition, 2)
		if v := got[series("kafka_consumergroup_lag", p.Partition)]; v != float64(hw-2) {
			t.Errorf("partition %d (leader %d, coordinator %d): lag %v, want %d", p.Partition, p.Leader, coordID, v, hw-2)
		}
		lo, hi := lagBounds(first, committed, read)
		if v := got[series("kafka_consumergroup_lag_seconds", p.Partition)]; v < lo || v > hi {
			t.Errorf("partition %d (leader %d, coordinator %d): lag_seconds %v, want within [%.3f, %.3f]", p.Partition, p.Leader, coordID, v, lo, hi)
		}
	}
	// The other nodes do not coordinate the group: they serve no lag for it (a sum over nodes
	// counts it once).
	for _, b := range brokers {
		if b == coord {
			continue
		}
		for name := range lagSeries(t, b.HTTPAddr().String()) {
			if strings.HasPrefix(name, "kafka_consumergroup") {
				t.Errorf("node %d, not the coordinator, serves %s", b.cfg.NodeID, name)
			}
		}
	}
	// The admin API of every node answers the same lag: the coordinator from its own group
	// coordinator, the others from the coordinator they find; each reads the high watermarks
	// and the records at the committed offsets from the partitions' leaders.
	for _, b := range brokers {
		var g httpapi.GroupDetail
		mustCall(t, 200, "GET", "http://"+b.HTTPAddr().String()+"/api/v1/groups/"+group, nil, &g)
		read := time.Now()
		if g.Coordinator != coordID || g.OffsetsTotal != 6 || len(g.Offsets) != 6 || g.TotalLag != 36 || !slices.Equal(g.Topics, []string{"spread"}) {
			t.Fatalf("node %d: group %+v, want coordinator %d, 6 offsets at lag 6", b.cfg.NodeID, g, coordID)
		}
		for _, o := range g.Offsets {
			lo, hi := lagBounds(lagRecordTime(base, o.Partition, 2), committed, read)
			if o.CommittedOffset != 2 || o.HighWatermark != 8 || o.Lag != 6 || o.LagSeconds < lo || o.LagSeconds > hi {
				t.Errorf("node %d: %+v, want committed 2, high watermark 8, lag 6, lag seconds in [%.3f, %.3f]", b.cfg.NodeID, o, lo, hi)
			}
		}
		var gl struct {
			Groups []httpapi.GroupSummary `json:"groups"`
		}
		mustCall(t, 200, "GET", "http://"+b.HTTPAddr().String()+"/api/v1/groups", nil, &gl)
		if len(gl.Groups) != 1 || gl.Groups[0].GroupID != group || gl.Groups[0].TotalLag != 36 || gl.Groups[0].Coordinator != coordID || gl.Groups[0].MaxLagSeconds < 3000 {
			t.Errorf("node %d: groups %+v, want %s with lag 36 coordinated by %d, max lag seconds about an hour", b.cfg.NodeID, gl.Groups, group, coordID)
		}
	}
}

// TestLagSkipsAbortedAndMarkers: the first unconsumed record is the first one a read_committed
// consumer would get: with an aborted transaction and its marker at the committed offset, the
// time lag is that of the first committed record after them.
func TestLagSkipsAbortedAndMarkers(t *testing.T) {
	b := testBroker(t, t.TempDir(), "offsets.topic.num.partitions", "1", "transaction.state.log.num.partitions", "1", "lag.history.interval.ms", "100")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "txlag"); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	tx := client(t, b, kgo.TransactionalID("lag-aborter"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // offsets 0-2, aborted; the marker at 3
		if err := tx.ProduceSync(ctx, &kgo.Record{Topic: "txlag", Value: []byte("aborted"), Timestamp: base.Add(time.Duration(i) * time.Second)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	produceTimed(ctx, t, cl, "txlag", base.Add(10*time.Minute), []int32{0}, 3) // offsets 4-6
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "txlag", Partition: 0, At: 0, LeaderEpoch: -1})
	committed := time.Now()
	if resp, err := adm.CommitOffsets(ctx, "txg", os); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	key := func(name string) string { return name + "{consumergroup=txg,partition=0,topic=txlag}" }
	var got map[string]float64
	var read time.Time
	waitFor(t, "the lag metrics of group txg", func() bool {
		got, read = lagSeries(t, b.HTTPAddr().String()), time.Now()
		_, ok := got[key("kafka_consumergroup_lag_seconds")]
		return ok
	}, func() string { return fmt.Sprint(got) })
	if v := got[key("kafka_consumergroup_lag")]; v != 7 {
		t.Errorf("lag %v, want 7 (high watermark 7 − committed 0)", v)
	}
	lo, hi := lagBounds(lagRecordTime(base.Add(10*time.Minute), 0, 0), committed, read)
	if v := got[key("kafka_consumergroup_lag_seconds")]; v < lo || v > hi {
		t.Errorf("lag_seconds %v, want within [%.3f, %.3f]: the first committed record (offset 4), not the aborted ones", v, lo, hi)
	}
	// The admin API's lag in seconds skips them too.
	var g httpapi.GroupDetail
	mustCall(t, 200, "GET", "http://"+b.HTTPAddr().String()+"/api/v1/groups/txg", nil, &g)
	_, hi = lagBounds(lagRecordTime(base.Add(10*time.Minute), 0, 0), committed, time.Now())
	if len(g.Offsets) != 1 || g.Offsets[0].Lag != 7 || g.Offsets[0].LagSeconds < lo || g.Offsets[0].LagSeconds > hi {
		t.Errorf("API offsets %+v, want lag 7 and lag seconds within [%.3f, %.3f] (the record at 4)", g.Offsets, lo, hi)
	}
}

// TestLagAPIAfterRecommit: the admin API's lag in seconds is the age of the record at the
// committed offset it answers with, also right after a commit, while the lag tracker still
// holds (for up to a second) what it computed for the previous offset.
func TestLagAPIAfterRecommit(t *testing.T) {
	b := testBroker(t, t.TempDir(), "offsets.topic.num.partitions", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if res, err := adm.CreateTopic(ctx, 1, 1, nil, "recommit"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produceTimed(ctx, t, cl, "recommit", base, []int32{0}, 10)
	commit := func(at int64) time.Time {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "recommit", Partition: 0, At: at, LeaderEpoch: -1})
		sent := time.Now()
		if err := adm.CommitAllOffsets(ctx, "g", os); err != nil {
			t.Fatal(err)
		}
		return sent
	}
	commit(2)
	// The tracker holds the lag computed for offset 2.
	for {
		if g, ok := b.Lag().Group("g"); ok && len(g.Partitions) == 1 && g.Partitions[0].CommittedOffset == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the lag tracker never showed the commit at 2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sent := commit(7)
	var g httpapi.GroupDetail
	mustCall(t, 200, "GET", "http://"+b.HTTPAddr().String()+"/api/v1/groups/g", nil, &g)
	read := time.Now()
	if len(g.Offsets) != 1 || g.Offsets[0].CommittedOffset != 7 || g.Offsets[0].Lag != 3 {
		t.Fatalf("offsets %+v, want offset 7, lag 3", g.Offsets)
	}
	lo, hi := lagBounds(lagRecordTime(base, 0, 7), sent, read)
	if s := g.Offsets[0].LagSeconds; s < lo || s > hi {
		t.Fatalf("lag seconds %v, want the age of the record at 7, in [%v, %v] (the record at 2 is %v s older)", s, lo, hi,
			lagRecordTime(base, 0, 7).Sub(lagRecordTime(base, 0, 2)).Seconds())
	}
}
