package broker

import "github.com/moldau/moldau/internal/httpapi"

// The admin API's view of the lag tracker and the throughput ring (internal/metrics, kept by
// internal/broker/lag.go). Until they are wired these answer "not tracked".

func (a *apiBackend) throughput() []httpapi.ThroughputSample { return nil }

// trackedLagSeconds is the lag in seconds per partition of a group this node coordinates.
func (a *apiBackend) trackedLagSeconds(group string) (map[tp]float64, bool) { return nil, false }

func (a *apiBackend) trackedMaxLagSeconds(group string) (float64, bool) { return 0, false }

func (a *apiBackend) lagHistory(group string) []httpapi.LagSample { return nil }

func (a *apiBackend) lagIntervalMs() int64 { return 10000 }
