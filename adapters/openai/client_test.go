package openai

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
)

func TestAzureRequestShape(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Model: "gpt-4o-mini", Chunks: []string{"hi"}, Usage: &modelfake.Usage{Prompt: 5, Completion: 1}})
	var sl sleeps
	c := mustClient(t, Config{APIKey: "azure-key", AzureEndpoint: f.URL(), AzureAPIVersion: "2024-10-21",
		AzureDeployment: "ops-mini", Model: "gpt-4o-mini"}, &sl)
	comp, err := c.Complete(context.Background(), bot.Request{Messages: []bot.ChatMessage{{Role: bot.ChatUser, Content: "hello"}}, MaxTokens: 64}, nil)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	r := f.Requests()[0]
	if r.Path != "/openai/deployments/ops-mini/chat/completions" {
		t.Errorf("path = %q, want the deployment's chat completions", r.Path)
	}
	if r.Query != "api-version=2024-10-21" {
		t.Errorf("query = %q, want api-version=2024-10-21", r.Query)
	}
	if got := r.Header.Get("Api-Key"); got != "azure-key" {
		t.Errorf("api-key header = %q, want azure-key", got)
	}
	if r.Body["max_completion_tokens"] != float64(64) {
		t.Errorf("max_completion_tokens = %v, want 64", r.Body["max_completion_tokens"])
	}
	if comp.Text != "hi" || comp.Usage == nil || comp.Usage.PromptTokens != 5 {
		t.Errorf("completion = %+v", comp)
	}
}

func TestCompatibleServerGetsMaxTokens(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Chunks: []string{"ok"}, Usage: &modelfake.Usage{Prompt: 3, Completion: 1}})
	var sl sleeps
	c := mustClient(t, Config{BaseURL: f.BaseURL(), Model: "llama3.1:8b"}, &sl)
	if _, err := c.Complete(context.Background(), bot.Request{Messages: []bot.ChatMessage{{Role: "user", Content: "x"}}, MaxTokens: 32}, nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	r := f.Requests()[0]
	if r.Body["max_tokens"] != float64(32) || r.Body["max_completion_tokens"] != nil {
		t.Errorf("body = %v, want max_tokens 32 and no max_completion_tokens", r.Body)
	}
	if r.Body["model"] != "llama3.1:8b" {
		t.Errorf("model = %v, want llama3.1:8b", r.Body["model"])
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    map[string]string
		want time.Duration
	}{
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"fraction", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"ms wins", map[string]string{"Retry-After": "7", "Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"absurd seconds are capped", map[string]string{"Retry-After": "1e300"}, 24 * time.Hour},
		{"infinity is capped", map[string]string{"Retry-After": "Inf"}, 24 * time.Hour},
		{"NaN is ignored", map[string]string{"Retry-After": "NaN"}, 0},
		{"absurd ms are capped", map[string]string{"Retry-After-Ms": "1e300"}, 24 * time.Hour},
		{"far-future date is capped", map[string]string{"Retry-After": now.AddDate(5, 0, 0).Format(http.TimeFormat)}, 24 * time.Hour},
		{"absent", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			if got := parseRetryAfter(h, now); got != tt.want {
				t.Errorf("parseRetryAfter(%v) = %v, want %v", tt.h, got, tt.want)
			}
		})
	}
}

func TestConfigured(t *testing.T) {
	if (Config{}).Configured() {
		t.Errorf("empty config is configured")
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New(empty) succeeded")
	}
	if _, err := New(Config{AzureEndpoint: "https://x.openai.azure.com"}); err == nil {
		t.Errorf("Azure without a key succeeded")
	}
	for _, c := range []Config{{APIKey: "k"}, {BaseURL: "http://127.0.0.1:11434/v1"}} {
		if !c.Configured() {
			t.Errorf("%+v is not configured", c)
		}
	}
}

