package broker

import (
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moldau/moldau/internal/metrics"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/server"
)

// kafkaGauges is a prometheus.Collector of the gauges Kafka's JMX exporter rules (Strimzi's
// kafka-metrics.yaml) name, computed at scrape time from the partitions hosted here and the
// metadata image:
//
//	kafka_server_replicamanager_*          this broker's replicas (ReplicaManager's gauges)
//	kafka_cluster_partition_*              per partition led here: under-replicated, under/at min ISR
//	kafka_controller_kafkacontroller_*     the cluster as the metadata image has it; as in Kafka,
//	                                       the counts are reported by the active controller only
//	                                       (0 elsewhere), so a sum over brokers is the cluster's
//	kafka_server_replicamanager_isr{shrinks,expands}_total
//	                                       ISR changes of partitions led here that the controller
//	                                       committed (ReplicaManager IsrShrinksPerSec, IsrExpandsPerSec)
//	kafka_controller_controllerstats_uncleanleaderelections_total
//	                                       unclean elections this node committed as the active
//	                                       controller (a sum over nodes is the cluster's)
//	kafka_server_kafkaserver_linux_disk_{read,write}_bytes
//	                                       this process's storage I/O from /proc/self/io
//	                                       (read_bytes, write_bytes), as Kafka's KafkaServer reads it
//	kafka_log_log_*                        per partition hosted here: size, offsets, segments
//	kafka_server_socket_server_metrics_*   per listener (the client ones and CONTROLLER's Kafka
//	                                       protocol side): connections open, opened, closed
//	                                       (networkProcessor="0": Moldau has no processor threads,
//	                                       a goroutine per connection)
type kafkaGauges struct{ b *Broker }

var (
	rmPartitions     = desc("kafka_server_replicamanager_partitioncount", "Partitions hosted by this broker (ReplicaManager PartitionCount).")
	rmLeaders        = desc("kafka_server_replicamanager_leadercount", "Partitions this broker leads (ReplicaManager LeaderCount).")
	rmUnderRepl      = desc("kafka_server_replicamanager_underreplicatedpartitions", "Partitions led here whose ISR is smaller than their replica set.")
	rmUnderMinISR    = desc("kafka_server_replicamanager_underminisrpartitioncount", "Partitions led here whose ISR is below min.insync.replicas.")
	rmAtMinISR       = desc("kafka_server_replicamanager_atminisrpartitioncount", "Partitions led here whose ISR is exactly min.insync.replicas.")
	rmOffline        = desc("kafka_server_replicamanager_offlinereplicacount", "Replicas hosted here that are offline (their log dir failed).")
	cpUnderRepl      = desc("kafka_cluster_partition_underreplicated", "1 when this partition, led here, is under-replicated.", "topic", "partition")
	cpUnderMinISR    = desc("kafka_cluster_partition_underminisr", "1 when this partition, led here, has fewer in-sync replicas than min.insync.replicas.", "topic", "partition")
	cpReplicas       = desc("kafka_cluster_partition_replicascount", "Replicas of this partition, led here.", "topic", "partition")
	cpAtMinISR       = desc("kafka_cluster_partition_atminisr", "1 when this partition, led here, has exactly min.insync.replicas in-sync replicas.", "topic", "partition")
	kcActive         = desc("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller (the raft leader of the metadata quorum), 0 elsewhere.")
	kcOffline        = desc("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader (reported by the active controller).")
	kcTopics         = desc("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster (reported by the active controller).")
	kcPartitions     = desc("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions in the cluster (reported by the active controller).")
	kcImbalance      = desc("kafka_controller_kafkacontroller_preferredreplicaimbalancecount", "Partitions whose leader is not their preferred (first) replica (reported by the active controller).")
	kcFenced         = desc("kafka_controller_kafkacontroller_fencedbrokercount", "Registered brokers that are fenced (reported by the active controller).")
	kcActiveBrokers  = desc("kafka_controller_kafkacontroller_activebrokercount", "Registered brokers that are unfenced (reported by the active controller).")
	logSize          = desc("kafka_log_log_size", "Bytes of this partition's log on this broker.", "topic", "partition")
	logStart         = desc("kafka_log_log_logstartoffset", "The partition's log start offset on this broker.", "topic", "partition")
	logEnd           = desc("kafka_log_log_logendoffset", "The partition's log end offset on this broker.", "topic", "partition")
	logSegments      = desc("kafka_log_log_numlogsegments", "Segments of this partition's log on this broker.", "topic", "partition")
	connCount        = desc("kafka_server_socket_server_metrics_connection_count", "Connections open on this listener.", "listener", "networkProcessor")
	connCreated      = desc("kafka_server_socket_server_metrics_connection_creation_total", "Connections accepted on this listener since start.", "listener", "networkProcessor")
	connClosed       = desc("kafka_server_socket_server_metrics_connection_close_total", "Connections of this listener closed since start.", "listener", "networkProcessor")
	topicCurrentOffs = desc("kafka_topic_partition_current_offset", "High watermark of a partition led here (kafka_exporter's name).", "topic", "partition")
	rmIsrShrinks     = desc("kafka_server_replicamanager_isrshrinks_total", "ISR shrinks of partitions led here, committed by the controller (ReplicaManager IsrShrinksPerSec).")
	rmIsrExpands     = desc("kafka_server_replicamanager_isrexpands_total", "ISR expansions of partitions led here, committed by the controller (ReplicaManager IsrExpandsPerSec).")
	csUnclean        = desc("kafka_controller_controllerstats_uncleanleaderelections_total", "Unclean leader elections this node committed as the active controller (ControllerStats UncleanLeaderElectionsPerSec).")
	diskRead         = desc("kafka_server_kafkaserver_linux_disk_read_bytes", "Bytes this process caused to be read from storage (read_bytes of /proc/self/io).")
	diskWrite        = desc("kafka_server_kafkaserver_linux_disk_write_bytes", "Bytes this process caused to be written to storage (write_bytes of /proc/self/io).")
	topicOldestOffs  = desc("kafka_topic_partition_oldest_offset", "Log start offset of a partition led here (kafka_exporter's name).", "topic", "partition")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func (g kafkaGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rmPartitions, rmLeaders, rmUnderRepl, rmUnderMinISR, rmAtMinISR, rmOffline,
		cpUnderRepl, cpUnderMinISR, cpAtMinISR, cpReplicas, kcActive, kcOffline, kcTopics, kcPartitions, kcImbalance, kcFenced,
		kcActiveBrokers, logSize, logStart, logEnd, logSegments, topicCurrentOffs, topicOldestOffs, connCount, connCreated, connClosed,
		rmIsrShrinks, rmIsrExpands, csUnclean, diskRead, diskWrite} {
		ch <- d
	}
}

