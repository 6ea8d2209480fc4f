package bot

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// metricValue sums the series of a metric family whose labels include want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	llm := &fakeLLM{text: "ok", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1000, CompletionTokens: 500, CachedTokens: 200}}
	e := New(Config{DB: testPool, LLM: llm, Metrics: m, Model: "gpt-4o-mini"})
	user := mustUser(t)
	conv := mustConversation(t, user)
	ctx := context.Background()
	if _, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "api"}, nil); err != nil {
		t.Fatalf("Respond: %v", err)
	}
	llm.err = &ModelError{Kind: ModelTimeout, Err: errors.New("slow")}
	_, _ = e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "again", Source: "slack"}, nil)
	_, _ = e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "", Source: "api"}, nil)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"opsbot_turns_total", map[string]string{"source": "api", "outcome": "answered"}, 1},
		{"opsbot_turns_total", map[string]string{"source": "slack", "outcome": "model_error"}, 1},
		{"opsbot_turns_total", map[string]string{"source": "api", "outcome": "invalid"}, 1},
		{"opsbot_tokens_total", map[string]string{"model": "gpt-4o-mini", "kind": "prompt"}, 1000},
		{"opsbot_tokens_total", map[string]string{"model": "gpt-4o-mini", "kind": "completion"}, 500},
		{"opsbot_tokens_total", map[string]string{"model": "gpt-4o-mini", "kind": "cached"}, 200},
		// 800 x 0.15 + 200 x 0.075 + 500 x 0.60 = 120 + 15 + 300.
		{"opsbot_cost_micro_usd_total", map[string]string{"model": "gpt-4o-mini"}, 435},
		{"opsbot_engine_errors_total", map[string]string{"kind": "timeout"}, 1},
		{"opsbot_model_latency_seconds", map[string]string{"model": "gpt-4o-mini"}, 2},
		{"opsbot_turn_overhead_seconds", nil, 1},
	}
	for _, tt := range tests {
		if got := metricValue(t, reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}
