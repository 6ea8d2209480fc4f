package slack

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/internal/fakes/slackfake"
)

func TestNotifierPosts(t *testing.T) {
	fake := slackfake.ForTest(t)
	n := NewNotifier(slackfake.BotToken, fake.APIURL(), "C0OPS")

	if err := n.Notify(context.Background(), "Top users: <!channel> & co"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	posts := fake.Calls(methodPostMessage)
	if len(posts) != 1 {
		t.Fatalf("got %d posts, want 1", len(posts))
	}
	p := posts[0].Form
	if p.Get("channel") != "C0OPS" {
		t.Errorf("channel: got %q, want C0OPS", p.Get("channel"))
	}
	if want := "Top users: &lt;!channel&gt; &amp; co"; p.Get("text") != want {
		t.Errorf("text: got %q, want %q (escaped)", p.Get("text"), want)
	}
	if p.Get("unfurl_links") != "false" {
		t.Errorf("unfurl_links: got %q, want false", p.Get("unfurl_links"))
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
			fake := slackfake.ForTest(t)
			fake.SetFault(func(method string, w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/json")
				tt.answer(w)
				return true
			})
			err := NewNotifier(slackfake.BotToken, fake.APIURL(), "C0OPS").Notify(context.Background(), "hi")
			if err == nil || !tt.check(err) {
				t.Errorf("got %v, want the %s", err, tt.name)
			}
		})
	}
}
