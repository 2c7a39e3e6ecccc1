package metrics

import (
	"reflect"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

// Kafka's RequestMetrics (kafka.network:type=RequestMetrics,name=…,request=…), as Strimzi's JMX
// exporter rules and Grafana's kafka-observ-lib name them:
//
//	kafka_network_requestmetrics_requests_total{request,version}   RequestsPerSec
//	kafka_network_requestmetrics_errors_total{request,error}       ErrorsPerSec
//	kafka_network_requestmetrics_<time>ms{request,quantile}        TotalTimeMs, RequestQueueTimeMs, ...
//
// As in Kafka's RequestChannel, a Fetch counts under request="Fetch" and under "FetchConsumer"
// or "FetchFollower" (a fetch from a replica); its errors under "Fetch" only. The times are
// summaries (the exporter turns Kafka's histograms into the quantiles 0.5 … 0.999 and _count)
// over the last requestTimeMaxAge, in milliseconds.
type requestMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	times    [numRequestTimes]*prometheus.SummaryVec
}

const (
	timeTotal = iota
	timeRequestQueue
	timeLocal
	timeRemote
	timeResponseQueue
	timeResponseSend
	numRequestTimes
)

var requestTimes = [numRequestTimes]struct{ name, help string }{
	timeTotal:         {"totaltimems", "Milliseconds from a request's frame read in full to its response written."},
	timeRequestQueue:  {"requestqueuetimems", "Milliseconds from a request's frame read in full to its handling (decoding: Moldau has no request queue; its reader hands each request to the handler)."},
	timeLocal:         {"localtimems", "Milliseconds the handler worked on the request (its handling time less the remote time)."},
	timeRemote:        {"remotetimems", "Milliseconds the handler waited on others: a fetch's long poll for new records, an acks=all produce's wait for the followers (other waits, such as JoinGroup's rebalance, count as local time)."},
	timeResponseQueue: {"responsequeuetimems", "Milliseconds a response waited for the connection's writer."},
	timeResponseSend:  {"responsesendtimems", "Milliseconds writing the response (the connection's write that carried it)."},
}

// requestTimeMaxAge bounds the window of the request time quantiles (Kafka's histograms decay
// over about five minutes).
const requestTimeMaxAge = 5 * time.Minute

// requestTimeObjectives are the quantiles Kafka's histograms export (50th … 999th percentile),
// each with its allowed rank error.
var requestTimeObjectives = map[float64]float64{0.5: 0.05, 0.75: 0.02, 0.95: 0.005, 0.98: 0.002, 0.99: 0.001, 0.999: 0.0001}

func newRequestMetrics() *requestMetrics {
	r := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_requests_total",
			Help: "Requests answered, by Kafka's request name (Fetch also as FetchConsumer or FetchFollower) and version.",
		}, []string{"request", "version"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_errors_total",
			Help: "Error codes in responses, by request and Kafka's error name (NONE included), counted as Kafka's errorCounts: one per partition (or topic, group, member) that carries a code.",
		}, []string{"request", "error"}),
	}
	for i, t := range requestTimes {
		r.times[i] = prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name:       "kafka_network_requestmetrics_" + t.name,
			Help:       t.help,
			Objectives: requestTimeObjectives,
			MaxAge:     requestTimeMaxAge,
		}, []string{"request"})
	}
	return r
}

func (r *requestMetrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{r.requests, r.errors}
	for _, t := range r.times {
		cs = append(cs, t)
	}
	return cs
}

// versionNames is the version label of versions 0 to 63, computed once.
var versionNames = func() (names [64]string) {
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}()

func versionName(v int16) string {
	if v >= 0 && int(v) < len(versionNames) {
		return versionNames[v]
	}
	return strconv.Itoa(int(v))
}

// Observe implements server.Observer: Kafka's request metrics of a request whose response has
// been written (or that has none).
func (m *Metrics) Observe(req *server.Request, resp kmsg.Response, t *server.Timing) {
	r := m.kafkaRequests
	api := apiName(req.Key)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	local := t.Handled.Sub(t.Handling) - t.Remote
	times := [numRequestTimes]float64{
		timeTotal:         ms(t.Sent.Sub(t.Received)),
		timeRequestQueue:  ms(t.Handling.Sub(t.Received)),
		timeLocal:         ms(max(local, 0)),
		timeRemote:        ms(t.Remote),
		timeResponseQueue: ms(t.Sending.Sub(t.Handled)),
		timeResponseSend:  ms(t.Sent.Sub(t.Sending)),
	}
	version := versionName(req.Version)
	record := func(name string) {
		r.requests.WithLabelValues(name, version).Inc()
		for i, v := range times {
			r.times[i].WithLabelValues(name).Observe(v)
		}
	}
	record(api)
	if f, ok := req.Msg.(*kmsg.FetchRequest); ok {
		if fetchFromReplica(f) {
			record("FetchFollower")
		} else {
			record("FetchConsumer")
		}
	}
	if resp == nil {
		return
	}
	var buf [8]codeCount
	for _, c := range errorCounts(resp, buf[:0]) {
		r.errors.WithLabelValues(api, errorName(c.code)).Add(float64(c.n))
	}
}

