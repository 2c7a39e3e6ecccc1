package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dashboardDir holds copies of widely used Kafka Grafana dashboards (README.md there names
// their sources and commits).
const dashboardDir = "../metrics/testdata/dashboards"

// unservedDashboardNames are the metric names the stored dashboards query that Moldau knowingly
// does not serve, each with the reason. TestDashboardNames fails when a dashboard name is
// neither served nor listed here, and when a name listed here is served (or no dashboard
// queries it): the list stays honest.
var unservedDashboardNames = map[string]string{
	// The JVM: Moldau is a Go process (go_* and process_* describe it instead).
	"jvm_memory_used_bytes":                         "no JVM: go_memstats_* describe the Go heap",
	"jvm_memory_bytes_used":                         "no JVM",
	"jvm_memory_bytes_committed":                    "no JVM",
	"jvm_memory_committed_bytes":                    "no JVM",
	"jvm_memory_bytes_max":                          "no JVM",
	"jvm_memory_max_bytes":                          "no JVM",
	"jvm_gc_collection_seconds_sum":                 "no JVM: go_gc_duration_seconds is the Go collector's",
	"jvm_gc_collection_seconds_count":               "no JVM: go_gc_duration_seconds is the Go collector's",
	"jvm_threads_current":                           "no JVM: go_goroutines and go_threads instead",
	"jvm_threads_daemon":                            "no JVM",
	"jvm_threads_peak":                              "no JVM",
	"jvm_threads_deadlocked":                        "no JVM",
	"jvm_threads_state":                             "no JVM",
	"jvm_classes_loaded":                            "no JVM",
	"jvm_classes_loaded_total":                      "no JVM",
	"java_lang_memory_heapmemoryusage_used":         "no JVM",
	"java_lang_memory_heapmemoryusage_committed":    "no JVM",
	"java_lang_memory_heapmemoryusage_max":          "no JVM",
	"java_lang_memory_nonheapmemoryusage_used":      "no JVM",
	"java_lang_memory_nonheapmemoryusage_committed": "no JVM",
	"java_lang_memory_nonheapmemoryusage_max":       "no JVM",
	"java_lang_operatingsystem_cpuload":             "no JVM: process_cpu_seconds_total instead",
	"java_lang_operatingsystem_processcputime":      "no JVM: process_cpu_seconds_total instead",
	"java_lang_operatingsystem_systemloadaverage":   "no JVM; the host's load is node_exporter's",
	"java_lang_runtime_uptime":                      "no JVM: process_start_time_seconds instead",
	"java_lang_runtime_starttime":                   "no JVM: process_start_time_seconds instead",
	"java_lang_classloading_loadedclasscount":       "no JVM",
	"java_lang_threading_daemonthreadcount":         "no JVM",
	"java_lang_threading_peakthreadcount":           "no JVM",
	"java_lang_threading_threadcount":               "no JVM",
	"container_memory_usage_bytes":                  "cAdvisor's (the kubelet), not a broker's",
	"container_cpu_usage_seconds_total":             "cAdvisor's (the kubelet), not a broker's",
	"kubelet_volume_stats_available_bytes":          "the kubelet's, not a broker's",

	// ZooKeeper: Moldau's metadata is a raft quorum (KRaft mode); there is no ZooKeeper.
	"kafka_server_zookeeperclientmetrics_zookeeperrequestlatencyms":       "no ZooKeeper",
	"kafka_server_zookeeperclientmetrics_zookeeperrequestlatencyms_count": "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeeperauthfailures_total":      "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeeperauthfailurespersec":      "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeeperdisconnects_total":       "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeeperdisconnectspersec":       "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeeperexpires_total":           "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeeperexpirespersec":           "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeepersyncconnects_total":      "no ZooKeeper",
	"kafka_server_sessionexpirelistener_zookeepersyncconnectspersec":      "no ZooKeeper",
	"leader_uptime":                 "ZooKeeper's own exporter (ZooKeeper up/down panel)",
	"num_alive_connections":         "ZooKeeper's own exporter",
	"zookeeper_leaderuptime":        "ZooKeeper's own exporter",
	"zookeeper_numaliveconnections": "ZooKeeper's own exporter",

	// Grafana Cloud integration spellings the mixin accepts as alternatives ("or") of names
	// Moldau serves; listed so that a chain none of whose names is served still fails.
	"kafka_controller_kafkacontroller_activecontrollercount_value":          "Grafana Cloud spelling of …_activecontrollercount (served)",
	"kafka_controller_kafkacontroller_offlinepartitionscount_value":         "Grafana Cloud spelling of …_offlinepartitionscount (served)",
	"kafka_controller_kafkacontroller_preferredreplicaimbalancecount_value": "Grafana Cloud spelling of …_preferredreplicaimbalancecount (served)",
	"kafka_server_replicamanager_total_partitioncount_value":                "Grafana Cloud spelling of …_partitioncount (served)",
	"kafka_server_kafkaserver_total_brokerstate_value":                      "Grafana Cloud spelling of …_brokerstate",
	"kafka_server_brokertopicmetrics_bytesinpersec":                         "Grafana Cloud spelling of …_bytesin_total (served)",
	"kafka_server_brokertopicmetrics_bytesinpersec_count":                   "Grafana Cloud spelling of …_bytesin_total (served)",
	"kafka_server_brokertopicmetrics_bytesoutpersec":                        "Grafana Cloud spelling of …_bytesout_total (served)",
	"kafka_server_brokertopicmetrics_bytesoutpersec_count":                  "Grafana Cloud spelling of …_bytesout_total (served)",
	"kafka_server_brokertopicmetrics_messagesinpersec":                      "Grafana Cloud spelling of …_messagesin_total (served)",
	"kafka_server_brokertopicmetrics_messagesinpersec_count":                "Grafana Cloud spelling of …_messagesin_total (served)",
	"kafka_server_brokertopicmetrics_fetchmessageconversionspersec":         "Grafana Cloud spelling of …_fetchmessageconversions_total (served)",
	"kafka_server_brokertopicmetrics_fetchmessageconversionspersec_count":   "Grafana Cloud spelling of …_fetchmessageconversions_total (served)",
	"kafka_server_brokertopicmetrics_producemessageconversionspersec":       "Grafana Cloud spelling of …_producemessageconversions_total (served)",
	"kafka_server_brokertopicmetrics_producemessageconversionspersec_count": "Grafana Cloud spelling of …_producemessageconversions_total (served)",
	"kafka_controller_controllerstats_uncleanleaderelectionspersec":         "Grafana Cloud spelling of …_uncleanleaderelections_total (served)",
	"kafka_server_replicamanager_isrshrinkspersec":                          "Grafana Cloud spelling of …_isrshrinks_total (served)",
	"kafka_server_replicamanager_total_isrshrinkspersec_count":              "Grafana Cloud spelling of …_isrshrinks_total (served)",
	"kafka_server_replicamanager_isrexpandspersec":                          "Grafana Cloud spelling of …_isrexpands_total (served)",
	"kafka_server_replicamanager_total_isrexpandspersec_count":              "Grafana Cloud spelling of …_isrexpands_total (served)",
	"kafka_consumergroup_uncommitted_offsets":                               "Grafana Cloud spelling of kafka_consumergroup_lag (served)",

	// Lag exporters' names for which Moldau serves an equivalent under another exporter's name.
	"kafka_consumer_lag_millis": "kafka-lag-exporter/Grafana Cloud name; Moldau serves the same as kafka_consumergroup_lag_seconds",

	// Kafka's thread pools, which Moldau does not have.
	"kafka_network_socketserver_networkprocessoravgidle_percent":         "no network processor threads: a goroutine reads and writes each connection",
	"kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent": "no request handler pool: each connection's reader goroutine handles its requests",

	// KRaft: Moldau's metadata quorum is hashicorp/raft; what it does not expose is not served.
	"kafka_server_raftmetrics_append_records_rate":        "hashicorp/raft keeps no append rate (moldau_raft_commit_index counts entries)",
	"kafka_server_raftmetrics_fetch_records_rate":         "hashicorp/raft replicates by AppendEntries, not fetches",
	"kafka_server_raftmetrics_commit_latency_avg":         "hashicorp/raft's commit time is in its go-metrics, not exported here",
	"kafka_server_raftmetrics_current_vote":               "hashicorp/raft does not expose whom it voted for",
	"kafka_server_raftchannelmetrics_incoming_byte_total": "hashicorp/raft's transport keeps no byte or request counts",
	"kafka_server_raftchannelmetrics_outgoing_byte_total": "hashicorp/raft's transport keeps no byte or request counts",
	"kafka_server_raftchannelmetrics_request_total":       "hashicorp/raft's transport keeps no byte or request counts",
	"kafka_server_raftchannelmetrics_response_total":      "hashicorp/raft's transport keeps no byte or request counts",
}

// TestDashboardNames: every metric name the stored Kafka Grafana dashboards query is served by
// a broker's /metrics after real produce, consume and group traffic, or is listed in
// unservedDashboardNames with its reason; of an "a or b" chain one served name is enough.
func TestDashboardNames(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardDir, err)
	}
	b := testBroker(t, t.TempDir(), "offsets.topic.num.partitions", "1")
	defer stopBroker(t, b)
	dashboardTraffic(t, b)
	// The lag metrics are computed at most a second apart: wait until the group's commit shows.
	served := scrapeNames(t, b)
	for deadline := time.Now().Add(10 * time.Second); !served("kafka_consumergroup_lag") && time.Now().Before(deadline); {
		served = scrapeNames(t, b)
	}

	queried := map[string]bool{}
	total, covered := 0, 0
	for _, f := range files {
		exprs := dashboardExprs(t, f)
		if len(exprs) == 0 {
			t.Fatalf("%s: no queries found", f)
		}
		for _, e := range exprs {
			q, err := parseQuery(e)
			if err != nil {
				t.Fatalf("%s: %q: %v", filepath.Base(f), e, err)
			}
			for _, n := range q.names() {
				queried[n] = true
			}
			if q.satisfied(served) {
				continue
			}
			for _, n := range q.names() {
				if !served(n) && unservedDashboardNames[n] == "" {
					t.Errorf("%s queries %s: not served and not listed as unserved (query %q)", filepath.Base(f), n, e)
				}
			}
		}
	}
	for n := range queried {
		total++
		if served(n) {
			covered++
		}
	}
	for n, why := range unservedDashboardNames {
		if served(n) {
			t.Errorf("%s is listed as unserved (%s) but /metrics serves it: drop it from the list", n, why)
		}
		if !queried[n] {
			t.Errorf("%s is listed as unserved but no stored dashboard queries it", n)
		}
	}
	t.Logf("dashboard coverage: %d names queried, %d served, %d listed as unserved", total, covered, len(unservedDashboardNames))
}

