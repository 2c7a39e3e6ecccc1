// Package metricstest holds test helpers for Prometheus collectors, shared by the tests of
// internal/metrics and internal/broker.
package metricstest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// AssertRegistryOrder collects c and fails unless each family's metrics come in the order the
// registry's sort (client_golang's internal MetricSorter: label values compared in the order
// of the label names) puts them in, and some family has at least minSeries series.
func AssertRegistryOrder(t testing.TB, c prometheus.Collector, minSeries int) {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	last := map[string][]string{} // family -> label values of its last metric
	count := map[string]int{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var vals []string
		for _, l := range pb.GetLabel() { // sorted by label name
			vals = append(vals, l.GetValue())
		}
		name := m.Desc().String()
		if prev, ok := last[name]; ok && slices.Compare(prev, vals) > 0 {
			t.Errorf("%s: %v emitted after %v; the registry sorts it first", name, vals, prev)
		}
		last[name] = vals
		count[name]++
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	if most < minSeries {
		t.Fatalf("largest family has %d series, want at least %d: %v", most, minSeries, count)
	}
}
