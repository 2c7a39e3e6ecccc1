package broker

import "github.com/moldau/moldau/internal/httpapi"

// The admin API's view of the lag tracker and the throughput ring (internal/metrics, kept by
// lag.go). The tracker keeps the history of the groups this node coordinates.

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
