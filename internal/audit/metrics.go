package audit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	appends     prometheus.Counter
	errors      prometheus.Counter
	checkpoints prometheus.Counter
	batch       prometheus.Histogram
	fsync       prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "audit", Name: "appends_total",
			Help: "Audit event records appended (durability fsync: made durable; write: written, fsynced in the background).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "audit", Name: "errors_total",
			Help: "Audit append failures (encoding, write, fsync, head).",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "audit", Name: "checkpoints_total",
			Help: "Signed checkpoints written.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "audit", Name: "batch_records",
			Help:    "Event records per write (durability fsync: per write+fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "audit", Name: "fsync_seconds",
			Help:    "Latency of audit log fsyncs.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14),
		}),
	}
}

// Collectors returns the log's Prometheus collectors for the admin
// listener's registry. Labels never carry principals.
func (l *Log) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.m.appends, l.m.errors, l.m.checkpoints, l.m.batch, l.m.fsync}
}