// dashboardTraffic gives a broker the traffic that makes its per-topic and per-request series
// exist: a topic, produced records, a group consuming and committing them.
func dashboardTraffic(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 2, 1, nil, "dash"); err != nil {
		t.Fatal(err)
	}
	p := client(t, b, kgo.DefaultProduceTopic("dash"))
	for i := range 10 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := client(t, b, kgo.ConsumeTopics("dash"), kgo.ConsumerGroup("dash-g"), kgo.DisableAutoCommit())
	for got := 0; got < 10; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}

// scrapeNames parses /metrics and returns whether a name is served: a counter's or gauge's
// family name, a summary's or histogram's name and its _count and _sum series, a histogram's
// _bucket series.
func scrapeNames(t *testing.T, b *Broker) func(string) bool {
	t.Helper()
	families := scrape(t, b)
	names := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_SUMMARY:
			names[name+"_count"], names[name+"_sum"] = true, true
		case dto.MetricType_HISTOGRAM:
			names[name+"_count"], names[name+"_sum"], names[name+"_bucket"] = true, true, true
		}
	}
	return func(n string) bool { return names[n] }
}

// dashboardExprs is every PromQL query of a Grafana dashboard: the panels' targets' expr and
// the query of its query variables.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok && strings.TrimSpace(e) != "" {
				out = append(out, e)
			}
			if v["type"] == "query" {
				switch q := v["query"].(type) {
				case string:
					out = append(out, q)
				case map[string]any:
					if s, ok := q["query"].(string); ok {
						out = append(out, s)
					}
				}
			}
			for k, c := range v {
				if k != "expr" && k != "query" {
					walk(c)
				}
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return out
}

