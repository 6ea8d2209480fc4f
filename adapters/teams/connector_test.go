package teams

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/apacops/opsbot/internal/fakes/teamsfake"
)

// noWait makes a connector's retries instant, recording the waits.
func noWait(c *Connector) *[]time.Duration {
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return waits
}

func TestConnectorRetries(t *testing.T) {
	tests := []struct {
		name       string
		fail       []int
		retryAfter string
		wantErr    bool
		wantCalls  int
		minWait    time.Duration // every wait at least this
	}{
		{"429 retried, honouring Retry-After", []int{429, 429}, "2", false, 3, 2 * time.Second},
		{"412, 502 and 504 retried", []int{412, 502, 504}, "", false, 4, 0},
		{"gives up after five attempts", []int{429, 429, 429, 429, 429}, "", true, 5, 0},
		{"400 not retried", []int{400}, "", true, 1, 0},
		{"403 not retried", []int{403}, "", true, 1, 0},
		{"a Retry-After longer than a turn waits is left to the job", []int{429}, "120", true, 1, 0},
		{"500 not retried", []int{500}, "", true, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := teamsfake.ForTest(t)
			fake.FailNext(tt.retryAfter, tt.fail...)
			c := NewConnector(NewTokenSource(Credentials{AppID: teamsfake.AppID, AppPassword: teamsfake.AppPassword, TokenURL: fake.TokenURL()}, nil), nil)
			waits := noWait(c)
			id, err := c.Send(context.Background(), http.MethodPost, fake.ServiceURL(), "/v3/conversations/a:1/activities", outActivity{Type: "message", Text: "hi"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("got id %q, error %v; want error %v", id, err, tt.wantErr)
			}
			if !tt.wantErr && id != "1:act-1" {
				t.Errorf("got id %q, want the connector's 1:act-1", id)
			}
			if got := len(fake.Activities()); got != tt.wantCalls {
				t.Errorf("got %d calls, want %d", got, tt.wantCalls)
			}
			if len(*waits) != tt.wantCalls-1 && !tt.wantErr {
				t.Errorf("got %d waits, want %d", len(*waits), tt.wantCalls-1)
			}
			for _, w := range *waits {
				if w < tt.minWait || w > 30*time.Second {
					t.Errorf("waited %v, want between %v and 30s", w, tt.minWait)
				}
			}
		})
	}
}

// The connector's refusal of a stale token gets one retry with a fresh one;
// the token is otherwise fetched once for many calls.
func TestConnectorTokenCachedAndRefreshed(t *testing.T) {
	fake := teamsfake.ForTest(t)
	tokens := NewTokenSource(Credentials{AppID: teamsfake.AppID, AppPassword: teamsfake.AppPassword, TokenURL: fake.TokenURL()}, nil)
	c := NewConnector(tokens, nil)
	for range 3 {
		if _, err := c.Send(context.Background(), http.MethodPost, fake.ServiceURL(), "/v3/conversations/a:1/activities", outActivity{Type: "typing"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.Fetches().Tokens; n != 1 {
		t.Errorf("token fetched %d times for 3 calls, want 1", n)
	}
	fake.FailNext("", http.StatusUnauthorized)
	if _, err := c.Send(context.Background(), http.MethodPost, fake.ServiceURL(), "/v3/conversations/a:1/activities", outActivity{Type: "typing"}); err != nil {
		t.Fatalf("after a 401: %v, want a retry with a fresh token", err)
	}
	acts := fake.Activities()
	if n := fake.Fetches().Tokens; n != 2 || acts[len(acts)-1].Auth != "Bearer app-token-2" {
		t.Errorf("token fetches %d, last auth %q; want a second token used", n, acts[len(acts)-1].Auth)
	}

	// Shortly before expiry the token is replaced.
	now := time.Now()
	tokens.now = func() time.Time { return now.Add(3599*time.Second - 4*time.Minute) }
	if _, err := tokens.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := fake.Fetches().Tokens; n != 3 {
		t.Errorf("token fetches %d, want a third when 4 minutes were left", n)
	}
}
