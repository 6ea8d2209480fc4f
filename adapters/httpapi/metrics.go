package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the request series of every route. A nil *httpMetrics
// records nothing.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	if reg == nil {
		return nil
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbot_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "opsbot_http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by route pattern (streamed replies included).",
			// Chat webhooks must ack in milliseconds; a turn over the API
			// may wait on the model for a minute.
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 120},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// instrument counts a route's requests under its pattern (never the raw
// path, which would make a series per conversation id).
func (m *httpMetrics) instrument(pattern string, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	obs := m.duration.WithLabelValues(pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r)
		obs.Observe(time.Since(start).Seconds())
		code := rec.status
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(pattern, strconv.Itoa(code)).Inc()
	})
}