// query is a PromQL expression reduced to what it needs served: a metric name, or all of its
// parts (and), or any one of them (or).
type query struct {
	name  string
	or    bool
	parts []*query
}

func (q *query) satisfied(served func(string) bool) bool {
	if q.name != "" {
		return served(q.name)
	}
	for _, p := range q.parts {
		if p.satisfied(served) == q.or {
			return q.or
		}
	}
	return !q.or
}

func (q *query) names() []string {
	if q.name != "" {
		return []string{q.name}
	}
	var out []string
	for _, p := range q.parts {
		for _, n := range p.names() {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// promqlWords are PromQL's aggregation operators and keywords: identifiers that are not metric
// names (functions are recognised by the parenthesis that follows them).
var promqlWords = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true, "limitk": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
}

// labelLists are the words followed by a parenthesised list of label names, not an expression.
var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// parseQuery reduces a PromQL expression (or a Grafana variable query: label_values,
// query_result) to the metric names it selects: identifiers that are neither keywords nor
// followed by "(", and the names of {__name__=~"a|b"} selectors. Label matchers in braces,
// ranges in brackets, strings, numbers, Grafana $variables and label lists after by/without/on
// are skipped. Top-level "or" at any depth makes a chain of which one part is enough.
func parseQuery(s string) (*query, error) {
	p := &promqlParser{s: s}
	q, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.s) {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
	}
	return q, nil
}

type promqlParser struct {
	s string
	i int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// expr parses up to an unmatched ")" or "," or the end: terms joined by "or".
func (p *promqlParser) expr() (*query, error) {
	alts := &query{or: true}
	term := &query{}
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ')' || c == ',':
			alts.parts = append(alts.parts, term)
			return alts, nil
		case c == '(':
			p.i++
			sub, err := p.expr()
			if err != nil {
				return nil, err
			}
			for p.i < len(p.s) && p.s[p.i] == ',' { // further arguments of a function
				p.i++
				more, err := p.expr()
				if err != nil {
					return nil, err
				}
				sub = &query{parts: []*query{sub, more}}
			}
			if p.i >= len(p.s) {
				return nil, fmt.Errorf("unclosed (")
			}
			p.i++
			term.parts = append(term.parts, sub)
		case c == '{':
			names, err := p.matchers()
			if err != nil {
				return nil, err
			}
			if len(names) > 0 {
				sel := &query{or: true}
				for _, n := range names {
					sel.parts = append(sel.parts, &query{name: n})
				}
				term.parts = append(term.parts, sel)
			}
		case c == '[':
			end := strings.IndexByte(p.s[p.i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [")
			}
			p.i += end + 1
		case c == '"' || c == '\'' || c == '`':
			if err := p.skipString(); err != nil {
				return nil, err
			}
		case c == '$':
			p.i++
			for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '{' || p.s[p.i] == '}') {
				p.i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '.') {
				p.i++
			}
		case isIdentStart(c):
			start := p.i
			for p.i < len(p.s) && isIdent(p.s[p.i]) {
				p.i++
			}
			word := p.s[start:p.i]
			next := p.skipSpace()
			switch {
			case word == "or":
				alts.parts = append(alts.parts, term)
				term = &query{}
			case labelLists[word] && next == '(':
				end := strings.IndexByte(p.s[p.i:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed label list after %s", word)
				}
				p.i += end + 1
			case word == "label_values" && next == '(':
				// label_values(selector, label) / label_values(label): only a selector names metrics.
				p.i++
				sub, err := p.expr()
				if err != nil {
					return nil, err
				}
				if p.i < len(p.s) && p.s[p.i] == ',' {
					end := strings.IndexByte(p.s[p.i:], ')')
					if end < 0 {
						return nil, fmt.Errorf("unclosed label_values(")
					}
					p.i += end
				} else if len(sub.names()) == 1 && !strings.ContainsAny(p.s[start:p.i], "{") {
					sub = &query{} // label_values(label): a label, no metric
				}
				if p.i >= len(p.s) || p.s[p.i] != ')' {
					return nil, fmt.Errorf("unclosed label_values(")
				}
				p.i++
				term.parts = append(term.parts, sub)
			case promqlWords[word] || next == '(':
				// an operator, keyword or function name: what follows is parsed on its own
			default:
				term.parts = append(term.parts, &query{name: word})
			}
		default:
			p.i++ // operators, whitespace
		}
	}
	alts.parts = append(alts.parts, term)
	return alts, nil
}

// skipSpace moves past white space and returns the next byte (0 at the end).
func (p *promqlParser) skipSpace() byte {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *promqlParser) skipString() error {
	quote := p.s[p.i]
	for p.i++; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case '\\':
			p.i++
		case quote:
			p.i++
			return nil
		}
	}
	return fmt.Errorf("unclosed string")
}

