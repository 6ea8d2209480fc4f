package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Addr != "127.0.0.1:8080" || c.TimeZone != "Asia/Singapore" {
		t.Errorf("defaults: got addr %q zone %q", c.Addr, c.TimeZone)
	}
	// By default a silent model is reported within a minute, retries
	// included, and a flowing answer has 90 s.
	if got := c.Engine.LLM.SilenceLimit(); got > time.Minute || c.Engine.CallTimeout != 90*time.Second {
		t.Errorf("defaults: silence limit %v, model timeout %v; want at most 1m and 90s", got, c.Engine.CallTimeout)
	}
	c, err = LoadConfig(env(map[string]string{"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT": "45s"}))
	if err != nil || c.Engine.LLM.FirstTokenTimeout != 45*time.Second || c.Engine.LLM.SilenceLimit() != 90*time.Second {
		t.Errorf("OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT=45s: got %v, silence limit %v (%v); want 45s and 90s",
			c.Engine.LLM.FirstTokenTimeout, c.Engine.LLM.SilenceLimit(), err)
	}
	c, err = LoadConfig(env(map[string]string{"OPSBOT_WORKERS": "1000"}))
	if err != nil || c.Workers != 1000 {
		t.Errorf("OPSBOT_WORKERS=1000: got %d (%v)", c.Workers, err)
	}
	if c, _ := LoadConfig(env(nil)); c.Workers != 32 {
		t.Errorf("default workers: got %d, want 32", c.Workers)
	}
	c, err = LoadConfig(env(map[string]string{"OPSBOT_TIME_ZONE": "Asia/Manila"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "CRON_TZ=Asia/Manila 0 9 * * 1"; c.GapsSchedule != want {
		t.Errorf("gap schedule: got %q, want %q (follows OPSBOT_TIME_ZONE)", c.GapsSchedule, want)
	}

	embeddings := []struct {
		name  string
		env   map[string]string
		want  bool
		model string
	}{
		{"no provider: lexical", nil, false, "text-embedding-3-small"},
		{"a provider: hybrid by default", map[string]string{"OPENAI_API_KEY": "sk-x"}, true, "text-embedding-3-small"},
		{"another model", map[string]string{"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPSBOT_EMBEDDING_MODEL": "nomic-embed-text"}, true, "nomic-embed-text"},
		{"off", map[string]string{"OPENAI_API_KEY": "sk-x", "OPSBOT_EMBEDDING_MODEL": "Off"}, false, "Off"},
	}
	for _, tt := range embeddings {
		c, err := LoadConfig(env(tt.env))
		if err != nil || c.Engine.Embeddings != tt.want || c.Engine.LLM.EmbeddingModel != tt.model {
			t.Errorf("%s: embeddings %v model %q (%v); want %v %q", tt.name, c.Engine.Embeddings, c.Engine.LLM.EmbeddingModel, err, tt.want, tt.model)
		}
	}

	bad := []struct{ key, value string }{
		{"OPSBOT_TIME_ZONE", "Mars/Olympus"},
		{"OPSBOT_LOG_LEVEL", "chatty"},
		{"OPSBOT_GAPS_SCHEDULE", "CRON_TZ=UTC"},
		{"OPSBOT_GAPS_SCHEDULE", "every monday"},
		{"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT", "30"},
		{"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT", "-5s"},
		{"OPSBOT_RESCUE_AFTER", "0s"},
		{"OPSBOT_RESCUE_AFTER", "5"},
		{"OPSBOT_WORKERS", "0"},
		{"OPSBOT_WORKERS", "ten"},
		{"OPSBOT_WORKERS", "10001"},
	}
	for _, b := range bad {
		if _, err := LoadConfig(env(map[string]string{b.key: b.value})); err == nil || !strings.Contains(err.Error(), b.key) {
			t.Errorf("%s=%q: got %v, want an error naming %s", b.key, b.value, err, b.key)
		}
	}
}

func TestConnectPoolSize(t *testing.T) {
	base := testPool.Config().ConnString()
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	tests := []struct {
		url  string
		want int32
	}{
		{base, defaultPoolConns},
		{base + sep + "pool_max_conns=3", 3},
	}
	for _, tt := range tests {
		pool, err := connect(t.Context(), Config{DatabaseURL: tt.url})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if got := pool.Config().MaxConns; got != tt.want {
			t.Errorf("MaxConns: got %d, want %d", got, tt.want)
		}
		pool.Close()
	}
}

func TestPprofAddr(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		wantErr  bool
	}{
		{"", "", false},
		{"6060", "127.0.0.1:6060", false},
		{":6060", "127.0.0.1:6060", false},
		{"0.0.0.0:6060", "0.0.0.0:6060", false},
		{"[::1]:6060", "[::1]:6060", false},
		{"localhost:", "", true},
		{"a:b:c", "", true},
	} {
		got, err := pprofAddr(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("pprofAddr(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// A job left running by a replica that died is run again once it has run
// longer than any job may: a turn's model deadline, a minute to store and
// post, and half a minute's margin — unless OPSBOT_RESCUE_AFTER says
// otherwise.
func TestRescueAfter(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want time.Duration
	}{
		{nil, 90*time.Second + time.Minute + 30*time.Second},
		{map[string]string{"OPSBOT_MODEL_TIMEOUT": "5m"}, 5*time.Minute + time.Minute + 30*time.Second},
		// A turn's timeout (1 s + 1 min) is above the other jobs' (1 min).
		{map[string]string{"OPSBOT_MODEL_TIMEOUT": "1s"}, time.Second + time.Minute + 30*time.Second},
		{map[string]string{"OPSBOT_RESCUE_AFTER": "2s"}, 2 * time.Second},
	} {
		c, err := LoadConfig(func(k string) string { return tt.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := rescueAfter(c); got != tt.want {
			t.Errorf("%v: rescue after %v, want %v", tt.env, got, tt.want)
		}
		// River refuses a rescue shorter than its job timeout.
		jobs, err := newRiver(testPool, nil, 0, nil, rescueAfter(c), slog.New(slog.DiscardHandler))
		if err != nil || jobs == nil {
			t.Errorf("%v: River client: %v", tt.env, err)
		}
	}
}
