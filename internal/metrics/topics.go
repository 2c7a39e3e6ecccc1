package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Kafka's BrokerTopicMetrics (kafka.server:type=BrokerTopicMetrics,name=…PerSec[,topic=…]), as
// Strimzi's JMX exporter rules name them: kafka_server_brokertopicmetrics_<name>_total. Kafka
// keeps one set per topic and one for all topics; so does Moldau. The all-topics series carries
// topic="" (Prometheus stores an empty label as no label, so `{topic=""}` and a selector without
// topic both find it, and `{topic!=""}` the per-topic ones, as on Kafka).
const (
	tMessagesIn = iota
	tBytesIn
	tBytesOut
	tBytesRejected
	tFailedProduce
	tFailedFetch
	tTotalProduce
	tTotalFetch
	tProduceConversions
	tFetchConversions
	tReplicationBytesIn
	tReplicationBytesOut
	tReassignmentBytesIn
	tReassignmentBytesOut
	numTopicCounters
)

var topicCounters = [numTopicCounters]struct {
	name, help string
	allOnly    bool // Kafka keeps it for all topics only (no topic label)
}{
	tMessagesIn:           {"messagesin", "Records appended by produce requests (leader appends; counted from the batch headers).", false},
	tBytesIn:              {"bytesin", "Record batch bytes appended by produce requests.", false},
	tBytesOut:             {"bytesout", "Record batch bytes sent in fetch responses to consumers (not to follower replicas).", false},
	tBytesRejected:        {"bytesrejected", "Record batch bytes of produce requests refused as too large (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE).", false},
	tFailedProduce:        {"failedproducerequests", "Partitions of produce requests that failed (Kafka's count: not NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, too large, corrupt, storage errors or timeouts).", false},
	tFailedFetch:          {"failedfetchrequests", "Partitions of fetch responses that failed (Kafka's count: not NOT_LEADER_OR_FOLLOWER, REPLICA_NOT_AVAILABLE, unknown topic, leader epoch, offset out of range or storage errors).", false},
	tTotalProduce:         {"totalproducerequests", "Partitions of produce requests.", false},
	tTotalFetch:           {"totalfetchrequests", "Partitions of fetch responses of known topics (consumers and followers; an incremental fetch counts the partitions its answer carries).", false},
	tProduceConversions:   {"producemessageconversions", "Produce records converted between message formats (Moldau stores what it receives: always 0).", false},
	tFetchConversions:     {"fetchmessageconversions", "Fetch records converted between message formats (Moldau sends what it stores: always 0).", false},
	tReplicationBytesIn:   {"replicationbytesin", "Record batch bytes that follower replicas here fetched from their leaders and appended.", true},
	tReplicationBytesOut:  {"replicationbytesout", "Record batch bytes sent in fetch responses to follower replicas.", true},
	tReassignmentBytesIn:  {"reassignmentbytesin", "Record batch bytes fetched by replicas being added by a reassignment (not told apart yet: 0).", true},
	tReassignmentBytesOut: {"reassignmentbytesout", "Record batch bytes sent to replicas being added by a reassignment (not told apart yet: 0).", true},
}

// topicStats is the counters of one topic, or of all topics.
type topicStats struct {
	c [numTopicCounters]atomic.Int64
}

func (s *topicStats) add(i int, n int64) { s.c[i].Add(n) }

// topicSet is the BrokerTopicMetrics collector. The per-topic counters are looked up lock-free
// (sync.Map) on the request path and created once per topic.
type topicSet struct {
	all    topicStats
	byName sync.Map // topic name → *topicStats
	// exists, when set, tells whether a topic still exists: Collect forgets the counters of
	// topics that do not (Kafka removes a deleted topic's metrics).
	exists atomic.Pointer[func(string) bool]
	descs  [numTopicCounters]*prometheus.Desc
}

func newTopicSet() *topicSet {
	s := &topicSet{}
	for i, c := range topicCounters {
		var labels []string
		if !c.allOnly {
			labels = []string{"topic"}
		}
		s.descs[i] = prometheus.NewDesc("kafka_server_brokertopicmetrics_"+c.name+"_total", c.help, labels, nil)
	}
	return s
}

// topic is the counters of topic, created on first use.
func (s *topicSet) topic(name string) *topicStats {
	if v, ok := s.byName.Load(name); ok {
		return v.(*topicStats)
	}
	v, _ := s.byName.LoadOrStore(name, &topicStats{})
	return v.(*topicStats)
}

// addTopic adds n to counter i of topic and of all topics.
func (s *topicSet) addTopic(ts *topicStats, i int, n int64) {
	s.all.add(i, n)
	if ts != nil {
		ts.add(i, n)
	}
}

func (s *topicSet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

func (s *topicSet) Collect(ch chan<- prometheus.Metric) {
	var exists func(string) bool
	if p := s.exists.Load(); p != nil {
		exists = *p
	}
	type named struct {
		name string
		ts   *topicStats
	}
	var topics []named
	s.byName.Range(func(k, v any) bool {
		name := k.(string)
		if exists != nil && !exists(name) {
			s.byName.Delete(name)
			return true
		}
		topics = append(topics, named{name, v.(*topicStats)})
		return true
	})
	for i, c := range topicCounters {
		if c.allOnly {
			ch <- prometheus.MustNewConstMetric(s.descs[i], prometheus.CounterValue, float64(s.all.c[i].Load()))
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.descs[i], prometheus.CounterValue, float64(s.all.c[i].Load()), "")
		for _, t := range topics {
			ch <- prometheus.MustNewConstMetric(s.descs[i], prometheus.CounterValue, float64(t.ts.c[i].Load()), t.name)
		}
	}
}

// SetTopicExists tells the registry how to check that a topic still exists: the per-topic
// series of a deleted topic are dropped at the next scrape.
func (m *Metrics) SetTopicExists(fn func(topic string) bool) { m.topics.exists.Store(&fn) }

// ReplicationBytesIn counts record bytes a follower replica here fetched and appended
// (kafka_server_brokertopicmetrics_replicationbytesin_total).
func (m *Metrics) ReplicationBytesIn(n int64) { m.topics.all.add(tReplicationBytesIn, n) }
