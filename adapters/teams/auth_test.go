package teams

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/apacops/opsbot/internal/fakes/teamsfake"
)

// Every way a token can be wrong is refused: a missing token with 401,
// everything else with 403, and never a 5xx; nothing reaches the inbox.
func TestTokenFailures(t *testing.T) {
	h := newHarness(t)
	keys := testRSAKeys(t)
	// key-3 is published but endorsed for no channel; key-4 only for another.
	h.fake.Rotate(
		teamsfake.Key{ID: "key-1", Private: keys[0], Endorsements: []string{"msteams"}},
		teamsfake.Key{ID: "key-3", Private: keys[2], Endorsements: nil},
		teamsfake.Key{ID: "key-4", Private: keys[1], Endorsements: []string{"webchat"}},
	)
	now := time.Now()
	good := func() jwt.MapClaims { return h.fake.Claims(now) }
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	act := h.fake.Message("1:auth-1", convPersonal, chatID, "hello", false, anaAAD)
	tests := []struct {
		name   string
		token  string
		header string // overrides the Authorization header when set
		want   int
	}{
		{"missing token", "", "", http.StatusUnauthorized},
		{"not a bearer token", "", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", http.StatusUnauthorized},
		{"expired", sign(t, with("exp", now.Add(-6*time.Minute).Unix()), "key-1", keys[0]), "", http.StatusForbidden},
		{"not yet valid", sign(t, with("nbf", now.Add(6*time.Minute).Unix()), "key-1", keys[0]), "", http.StatusForbidden},
		{"wrong audience", sign(t, with("aud", "someone-else"), "key-1", keys[0]), "", http.StatusForbidden},
		{"wrong issuer", sign(t, with("iss", "https://sts.windows.net/evil/"), "key-1", keys[0]), "", http.StatusForbidden},
		{"wrong key", sign(t, good(), "key-1", keys[1]), "", http.StatusForbidden},
		{"unknown key id", sign(t, good(), "key-9", keys[0]), "", http.StatusForbidden},
		{"no exp", sign(t, with("exp", nil), "key-1", keys[0]), "", http.StatusForbidden},
		{"wrong serviceurl", sign(t, with("serviceurl", "https://smba.trafficmanager.net/evil/"), "key-1", keys[0]), "", http.StatusForbidden},
		{"no serviceurl", sign(t, with("serviceurl", nil), "key-1", keys[0]), "", http.StatusForbidden},
		{"key without endorsements", sign(t, good(), "key-3", keys[2]), "", http.StatusForbidden},
		{"key endorsed for another channel", sign(t, good(), "key-4", keys[1]), "", http.StatusForbidden},
		{"HS256", hs256(t, good()), "", http.StatusForbidden},
		{"alg none", algNone(t, good()), "", http.StatusForbidden},
		{"garbage", "not.a.token", "", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _ := h.postHeader(t, act, tt.token, tt.header)
			if status != tt.want {
				t.Errorf("got %d, want %d", status, tt.want)
			}
		})
	}
	// A good token with an activity from another tenant (the bot is
	// single-tenant), and one too large to read.
	foreign := h.fake.Message("1:auth-2", convPersonal, chatID, "hello", false, anaAAD)
	foreign["conversation"].(map[string]any)["tenantId"] = "another-tenant"
	if status, _ := h.post(t, foreign, h.token(t)); status != http.StatusForbidden {
		t.Errorf("activity from another tenant: %d, want 403", status)
	}
	huge := h.fake.Message("1:auth-3", convPersonal, chatID, strings.Repeat("x", MaxBodyBytes), false, anaAAD)
	if status, _ := h.post(t, huge, h.token(t)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("activity over %d bytes: %d, want 413", MaxBodyBytes, status)
	}
	if n := h.count(t, `SELECT count(*) FROM inbound_events`); n != 0 {
		t.Errorf("%d events accepted from refused requests, want 0", n)
	}
	// Within the skew, and with the audience in an array, a token passes.
	lenient := with("exp", now.Add(-4*time.Minute).Unix())
	lenient["aud"] = []string{"other", teamsfake.AppID}
	if status, body := h.post(t, act, sign(t, lenient, "key-1", keys[0])); status != http.StatusOK {
		t.Errorf("token expired 4 minutes ago (inside the 5-minute skew): %d %s, want 200", status, body)
	}
}

