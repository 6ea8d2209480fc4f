package teams

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeBotFramework is the tenant token endpoint and a Bot Connector.
type fakeBotFramework struct {
	mu        sync.Mutex
	tokens    int
	posts     []map[string]string
	paths     []string
	postReply int
}

func (f *fakeBotFramework) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/tenant/oauth2/v2.0/token":
		_ = r.ParseForm()
		if r.PostForm.Get("client_id") != "app-id" || r.PostForm.Get("client_secret") != "s3cret" ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "https://api.botframework.com/.default" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.tokens++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"app-token"}`))
	case strings.HasPrefix(r.URL.Path, "/v3/conversations/"):
		if r.Header.Get("Authorization") != "Bearer app-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var act map[string]string
		_ = json.NewDecoder(r.Body).Decode(&act)
		f.posts = append(f.posts, act)
		f.paths = append(f.paths, r.URL.EscapedPath())
		if f.postReply != 0 {
			w.WriteHeader(f.postReply)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"1"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestTeamsNotifier(t *testing.T) {
	fake := &fakeBotFramework{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	n := NewNotifier(NotifierConfig{AppID: "app-id", AppPassword: "s3cret", TokenURL: srv.URL + "/tenant/oauth2/v2.0/token",
		ServiceURL: srv.URL + "/", ConversationID: "19:abc@thread.tacv2"})
	for _, text := range []string{"digest one", "digest two"} {
		if err := n.Notify(context.Background(), text); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	if fake.tokens != 1 {
		t.Errorf("token fetches: got %d, want 1 (cached)", fake.tokens)
	}
	if len(fake.posts) != 2 || fake.posts[1]["text"] != "digest two" || fake.posts[0]["type"] != "message" {
		t.Errorf("posts: got %v, want two message activities", fake.posts)
	}
	if want := "/v3/conversations/19:abc@thread.tacv2/activities"; fake.paths[0] != want {
		t.Errorf("path: got %s, want %s", fake.paths[0], want)
	}

	fake.postReply = http.StatusTooManyRequests
	if err := n.Notify(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("throttled: got %v, want an error with 429 for the retry", err)
	}
	bad := NewNotifier(NotifierConfig{AppID: "app-id", AppPassword: "wrong", TokenURL: srv.URL + "/tenant/oauth2/v2.0/token",
		ServiceURL: srv.URL, ConversationID: "c"})
	if err := bad.Notify(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "app token") {
		t.Errorf("bad credentials: got %v, want a token error", err)
	}
}
