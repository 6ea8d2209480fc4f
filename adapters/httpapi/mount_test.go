package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A chat surface's route mounted beside /api/v1 gets what every route gets:
// request id, access log, panic recovery, its body limit and metrics, and no
// bearer token.
func TestMountedRoutesShareTheMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs syncBuffer
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = w.Write(b)
	})
	a := newTestAPI(t, func(d *Deps) {
		d.Registerer = reg
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
		d.Mounts = []Mount{
			{Method: "POST", Path: "/slack/events", Handler: echo, MaxBodyBytes: 1024},
			{Method: "POST", Path: "/api/messages", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("surface bug") })},
		}
	})

	resp, body := a.do("POST", "/slack/events", "", `{"type":"event_callback"}`)
	if resp.StatusCode != http.StatusOK || string(body) != `{"type":"event_callback"}` {
		t.Fatalf("mounted route: %d %s, want 200 and the body echoed (no bearer token needed)", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id on a mounted route")
	}
	if resp, _ := a.do("POST", "/slack/events", "", strings.Repeat("x", 1025)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the mount's limit: got %d, want 413", resp.StatusCode)
	}
	resp, body = a.do("POST", "/api/messages", "", `{}`)
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("panicking mount: %d %q %s, want a 500 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if got := testutil.ToFloat64(a.s.httpMetrics.requests.WithLabelValues("POST /slack/events", "200")); got != 1 {
		t.Errorf("requests{POST /slack/events, 200} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(a.s.httpMetrics.requests.WithLabelValues("POST /slack/events", "413")); got != 1 {
		t.Errorf("requests{POST /slack/events, 413} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(a.s.httpMetrics.requests.WithLabelValues("POST /api/messages", "500")); got != 1 {
		t.Errorf("requests{POST /api/messages, 500} = %v, want 1 (a panic is counted)", got)
	}
	for _, want := range []string{"path=/slack/events status=200", "path=/api/messages status=500", "panic in handler"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
