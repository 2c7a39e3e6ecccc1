// Package metrics is the broker's Prometheus registry: Kafka-shaped and moldau_* metrics, the Go
// runtime's go_* / process_*. (*Metrics).Handler serves it; internal/httpapi puts that at /metrics
// on http.listener.
//
// Request metrics are recorded by Instrument, a server.Handler decorator (moldau_request_*, and
// BrokerTopicMetrics from produce and fetch answers), and by Observe, a server.Observer that sees
// each request once its response is written (Kafka's RequestMetrics: counts, errors, times), so
// the request path itself carries no metrics code.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the broker's metric registry.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec   // by api
	requestSeconds *prometheus.HistogramVec // by api
	requestErrors  *prometheus.CounterVec   // by api: requests that closed the connection
	producedBytes  prometheus.Counter
	// internalSkipped counts, by topic, the records of internal topics that a coordinator's load
	// could not decode and skipped.
	internalSkipped *prometheus.CounterVec
	// topics is Kafka's BrokerTopicMetrics, per topic and for all topics.
	topics *topicSet
	// kafkaRequests is Kafka's RequestMetrics, fed by Observe.
	kafkaRequests *requestMetrics
	// logSync is the log dirs' group commit, fed by LogSynced.
	logSync *logSyncMetrics
}

// New creates the registry with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moldau_requests_total", Help: "Kafka protocol requests handled, by API.",
		}, []string{"api"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moldau_request_duration_seconds",
			Help:    "Time from a decoded request to its response, by API (includes long-poll waits).",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"api"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moldau_request_errors_total", Help: "Requests whose handling closed the connection, by API.",
		}, []string{"api"}),
		producedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moldau_produce_bytes_total", Help: "Record batch bytes received in produce requests.",
		}),
		internalSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moldau_internal_topic_records_skipped_total",
			Help: "Records (or undecodable batches) of internal topics that a coordinator skipped while loading, by topic.",
		}, []string{"topic"}),
	}
	m.topics = newTopicSet()
	m.kafkaRequests = newRequestMetrics()
	m.reg.MustRegister(m.requests, m.requestSeconds, m.requestErrors, m.producedBytes, m.internalSkipped, m.topics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.kafkaRequests.collectors()...)
	m.logSync = newLogSyncMetrics()
	m.reg.MustRegister(m.logSync.duration, m.logSync.batch)
	return m
}

// Handler serves the registry in the Prometheus text format (or OpenMetrics, when the scraper
// asks for it): the /metrics endpoint.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Register adds a collector to the registry (consumer lag, broker gauges). It fails when one of
// the collector's metric names is registered already with other labels or help.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Totals is this broker's all-topics byte and message counts since start: bytes in
// (kafka_server_brokertopicmetrics_bytesin_total), bytes out (…_bytesout_total, to consumers;
// replication is not counted) and messages in (…_messagesin_total). They never decrease.
func (m *Metrics) Totals() (bytesIn, bytesOut, messagesIn float64) {
	a := &m.topics.all
	return float64(a.c[tBytesIn].Load()), float64(a.c[tBytesOut].Load()), float64(a.c[tMessagesIn].Load())
}

// Gauge registers a gauge whose value fn computes at each scrape.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// InternalRecordsSkipped is the counter of topic's records that a coordinator's load skipped
// because it could not decode them (moldau_internal_topic_records_skipped_total).
func (m *Metrics) InternalRecordsSkipped(topic string) prometheus.Counter {
	return m.internalSkipped.WithLabelValues(topic)
}

// Counter registers a counter whose value fn reads at each scrape (fn must never decrease).
func (m *Metrics) Counter(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}