// fetchFromReplica reports whether a fetch is a follower replica's (ReplicaState.ID from v15,
// ReplicaID before, >= 0), as Kafka's FetchRequest.isFromFollower.
func fetchFromReplica(r *kmsg.FetchRequest) bool {
	if r.Version >= 15 {
		return r.ReplicaState.ID >= 0
	}
	return r.ReplicaID >= 0
}

// codeCount is how many times an error code occurs in a response.
type codeCount struct {
	code int16
	n    int
}

func addCode(cs []codeCount, code int16) []codeCount {
	for i := range cs {
		if cs[i].code == code {
			cs[i].n++
			return cs
		}
	}
	return append(cs, codeCount{code, 1})
}

// errorCounts appends to cs the error codes of resp and how often each occurs, as Kafka's
// AbstractResponse.errorCounts counts them (RequestChannel feeds ErrorsPerSec from it): the
// response's top-level code where the response has one and, for responses about many
// partitions, topics or groups, each one's code. The APIs on the hot path are spelled out; for
// the others every ErrorCode field of the response is counted, which is what Kafka's counts
// for most of them.
func errorCounts(resp kmsg.Response, cs []codeCount) []codeCount {
	if ch, ok := resp.(*server.Chunked); ok {
		resp = ch.Response
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				cs = addCode(cs, p.ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		cs = addCode(cs, r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				cs = addCode(cs, p.ErrorCode)
			}
		}
	case *kmsg.MetadataResponse:
		if r.ErrorCode != 0 {
			cs = addCode(cs, r.ErrorCode)
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				cs = addCode(cs, p.ErrorCode)
			}
			cs = addCode(cs, t.ErrorCode)
		}
	case *kmsg.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				cs = addCode(cs, p.ErrorCode)
			}
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				cs = addCode(cs, p.ErrorCode)
			}
		}
	case *kmsg.OffsetFetchResponse:
		// v8+ answers per group: the groups' codes and their partitions', not the top-level
		// one (Kafka 4.4 counts 3 for one group of two partitions); before v8, the top-level
		// code and the partitions'.
		if r.Version >= 8 {
			for _, g := range r.Groups {
				cs = addCode(cs, g.ErrorCode)
				for _, t := range g.Topics {
					for _, p := range t.Partitions {
						cs = addCode(cs, p.ErrorCode)
					}
				}
			}
			break
		}
		cs = addCode(cs, r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				cs = addCode(cs, p.ErrorCode)
			}
		}
	case *kmsg.FindCoordinatorResponse:
		if len(r.Coordinators) == 0 {
			cs = addCode(cs, r.ErrorCode)
		}
		for _, c := range r.Coordinators {
			cs = addCode(cs, c.ErrorCode)
		}
	case *kmsg.HeartbeatResponse:
		cs = addCode(cs, r.ErrorCode)
	case *kmsg.JoinGroupResponse:
		cs = addCode(cs, r.ErrorCode)
	case *kmsg.SyncGroupResponse:
		cs = addCode(cs, r.ErrorCode)
	case *kmsg.ApiVersionsResponse:
		cs = addCode(cs, r.ErrorCode)
	default:
		countErrorFields(reflect.ValueOf(resp), func(code int16) { cs = addCode(cs, code) })
	}
	return cs
}

// countErrorFields calls add with every int16 field named ErrorCode in v, recursively through
// pointers, structs and slices of structs.
func countErrorFields(v reflect.Value, add func(int16)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			countErrorFields(v.Elem(), add)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			switch {
			case !f.IsExported():
			case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
				add(int16(v.Field(i).Int()))
			default:
				countErrorFields(v.Field(i), add)
			}
		}
	case reflect.Slice:
		if k := v.Type().Elem().Kind(); k != reflect.Struct && k != reflect.Pointer {
			return
		}
		for i := range v.Len() {
			countErrorFields(v.Index(i), add)
		}
	}
}
