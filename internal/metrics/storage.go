package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// logSyncMetrics is the log dirs' group commit (log.Syncer): one filesystem sync covers every
// produce waiting on it (log.flush.interval.messages=1, fsync before ack).
type logSyncMetrics struct {
	duration *prometheus.HistogramVec // by log_dir
	batch    *prometheus.HistogramVec // by log_dir
}

func newLogSyncMetrics() *logSyncMetrics {
	return &logSyncMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moldau_log_fsync_duration_seconds",
			Help:    "Time of one filesystem sync of a log dir (syncfs), by log dir.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"log_dir"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moldau_log_group_commit_batch_size",
			Help:    "Callers (produce requests and other writers waiting for durability) that one sync of a log dir covered, by log dir.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
		}, []string{"log_dir"}),
	}
}

// LogSynced records one group-committed sync of a log dir: callers is how many Sync calls it
// covered, took how long the filesystem sync took (partition.WithSyncObserver).
func (m *Metrics) LogSynced(dir string, callers int, took time.Duration) {
	m.logSync.duration.WithLabelValues(dir).Observe(took.Seconds())
	m.logSync.batch.WithLabelValues(dir).Observe(float64(callers))
}
