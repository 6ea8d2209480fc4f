package slack

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// fakeSlack speaks chat.postMessage's wire protocol.
type fakeSlack struct {
	mu     sync.Mutex
	posts  []map[string]string
	answer func(w http.ResponseWriter)
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// slack-go sends the token as a form field or a bearer header.
	authed := r.Header.Get("Authorization") == "Bearer xoxb-test" || r.PostForm.Get("token") == "xoxb-test"
	if r.URL.Path != "/api/chat.postMessage" || !authed {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
		return
	}
	f.mu.Lock()
	f.posts = append(f.posts, map[string]string{"channel": r.PostForm.Get("channel"), "text": r.PostForm.Get("text"),
		"unfurl_links": r.PostForm.Get("unfurl_links")})
	answer := f.answer
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if answer != nil {
		answer(w)
		return
	}
	_, _ = w.Write([]byte(`{"ok":true,"channel":"C0OPS","ts":"1764000000.000100"}`))
}

func TestNotifierPosts(t *testing.T) {
	fake := &fakeSlack{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	n := NewNotifier("xoxb-test", srv.URL+"/api/", "C0OPS")

	if err := n.Notify(context.Background(), "Top users: <!channel> & co"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(fake.posts) != 1 {
		t.Fatalf("got %d posts, want 1", len(fake.posts))
	}
	p := fake.posts[0]
	if p["channel"] != "C0OPS" {
		t.Errorf("channel: got %q, want C0OPS", p["channel"])
	}
	if want := "Top users: &lt;!channel&gt; &amp; co"; p["text"] != want {
		t.Errorf("text: got %q, want %q (escaped)", p["text"], want)
	}
	if p["unfurl_links"] != "false" {
		t.Errorf("unfurl_links: got %q, want false", p["unfurl_links"])
	}
}

func TestNotifierErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		check  func(error) bool
	}{
		{"slack error", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"ok":false,"error":"channel_not_found"}`)) },
			func(err error) bool { return strings.Contains(err.Error(), "channel_not_found") }},
		{"rate limited", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		}, func(err error) bool {
			var rl *slack.RateLimitedError
			return errors.As(err, &rl) && rl.RetryAfter == 7*time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeSlack{answer: tt.answer})
			defer srv.Close()
			err := NewNotifier("xoxb-test", srv.URL+"/api/", "C0OPS").Notify(context.Background(), "hi")
			if err == nil || !tt.check(err) {
				t.Errorf("got %v, want the %s", err, tt.name)
			}
		})
	}
}
