package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Web API methods the adapter calls, with the bot scopes each needs. The
// manifest test checks manifests/slack/manifest.yaml against this table
// (and eventScopes), both ways; the end-to-end tests check that the fake
// Web API was called with these methods only.
const (
	methodPostMessage     = "chat.postMessage"
	methodPostEphemeral   = "chat.postEphemeral"
	methodUpdate          = "chat.update"
	methodDelete          = "chat.delete"
	methodStartStream     = "chat.startStream"
	methodAppendStream    = "chat.appendStream"
	methodStopStream      = "chat.stopStream"
	methodReplies         = "conversations.replies"
	methodUsersInfo       = "users.info"
	methodAuthTest        = "auth.test"
	methodSetStatus       = "assistant.threads.setStatus"
	methodSetPrompts      = "assistant.threads.setSuggestedPrompts"
	methodSetTitle        = "assistant.threads.setTitle"
	methodConnectionsOpen = "apps.connections.open" // with the app-level token (connections:write), not a bot scope
)

// apiScopes maps each Web API method to the bot scopes it needs.
var apiScopes = map[string][]string{
	methodPostMessage:   {"chat:write"},
	methodPostEphemeral: {"chat:write"},
	methodUpdate:        {"chat:write"},
	methodDelete:        {"chat:write"},
	methodStartStream:   {"chat:write"},
	methodAppendStream:  {"chat:write"},
	methodStopStream:    {"chat:write"},
	// The thread a reply is looked for in may be in any kind of conversation.
	methodReplies:         {"channels:history", "groups:history", "im:history", "mpim:history"},
	methodUsersInfo:       {"users:read"},
	methodAuthTest:        nil,
	methodSetStatus:       {"assistant:write"},
	methodSetPrompts:      {"assistant:write"},
	methodSetTitle:        {"assistant:write"},
	methodConnectionsOpen: nil,
}

// newClient is the Web API client every part of the adapter uses: the bot
// token, SLACK_API_URL (ending in /api/; empty means Slack's own) and HTTP
// timeouts. extra adds options (the app-level token for Socket Mode).
func newClient(token, apiURL string, hc *http.Client, extra ...slack.Option) *slack.Client {
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	opts := append([]slack.Option{slack.OptionHTTPClient(hc)}, extra...)
	if apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return slack.New(token, opts...)
}

// Rate limits. Slack answers 429 with Retry-After (slack-go returns a
// *slack.RateLimitedError); a call is tried again after that wait, a few
// times, as long as the caller's context allows.
const (
	rateLimitTries   = 4
	maxRetryAfter    = 30 * time.Second
	minRetryAfter    = time.Second
	defaultPostEvery = time.Second // chat.postMessage: about one message a second per channel
)

// call runs one Web API call (or response_url post), waiting out 429s.
// method names the call in errors.
func call(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	for try := 1; ; try++ {
		err := fn(ctx)
		var rl *slack.RateLimitedError
		if err == nil || !errors.As(err, &rl) || try == rateLimitTries {
			if err != nil {
				return fmt.Errorf("slack %s: %w", method, err)
			}
			return nil
		}
		wait := min(max(rl.RetryAfter, minRetryAfter), maxRetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("slack %s: rate limited for %s, past the deadline: %w", method, wait, err)
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("slack %s: %w", method, err)
		}
	}
}

// rateLimited reports whether err is a 429 and for how long to back off.
func rateLimited(err error) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, minRetryAfter), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer spaces calls per key (a channel): each caller reserves the next
// slot, every apart, and waits for it.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  map[string]time.Time
}

func newPacer(every time.Duration) *pacer {
	return &pacer{every: every, next: map[string]time.Time{}}
}

// maxPacedKeys bounds the pacer's memory: past slots are forgotten when
// it grows beyond this.
const maxPacedKeys = 4096

// wait blocks until key's next slot.
func (p *pacer) wait(ctx context.Context, key string) error {
	p.mu.Lock()
	now := time.Now()
	at := now
	if next := p.next[key]; next.After(now) {
		at = next
	}
	p.next[key] = at.Add(p.every)
	if len(p.next) > maxPacedKeys {
		for k, t := range p.next {
			if t.Before(now) {
				delete(p.next, k)
			}
		}
	}
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}
