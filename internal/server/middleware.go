package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/requestid"
)

// httpMetrics are the API listener's request metrics. Labels are bounded:
// the front end (api, scim, other), method and status class — never
// principals, ids or paths.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "http", Name: "requests_total",
			Help: "API requests by front end, method and status code class.",
		}, []string{"frontend", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "API request latency by front end.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"frontend"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "http", Name: "in_flight_requests",
			Help: "API requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inflight)
	return m
}

// statusRecorder captures the response status for logs and metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func frontendOf(path string) string {
	switch {
	case len(path) >= 8 && path[:8] == "/api/v1/" || path == "/api/v1":
		return "api"
	case len(path) >= 8 && path[:8] == "/scim/v2":
		return "scim"
	case path == "/sts" || strings.HasPrefix(path, "/sts/"):
		return "sts"
	default:
		return "other"
	}
}

// instrument assigns the request id, recovers panics, logs one line per
// request and records metrics. It is the outermost layer of the API listener.
func instrument(next http.Handler, log *slog.Logger, m *httpMetrics) http.Handler {
	return instrumentAs("", next, log, m)
}

// instrumentAs is instrument with a fixed front-end label ("" derives it
// from the path), for listeners that serve one front end on every path.
func instrumentAs(frontend string, next http.Handler, log *slog.Logger, m *httpMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, id := requestid.Ensure(r)
		ctx := r.Context()
		w.Header().Set(requestid.Header, id)
		rec := &statusRecorder{ResponseWriter: w}
		fe := frontend
		if fe == "" {
			fe = frontendOf(r.URL.Path)
		}
		m.inflight.Inc()
		defer func() {
			m.inflight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "path", r.URL.Path)
				if rec.status == 0 {
					w.Header().Set("Content-Type", "application/json")
					rec.WriteHeader(http.StatusInternalServerError)
					fmt.Fprintf(rec, `{"error":{"code":"internal","message":"internal error","request_id":%q}}`, id)
				}
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			d := time.Since(start)
			m.requests.WithLabelValues(fe, r.Method, strconv.Itoa(rec.status/100)+"xx").Inc()
			m.duration.WithLabelValues(fe).Observe(d.Seconds())
			log.InfoContext(ctx, "request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(d.Microseconds())/1000,
				"remote", r.RemoteAddr)
		}()
		next.ServeHTTP(rec, r)
	})
}