// matchers skips a {…} label matcher list and returns the metric names of a __name__ matcher
// ("a" or "a|b|c"; a regular expression beyond alternatives of plain names is an error).
func (p *promqlParser) matchers() ([]string, error) {
	var names []string
	p.i++ // {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '}':
			p.i++
			return names, nil
		case c == '"' || c == '\'' || c == '`':
			if err := p.skipString(); err != nil {
				return nil, err
			}
		case isIdentStart(c):
			start := p.i
			for p.i < len(p.s) && isIdent(p.s[p.i]) {
				p.i++
			}
			if p.s[start:p.i] != "__name__" {
				continue
			}
			for p.i < len(p.s) && strings.IndexByte(" =~!", p.s[p.i]) >= 0 {
				p.i++
			}
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return nil, fmt.Errorf("__name__ matcher without a string")
			}
			from := p.i + 1
			if err := p.skipString(); err != nil {
				return nil, err
			}
			for _, n := range strings.Split(p.s[from:p.i-1], "|") {
				for j := 0; j < len(n); j++ {
					if !isIdent(n[j]) {
						return nil, fmt.Errorf("__name__ matcher %q is not a list of names", n)
					}
				}
				names = append(names, n)
			}
		default:
			p.i++
		}
	}
	return nil, fmt.Errorf("unclosed {")
}

