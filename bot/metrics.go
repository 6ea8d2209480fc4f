package bot

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	turns     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	tokens    *prometheus.CounterVec
	cost      *prometheus.CounterVec
	errors    *prometheus.CounterVec
	overheadS prometheus.Histogram
}

// NewMetrics creates the engine's series and registers them with reg (when
// reg is not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbot_turns_total",
			Help: "Turns handled by the engine, by source and outcome (answered, replayed, invalid, budget, model_error, error).",
		}, []string{"source", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "opsbot_model_latency_seconds",
			Help:    "Wall time of model calls, retries included, by model.",
			Buckets: []float64{0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120},
		}, []string{"model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbot_tokens_total",
			Help: "Tokens recorded in the usage ledger, by model and kind (prompt, completion, cached).",
		}, []string{"model", "kind"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbot_cost_micro_usd_total",
			Help: "Cost recorded in the usage ledger in micro-USD, by model.",
		}, []string{"model"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbot_engine_errors_total",
			Help: "Engine errors by kind (model timeout, rate_limited, unavailable, rejected, bad_answer; store; retrieval; unpriced_model; reply).",
		}, []string{"kind"}),
		overheadS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "opsbot_turn_overhead_seconds",
			Help:    "Engine time per answered turn, excluding the model call.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.turns, m.latency, m.tokens, m.cost, m.errors, m.overheadS)
	}
	return m
}

func (m *Metrics) turn(source, outcome string) {
	if m != nil {
		m.turns.WithLabelValues(source, outcome).Inc()
	}
}

func (m *Metrics) modelCall(model string, d time.Duration) {
	if m != nil {
		m.latency.WithLabelValues(model).Observe(d.Seconds())
	}
}

func (m *Metrics) usage(u Usage) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(u.Model, "prompt").Add(float64(u.PromptTokens))
	m.tokens.WithLabelValues(u.Model, "completion").Add(float64(u.CompletionTokens))
	m.tokens.WithLabelValues(u.Model, "cached").Add(float64(u.CachedTokens))
	m.cost.WithLabelValues(u.Model).Add(float64(u.CostMicroUSD))
}

func (m *Metrics) error(kind string) {
	if m != nil {
		m.errors.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) overhead(d time.Duration) {
	if m != nil {
		m.overheadS.Observe(d.Seconds())
	}
}
