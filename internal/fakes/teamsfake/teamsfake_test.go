package teamsfake_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apacops/opsbot/adapters/teams"
	"github.com/apacops/opsbot/internal/fakes/teamsfake"
)

// The fake's tokens pass the bot's own validator, fetched from the fake's
// metadata; a token signed by a key the fake does not publish is refused.
func TestTokenPassesTheBotsValidator(t *testing.T) {
	f, err := teamsfake.Start(teamsfake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	v := teams.NewValidator(teams.AuthConfig{AppID: teamsfake.AppID, MetadataURL: f.MetadataURL()})
	ctx := context.Background()
	good, err := f.Token(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := v.Authenticate(ctx, "Bearer "+good)
	if err != nil {
		t.Fatalf("the fake's token: %v", err)
	}
	if err := tok.Check(f.ServiceURL(), "msteams"); err != nil {
		t.Errorf("the fake's token for its own service URL: %v", err)
	}
	keys, err := teamsfake.RSAKeys()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := teamsfake.Sign(f.Claims(time.Now()), teamsfake.KeyID, keys[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Authenticate(ctx, "Bearer "+forged); err == nil {
		t.Errorf("a token signed with an unpublished key passed")
	}
	if got := f.Fetches(); got.Metadata != 1 || got.Keys != 1 || got.Tokens != 0 {
		t.Errorf("fetches %+v, want the metadata and keys once, no app token", got)
	}
	act := f.Message("1:m1", "personal", "a:1chat", "hello", true, "aad-ana")
	if act["serviceUrl"] != f.ServiceURL() || act["recipient"].(map[string]any)["id"] != teamsfake.BotID {
		t.Errorf("activity %v, want the fake's service URL and the bot as recipient", act)
	}
}

// startConnector starts a fake with cfg, closed when the test ends, and
// the bot's connector client on it.
func startConnector(t *testing.T, cfg teamsfake.Config) (*teamsfake.Server, *teams.Connector) {
	t.Helper()
	f, err := teamsfake.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, teams.NewConnector(teams.NewTokenSource(teams.Credentials{AppID: teamsfake.AppID, AppPassword: teamsfake.AppPassword,
		TokenURL: f.TokenURL()}, nil), nil)
}

// The connector counts what a bot sends it, by kind and per conversation
// (reply chains included), without recording when it is not asked to;
// it hands out app tokens for the bot's credentials only.
func TestConnectorCounts(t *testing.T) {
	f, c := startConnector(t, teamsfake.Config{})
	ctx := context.Background()
	const chain = "19:ops@thread.tacv2;messageid=17"
	path := "/v3/conversations/" + url.PathEscape(chain) + "/activities"
	send := func(method, path string, typ string) string {
		t.Helper()
		id, err := c.Send(ctx, method, f.ServiceURL(), path, map[string]any{"type": typ, "text": "x"})
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return id
	}
	first := send(http.MethodPost, path+"/17", "message")
	send(http.MethodPost, path+"/17", "typing")
	if id := send(http.MethodPut, path+"/"+first, "message"); id != first {
		t.Errorf("update answered id %q, want %q", id, first)
	}
	send(http.MethodPost, "/v3/conversations/a:1chat/activities", "message")
	if got, want := f.Counts(), (teamsfake.Counts{Messages: 2, Typing: 1, Updates: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if a, b := f.Posted(chain), f.Posted("a:1chat"); a != 1 || b != 1 {
		t.Errorf("posted %d in the chain, %d in the chat; want 1 each", a, b)
	}
	if n := len(f.Activities()); n != 0 || f.Fetches().Tokens != 1 {
		t.Errorf("recorded %d calls, fetched %d tokens; want none recorded, one token", n, f.Fetches().Tokens)
	}
	bad := teams.NewTokenSource(teams.Credentials{AppID: teamsfake.AppID, AppPassword: "wrong", TokenURL: f.TokenURL()}, nil)
	if _, err := bad.Token(ctx); err == nil {
		t.Errorf("a wrong password got an app token")
	}
}

// OnPost sees each message activity the connector accepts, with its
// conversation (reply chain included), and not typing activities or
// updates.
func TestOnPost(t *testing.T) {
	var mu sync.Mutex
	var convs []string
	f, c := startConnector(t, teamsfake.Config{OnPost: func(conv string, act map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		convs = append(convs, conv+" "+act["text"].(string))
	}})
	ctx := context.Background()
	const chain = "19:ops@thread.tacv2;messageid=17"
	path := "/v3/conversations/" + url.PathEscape(chain) + "/activities/17"
	for _, typ := range []string{"typing", "message"} {
		if _, err := c.Send(ctx, http.MethodPost, f.ServiceURL(), path, map[string]any{"type": typ, "text": typ}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Send(ctx, http.MethodPut, f.ServiceURL(), path, map[string]any{"type": "message", "text": "update"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{chain + " message"}; !slices.Equal(convs, want) {
		t.Errorf("seen %q, want %q", convs, want)
	}
}