// postHeader is post with an explicit Authorization header.
func (h *harness) postHeader(t *testing.T, activity any, token, header string) (int, string) {
	t.Helper()
	if header == "" {
		return h.post(t, activity, token)
	}
	h.authHeader = header
	defer func() { h.authHeader = "" }()
	return h.post(t, activity, "")
}

func hs256(t *testing.T, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = "key-1"
	s, err := tok.SignedString([]byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func algNone(t *testing.T, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	tok.Header["kid"] = "key-1"
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A key published after the bot started is picked up the first time a
// token names it (once the refresh interval allows a fetch).
func TestKeyRotatedInAfterStart(t *testing.T) {
	h := newHarness(t)
	keys := testRSAKeys(t)
	tok := h.token(t)
	if status, _ := h.post(t, h.fake.Message("1:rot-1", convPersonal, chatID, "hello", false, anaAAD), tok); status != http.StatusOK {
		t.Fatalf("before rotation: %d", status)
	}
	h.fake.Rotate(teamsfake.Key{ID: "key-2", Private: keys[1], Endorsements: []string{"msteams"}})
	h.skew.Store(int64(2 * time.Minute)) // past the one-minute refresh interval
	claims := h.fake.Claims(time.Now())
	if status, body := h.post(t, h.fake.Message("1:rot-2", convPersonal, chatID, "hello again", false, anaAAD), sign(t, claims, "key-2", keys[1])); status != http.StatusOK {
		t.Errorf("token signed by the rotated-in key: %d %s, want 200", status, body)
	}
	// The retired key is gone with the refresh.
	if status, _ := h.post(t, h.fake.Message("1:rot-3", convPersonal, chatID, "old key", false, anaAAD), tok); status != http.StatusForbidden {
		t.Errorf("token signed by the retired key: %d, want 403", status)
	}
}

// A flood of tokens naming unknown keys fetches the metadata at most once
// per refresh interval.
func TestUnknownKeyFloodIsRateLimited(t *testing.T) {
	fake := teamsfake.ForTest(t)
	keys := testRSAKeys(t)
	clock := time.Now()
	v := NewValidator(AuthConfig{AppID: teamsfake.AppID, MetadataURL: fake.MetadataURL(), RefreshInterval: time.Minute,
		Now: func() time.Time { return clock }})
	ctx := context.Background()
	claims := fake.Claims(time.Now())
	for i := range 200 {
		_, err := v.Authenticate(ctx, "Bearer "+sign(t, claims, "forged-"+strings.Repeat("x", i%7), keys[1]))
		if ae, ok := err.(*AuthError); !ok || ae.Status != http.StatusForbidden {
			t.Fatalf("forged token %d: %v, want a 403", i, err)
		}
	}
	if f := fake.Fetches(); f.Metadata != 1 || f.Keys != 1 {
		t.Errorf("metadata fetched %d times, keys %d, for 200 forged tokens in a minute; want 1 each", f.Metadata, f.Keys)
	}
	clock = clock.Add(61 * time.Second)
	_, _ = v.Authenticate(ctx, "Bearer "+sign(t, claims, "forged-again", keys[1]))
	if f := fake.Fetches(); f.Metadata != 2 {
		t.Errorf("metadata fetched %d times after the interval, want 2", f.Metadata)
	}
	// A good token still passes without another fetch.
	if _, err := v.Authenticate(ctx, "Bearer "+sign(t, claims, "key-1", keys[0])); err != nil {
		t.Errorf("good token: %v", err)
	}
	if f := fake.Fetches(); f.Metadata != 2 {
		t.Errorf("metadata fetched %d times, want no fetch for a known key", f.Metadata)
	}
}

// An unreachable metadata endpoint is a 403 for the request (the Bot
// Framework retries), not a 5xx.
func TestMetadataDownIsForbidden(t *testing.T) {
	v := NewValidator(AuthConfig{AppID: teamsfake.AppID, MetadataURL: "http://127.0.0.1:1/openid"})
	_, err := v.Authenticate(context.Background(), "Bearer "+sign(t, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}, "key-1", testRSAKeys(t)[0]))
	if ae, ok := err.(*AuthError); !ok || ae.Status != http.StatusForbidden {
		t.Errorf("got %v, want a 403", err)
	}
}
