package teams

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/apacops/opsbot/internal/fakes/teamsfake"
)

func TestTeamsNotifier(t *testing.T) {
	fake := teamsfake.ForTest(t)
	tokens := NewTokenSource(Credentials{AppID: teamsfake.AppID, AppPassword: teamsfake.AppPassword, TokenURL: fake.TokenURL()}, nil)
	n := NewNotifier(NotifierConfig{Tokens: tokens, ServiceURL: fake.ServiceURL(), ConversationID: "19:abc@thread.tacv2"})
	noWait(n.connector)
	for _, text := range []string{"digest one", "digest two"} {
		if err := n.Notify(context.Background(), text); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	if got := fake.Fetches().Tokens; got != 1 {
		t.Errorf("token fetches: got %d, want 1 (cached)", got)
	}
	acts := fake.Activities()
	if len(acts) != 2 || acts[1].Activity["text"] != "digest two" || acts[0].Activity["type"] != "message" {
		t.Fatalf("posts: got %v, want two message activities", acts)
	}
	if want := "/v3/conversations/19:abc@thread.tacv2/activities"; acts[0].Path != want {
		t.Errorf("path: got %s, want %s", acts[0].Path, want)
	}

	fake.FailNext("", http.StatusTooManyRequests, http.StatusTooManyRequests, http.StatusTooManyRequests,
		http.StatusTooManyRequests, http.StatusTooManyRequests)
	if err := n.Notify(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("throttled past the retries: got %v, want an error with 429 for the job's retry", err)
	}
	bad := NewNotifier(NotifierConfig{Tokens: NewTokenSource(Credentials{AppID: teamsfake.AppID, AppPassword: "wrong",
		TokenURL: fake.TokenURL()}, nil), ServiceURL: fake.ServiceURL(), ConversationID: "c"})
	err := bad.Notify(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "app token") {
		t.Errorf("bad credentials: got %v, want a token error", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error %q shows the secret", err)
	}
}