// A Retry-After longer than the call's remaining deadline is not waited
// out: the user hears about the rate limit now.
func TestRetryAfterBeyondDeadline(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Status: 429, Header: map[string]string{"Retry-After": "120"}})
	var sl sleeps
	c := mustClient(t, Config{APIKey: "k", BaseURL: f.BaseURL()}, &sl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Complete(ctx, bot.Request{Messages: []bot.ChatMessage{{Role: "user", Content: "x"}}}, nil)
	var me *bot.ModelError
	if !errors.As(err, &me) || me.Kind != bot.ModelRateLimited || me.RetryAfter != 120*time.Second || me.Status != 429 {
		t.Fatalf("error = %#v, want rate_limited with Retry-After 120s", err)
	}
	if n := len(f.Requests()); n != 1 || len(sl.all()) != 0 {
		t.Errorf("requests %d, waits %v; want 1 request and no wait", n, sl.all())
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	c, err := New(Config{APIKey: "k", BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.cfg.jitter = func() float64 { return 1 } // the ceiling itself
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for attempt, w := range want {
		if got := c.cfg.backoff(attempt); got != w {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, w)
		}
	}
	if got := c.cfg.backoff(100); got != time.Second {
		t.Errorf("backoff(100) = %v, want the 1s cap", got)
	}
	c.cfg.jitter = func() float64 { return 0 }
	if got := c.cfg.backoff(3); got != 0 {
		t.Errorf("backoff with zero jitter = %v, want 0", got)
	}
}

// The provider description goes to the log at start-up: no key, no URL
// credentials.
func TestStringHasNoSecrets(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{APIKey: "sk-secret-key-0123456789abcdef"}, "openai model=gpt-4o-mini"},
		{Config{APIKey: "sk-secret-key-0123456789abcdef", BaseURL: "https://llm:hunter2hunter2@vllm.internal:8000/v1?api-key=qwerty123456"},
			"openai-compatible https://vllm.internal:8000/v1 model=gpt-4o-mini"},
		{Config{APIKey: "azure-secret-key", AzureEndpoint: "https://ops.openai.azure.com/?sig=abcdef123456", AzureDeployment: "mini", AzureAPIVersion: "2024-10-21"},
			"azure-openai https://ops.openai.azure.com/ deployment=mini api-version=2024-10-21"},
		{Config{BaseURL: "://bad"}, "openai-compatible (unparseable URL) model=gpt-4o-mini"},
	}
	for _, tt := range tests {
		c, err := New(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// A streamed answer that takes longer than the silence limit is not cut
// off once its words flow, whether or not the caller takes the pieces; a
// model that says nothing is given up after the first-token timeout,
// retried once within the silence limit, and ends as a timeout.
func TestFirstTokenTimeout(t *testing.T) {
	req := bot.Request{Messages: []bot.ChatMessage{{Role: "user", Content: "explain"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const ft = 300 * time.Millisecond

	for _, streamed := range []bool{true, false} {
		// Six chunks 150 ms apart: 900 ms, past the 600 ms silence limit.
		slow := modelfake.ForTest(t, modelfake.Reply{Chunks: []string{"one ", "two ", "three ", "four ", "five ", "six"}, ChunkDelay: 150 * time.Millisecond, Usage: &modelfake.Usage{Prompt: 5, Completion: 6}})
		var sl sleeps
		c := mustClient(t, Config{APIKey: "k", BaseURL: slow.BaseURL(), FirstTokenTimeout: ft}, &sl)
		var got string
		var onDelta func(string)
		if streamed {
			onDelta = func(d string) { got += d }
		}
		comp, err := c.Complete(ctx, req, onDelta)
		if err != nil || comp.Text != "one two three four five six" || (streamed && got != comp.Text) {
			t.Fatalf("slow answer (streamed %v): %q (pieces %q), %v; want the whole answer", streamed, comp.Text, got, err)
		}
		if r := slow.Requests(); len(r) != 1 || !r[0].Stream {
			t.Errorf("slow answer (streamed %v): %d requests, want 1 streamed from the provider", streamed, len(r))
		}
	}

	silent := modelfake.ForTest(t, modelfake.Reply{Hang: true})
	var sl sleeps
	c := mustClient(t, Config{APIKey: "k", BaseURL: silent.BaseURL(), FirstTokenTimeout: ft, BaseBackoff: 10 * time.Millisecond}, &sl)
	start := time.Now()
	comp, err := c.Complete(ctx, req, nil)
	took := time.Since(start)
	var me *bot.ModelError
	if !errors.As(err, &me) || me.Kind != bot.ModelTimeout || comp.Text != "" {
		t.Fatalf("silent model: %q, %v; want a timeout ModelError and no text", comp.Text, err)
	}
	if n := len(silent.Requests()); n != 2 {
		t.Errorf("silent model: %d requests, want 2 (one retry within the silence limit)", n)
	}
	// The silence limit is 2 x 300 ms; the second attempt gets what is
	// left of it. A second of slack covers a loaded machine.
	if took < 2*ft-10*time.Millisecond || took > 2*ft+time.Second {
		t.Errorf("silent model reported after %v, want about %v", took, 2*ft)
	}
}

// fakeClock is a clock for the retry loop: first-token timers fire (or
// not) at once and move it on by their duration, and sleeps move it on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	fire   []bool // per attempt: does its first-token timer fire?
	timers []time.Duration
	sleeps []time.Duration
}

func (c *fakeClock) install(cfg *Config) {
	cfg.now = func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now
	}
	cfg.sleep = func(ctx context.Context, d time.Duration) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.sleeps = append(c.sleeps, d)
		c.now = c.now.Add(d)
		return nil
	}
	cfg.afterFunc = func(d time.Duration, f func()) func() bool {
		c.mu.Lock()
		fire := len(c.timers) < len(c.fire) && c.fire[len(c.timers)]
		c.timers = append(c.timers, d)
		if fire {
			c.now = c.now.Add(d)
		}
		c.mu.Unlock()
		if fire {
			f()
		}
		return func() bool { return false }
	}
}

// With the default configuration a model that sends nothing is reported
// within 60 s of the call's start, retries and waits included: the sum of
// the first-token waits and the back-off (at its worst, full jitter) is at
// most 60 s.
func TestDefaultsReportASilentModelWithinAMinute(t *testing.T) {
	if got := (Config{}).SilenceLimit(); got != 60*time.Second {
		t.Fatalf("default silence limit = %v, want 60s (2 x 30s)", got)
	}
	tests := []struct {
		name       string
		replies    []modelfake.Reply
		fire       []bool
		wantTimers []time.Duration
		wantSleeps []time.Duration
	}{
		{name: "silent throughout", replies: []modelfake.Reply{{Hang: true}}, fire: []bool{true, true, true, true},
			// 30 s silent; 0.5 s back-off (the first ceiling); 29.5 s left
			// of the limit for the second attempt; then 60 s are gone.
			wantTimers: []time.Duration{30 * time.Second, 29500 * time.Millisecond},
			wantSleeps: []time.Duration{500 * time.Millisecond}},
		{name: "rate-limited for 30 s, then silent",
			replies: []modelfake.Reply{{Status: 429, Header: map[string]string{"Retry-After": "30"}}, {Hang: true}}, fire: []bool{false, true, true},
			// 0 s; 30 s Retry-After; 30 s silent; 60 s gone.
			wantTimers: []time.Duration{30 * time.Second, 30 * time.Second},
			wantSleeps: []time.Duration{30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := modelfake.ForTest(t, tt.replies...)
			clock := &fakeClock{now: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), fire: tt.fire}
			cfg := Config{APIKey: "k", BaseURL: f.BaseURL()}
			clock.install(&cfg)
			cfg.jitter = func() float64 { return 1 } // the worst back-off
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := clock.now
			_, err = c.Complete(context.Background(), bot.Request{Messages: []bot.ChatMessage{{Role: "user", Content: "x"}}}, nil)
			var me *bot.ModelError
			if !errors.As(err, &me) || me.Kind != bot.ModelTimeout {
				t.Fatalf("Complete: %v, want a timeout", err)
			}
			if !equalDurations(clock.timers, tt.wantTimers) || !equalDurations(clock.sleeps, tt.wantSleeps) {
				t.Errorf("first-token waits %v, sleeps %v; want %v, %v", clock.timers, clock.sleeps, tt.wantTimers, tt.wantSleeps)
			}
			if took := clock.now.Sub(start); took > 60*time.Second {
				t.Errorf("reported after %v, want at most 60s", took)
			}
		})
	}
}

// With no AZURE_OPENAI_API_VERSION, calls name an API version that has
// what they send (go-openai's own default, 2023-05-15, does not).
func TestAzureDefaultAPIVersion(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Model: "gpt-4o-mini", Chunks: []string{"hi"}, Usage: &modelfake.Usage{Prompt: 5, Completion: 1}})
	var sl sleeps
	c := mustClient(t, Config{APIKey: "azure-key", AzureEndpoint: f.URL(), AzureDeployment: "ops-mini", Model: "gpt-4o-mini"}, &sl)
	if _, err := c.Complete(context.Background(), bot.Request{Messages: []bot.ChatMessage{{Role: bot.ChatUser, Content: "hello"}}}, nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if q := f.Requests()[0].Query; q != "api-version=2024-10-21" {
		t.Errorf("query = %q, want api-version=2024-10-21", q)
	}
}
