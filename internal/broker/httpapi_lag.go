package broker

import "github.com/moldau/moldau/internal/httpapi"

// The admin API's view of the lag tracker and the throughput ring (internal/metrics, kept by
// lag.go). The tracker knows the groups this node coordinates; for the others these answer "not
// tracked here" and the API falls back to what kadm computes.

func (a *apiBackend) throughput() []httpapi.ThroughputSample {
	if a.b.lag == nil {
		return nil
	}
	in := a.b.lag.Throughput()
	out := make([]httpapi.ThroughputSample, len(in))
	for i, s := range in {
		out[i] = httpapi.ThroughputSample{Time: s.Time, BytesIn: s.BytesIn, BytesOut: s.BytesOut, MessagesIn: s.MessagesIn}
	}
	return out
}

// trackedLag is the tracker's lag in seconds of one partition of a group, with the committed
// offset it was computed for.
type trackedLag struct {
	committed int64
	seconds   float64
}

// trackedLagSeconds is the lag in seconds per partition of a group this node coordinates
// (partitions whose lag in seconds is unknown are left out). The tracker's answer may be up to a
// second old, so a caller uses an entry only for the committed offset it was computed for.
func (a *apiBackend) trackedLagSeconds(group string) (map[tp]trackedLag, bool) {
	if a.b.lag == nil {
		return nil, false
	}
	g, ok := a.b.lag.Group(group)
	if !ok {
		return nil, false
	}
	m := make(map[tp]trackedLag, len(g.Partitions))
	for _, p := range g.Partitions {
		if p.LagSeconds >= 0 {
			m[tp{p.Topic, p.Partition}] = trackedLag{committed: p.CommittedOffset, seconds: p.LagSeconds}
		}
	}
	return m, true
}

func (a *apiBackend) trackedMaxLagSeconds(group string) (float64, bool) {
	if a.b.lag == nil {
		return 0, false
	}
	g, ok := a.b.lag.Group(group)
	return g.MaxLagSeconds, ok
}

func (a *apiBackend) lagHistory(group string) []httpapi.LagSample {
	if a.b.lag == nil {
		return nil
	}
	in := a.b.lag.History(group)
	out := make([]httpapi.LagSample, len(in))
	for i, s := range in {
		out[i] = httpapi.LagSample{Time: s.Time, TotalLag: s.TotalLag, MaxLagSeconds: s.MaxLagSeconds}
	}
	return out
}

func (a *apiBackend) lagIntervalMs() int64 {
	if a.b.lag == nil {
		return 10000
	}
	return a.b.lag.HistoryInterval().Milliseconds()
}