// TestParseQuery: the dashboard query reduction finds metric names and only them.
func TestParseQuery(t *testing.T) {
	served := func(n string) bool { return n == "a" || n == "c" }
	for _, c := range []struct {
		expr  string
		names []string
		ok    bool
	}{
		{`sum(irate(a{namespace="$ns",topic!=""}[5m])) by (pod)`, []string{"a"}, true},
		{`sum by (kafka_cluster,instance) (rate(b{x=~"$x"}[$__rate_interval])) or sum by (k) (a)`, []string{"b", "a"}, true},
		{`(avg by (k) (b) or avg by (k) (sum without (id) (d{area="heap"})))/(avg(c != -1))`, []string{"b", "d", "c"}, false},
		{`(b or a) / (c or d) * 100`, []string{"b", "a", "c", "d"}, true},
		{`label_values({__name__=~"b|a",topic!="__consumer_offsets"}, topic)`, []string{"b", "a"}, true},
		{`label_values(a, instance)`, []string{"a"}, true},
		{`query_result(b{ns="$ns"})`, []string{"b"}, false},
		{`time()-a{x="y"}`, []string{"a"}, true},
		{`clamp_max(b{k=~"$k"}, 1) or clamp_max(e, 0)`, []string{"b", "e"}, false},
		{`max(b) by (pod, current_state)`, []string{"b"}, false},
		{`histogram_quantile(0.99, sum(rate(a_bucket[5m])) by (le))`, []string{"a_bucket"}, false},
	} {
		q, err := parseQuery(c.expr)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if got := q.names(); !slices.Equal(got, c.names) {
			t.Errorf("%q: names %v, want %v", c.expr, got, c.names)
		}
		if got := q.satisfied(served); got != c.ok {
			t.Errorf("%q: satisfied = %v, want %v", c.expr, got, c.ok)
		}
	}
}