func (g kafkaGauges) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var hosted, leaders, underRepl, underMin, atMin, offline int
	// In the registry's order (metrics.RegistryOrder), so its sort of each family finds them sorted.
	for _, hp := range metrics.RegistryOrder(g.b.parts.All(), func(p *partition.Partition) string { return p.Topic }, func(p *partition.Partition) int32 { return p.Index }) {
		p, part := hp.Item, hp.Partition
		hosted++
		if err := p.Offline(); err != nil {
			offline++
			continue
		}
		gauge(logSize, float64(p.Size()), p.Topic, part)
		gauge(logStart, float64(p.LogStartOffset()), p.Topic, part)
		gauge(logEnd, float64(p.LogEndOffset()), p.Topic, part)
		gauge(logSegments, float64(p.Log().NumSegments()), p.Topic, part)
		if !p.IsLeader() {
			continue
		}
		leaders++
		gauge(topicCurrentOffs, float64(p.HighWatermark()), p.Topic, part)
		gauge(topicOldestOffs, float64(p.LogStartOffset()), p.Topic, part)
		s, ok := p.Replication()
		if !ok {
			continue
		}
		minISR := p.Settings().MinInsyncReplicas
		ur, um, am := 0.0, 0.0, 0.0
		if len(s.ISR) < len(s.Replicas) {
			ur = 1
			underRepl++
		}
		if len(s.ISR) < minISR {
			um = 1
			underMin++
		}
		if len(s.ISR) == minISR {
			am = 1
			atMin++
		}
		gauge(cpUnderRepl, ur, p.Topic, part)
		gauge(cpUnderMinISR, um, p.Topic, part)
		gauge(cpAtMinISR, am, p.Topic, part)
		gauge(cpReplicas, float64(len(s.Replicas)), p.Topic, part)
	}
	servers := make([]*server.Server, 0, len(g.b.listeners)+1)
	for _, l := range g.b.listeners {
		servers = append(servers, l.srv)
	}
	if g.b.ctrlSrv != nil {
		servers = append(servers, g.b.ctrlSrv) // the Kafka protocol side of the controller listener
	}
	for _, srv := range servers {
		open, accepted, closed := srv.ConnectionStats()
		gauge(connCount, float64(open), srv.Listener(), "0")
		ch <- prometheus.MustNewConstMetric(connCreated, prometheus.CounterValue, float64(accepted), srv.Listener(), "0")
		ch <- prometheus.MustNewConstMetric(connClosed, prometheus.CounterValue, float64(closed), srv.Listener(), "0")
	}
	gauge(rmPartitions, float64(hosted))
	gauge(rmLeaders, float64(leaders))
	gauge(rmUnderRepl, float64(underRepl))
	gauge(rmUnderMinISR, float64(underMin))
	gauge(rmAtMinISR, float64(atMin))
	gauge(rmOffline, float64(offline))
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	counter(rmIsrShrinks, float64(g.b.isrShrinks.Load()))
	counter(rmIsrExpands, float64(g.b.isrExpands.Load()))
	counter(csUnclean, float64(g.b.meta.UncleanElections()))
	if read, write, ok := procSelfIO(); ok {
		// Gauges, as the JMX exporter types Kafka's linux-disk-*-bytes (irate works on them).
		gauge(diskRead, float64(read))
		gauge(diskWrite, float64(write))
	}

	active := g.b.meta.IsController()
	var topics, partitions, offlineParts, imbalance, fenced, unfenced int
	if active {
		im := g.b.meta.Image()
		for _, t := range im.Topics() {
			topics++
			for _, p := range t.Partitions {
				partitions++
				if p.Leader < 0 {
					offlineParts++
				} else if len(p.Replicas) > 0 && p.Leader != p.Replicas[0] {
					imbalance++
				}
			}
		}
		for _, br := range im.Brokers() {
			if br.Fenced {
				fenced++
			} else {
				unfenced++
			}
		}
	}
	gauge(kcActive, boolGauge(active))
	gauge(kcOffline, float64(offlineParts))
	gauge(kcTopics, float64(topics))
	gauge(kcPartitions, float64(partitions))
	gauge(kcImbalance, float64(imbalance))
	gauge(kcFenced, float64(fenced))
	gauge(kcActiveBrokers, float64(unfenced))
}

// procSelfIO reads read_bytes and write_bytes of /proc/self/io (Linux; false elsewhere or
// when the kernel does not keep I/O accounting).
func procSelfIO() (read, write int64, ok bool) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0, false
	}
	var haveRead, haveWrite bool
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "read_bytes":
			read, haveRead = n, true
		case "write_bytes":
			write, haveWrite = n, true
		}
	}
	return read, write, haveRead && haveWrite
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
