package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/users"
)

// serveFor runs opsbot serve with the given environment until the test
// ends, and returns its base URL and its log.
func serveFor(t *testing.T, env map[string]string) (string, *lockedBuffer) {
	t.Helper()
	addr := freeAddr(t)
	t.Setenv("OPSBOT_ADDR", addr)
	t.Setenv("DATABASE_URL", testPool.Config().ConnString())
	for _, k := range []string{"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"} {
		t.Setenv(k, env[k])
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"serve"}, nil, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("serve exit code %d, want 0; log:\n%s", code, logs)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	waitHealthy(t, base)
	return base, logs
}

// signedPost posts body to url, signed with secret as Slack signs.
func signedPost(t *testing.T, url, secret string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	slackfake.SignRequest(req, secret, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Without Slack settings serve runs as before and says once that Slack is
// off; nothing answers on /slack/*.
func TestServeWithoutSlack(t *testing.T) {
	base, logs := serveFor(t, nil)
	resp := signedPost(t, base+"/slack/events", "x", []byte(`{"type":"url_verification","challenge":"c"}`))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/slack/events without Slack: got %d, want 404", resp.StatusCode)
	}
	if n := strings.Count(logs.String(), "Slack is off"); n != 1 {
		t.Errorf("log says Slack is off %d times, want once:\n%s", n, logs)
	}
}

// With a bot token and a signing secret, serve mounts Slack's endpoints
// beside the API, behind httpapi's body limit, checking signatures.
func TestServeWithSlackOverHTTP(t *testing.T) {
	slackAPI := slackfake.ForTest(t)
	const secret = "test-signing-secret"
	base, logs := serveFor(t, map[string]string{"SLACK_BOT_TOKEN": slackfake.BotToken, "SLACK_SIGNING_SECRET": secret,
		"SLACK_API_URL": slackAPI.APIURL()})
	resp := signedPost(t, base+"/slack/events", secret, []byte(`{"type":"url_verification","token":"t","challenge":"c-42"}`))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"challenge":"c-42"`) {
		t.Errorf("url_verification: %d %s, want 200 and the challenge", resp.StatusCode, body)
	}
	if resp := signedPost(t, base+"/slack/events", "forged", []byte(`{"type":"url_verification","challenge":"c"}`)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged signature: got %d, want 401", resp.StatusCode)
	}
	for _, path := range []string{"/slack/commands", "/slack/interactivity"} {
		if resp := signedPost(t, base+path, "forged", []byte("x=1")); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s, forged: got %d, want 401", path, resp.StatusCode)
		}
	}
	if !strings.Contains(logs.String(), "Slack is on") || strings.Contains(logs.String(), secret) {
		t.Errorf("log should say Slack is on, without the secret:\n%s", logs)
	}
}

func TestSlackConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tt := range []struct {
		name string
		get  func(string) string
		bad  string
	}{
		{"api url without slash", env("SLACK_API_URL", "http://127.0.0.1:9/api"), "SLACK_API_URL"},
		{"bot token as app token", env("SLACK_APP_TOKEN", "xoxb-1"), "SLACK_APP_TOKEN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadConfig(tt.get); err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("got %v, want an error naming %s", err, tt.bad)
			}
		})
	}
	log := slog.New(slog.DiscardHandler)
	us := users.NewStore(testPool, "Asia/Singapore")
	deps := surfaceDeps{pool: testPool, log: log, users: us, commands: commands.New(commands.Config{DB: testPool, Users: us})}
	for _, tt := range []struct {
		name       string
		get        func(string) string
		on, socket bool
	}{
		{"nothing", env(), false, false},
		{"a token for the digest only", env("SLACK_BOT_TOKEN", "xoxb-1"), false, false},
		{"http", env("SLACK_BOT_TOKEN", "xoxb-1", "SLACK_SIGNING_SECRET", "s"), true, false},
		{"socket mode", env("SLACK_BOT_TOKEN", "xoxb-1", "SLACK_APP_TOKEN", "xapp-1"), true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(tt.get)
			if err != nil {
				t.Fatal(err)
			}
			s, err := newSlackSurface(cfg, deps)
			if tt.on != (s != nil) || (s != nil && tt.socket != (s.run != nil)) {
				t.Errorf("surface %+v (%v): want on %v, socket mode %v", s, err, tt.on, tt.socket)
			}
		})
	}
}
