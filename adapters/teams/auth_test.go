package teams

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// metadataProxy serves the fake's OpenID metadata, failing or holding
// requests on demand.
type metadataProxy struct {
	srv     *httptest.Server
	mu      sync.Mutex
	fail    int           // answer the next fail requests 500
	hold    chan struct{} // when set, requests wait for it to close
	arrived chan struct{} // told of each request held
	served  int
}

func newMetadataProxy(t *testing.T, fake *teamsfake.Server) *metadataProxy {
	p := &metadataProxy{arrived: make(chan struct{}, 100)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.served++
		fail, hold := p.fail > 0, p.hold
		if fail {
			p.fail--
		}
		p.mu.Unlock()
		if fail {
			http.Error(w, "metadata unavailable", http.StatusInternalServerError)
			return
		}
		if hold != nil {
			p.arrived <- struct{}{}
			<-hold
		}
		resp, err := http.Get(fake.MetadataURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *metadataProxy) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served
}

// clock is a validator clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// proxiedValidator is a validator reading the fake's metadata through a
// proxy, on a clock the test moves, and a good token for it.
func proxiedValidator(t *testing.T) (*teamsfake.Server, *metadataProxy, *clock, *Validator, string) {
	t.Helper()
	fake := teamsfake.ForTest(t)
	proxy := newMetadataProxy(t, fake)
	clk := &clock{t: time.Now()}
	v := NewValidator(AuthConfig{AppID: teamsfake.AppID, MetadataURL: proxy.srv.URL, RefreshInterval: time.Minute, Now: clk.now})
	good, err := fake.Token(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return fake, proxy, clk, v, good
}

// A failed first fetch of the keys (the endpoint hiccups, or the request
// that wanted them gives up) does not refuse every activity for the
// refresh interval: while no keys are known, the fetch is retried after a
// short backoff, and it does not depend on the request that started it.
func TestFailedFirstFetchRetriedSoon(t *testing.T) {
	fake, proxy, clk, v, good := proxiedValidator(t)
	proxy.fail = 1
	ctx := context.Background()
	if _, err := v.Authenticate(ctx, "Bearer "+good); err == nil {
		t.Fatal("accepted a token with the metadata endpoint failing")
	}
	clk.add(500 * time.Millisecond) // inside the one-second backoff
	if _, err := v.Authenticate(ctx, "Bearer "+good); err == nil || proxy.requests() != 1 {
		t.Fatalf("inside the backoff: %v after %d fetches, want a refusal and no second fetch", err, proxy.requests())
	}
	clk.add(600 * time.Millisecond) // past it, well inside the refresh interval
	if _, err := v.Authenticate(ctx, "Bearer "+good); err != nil {
		t.Errorf("a second after a failed fetch: %v, want the token accepted", err)
	}
	if n := proxy.requests(); n != 2 {
		t.Errorf("metadata fetched %d times, want 2", n)
	}

	// The first request gives up at once (the Bot Framework hung up); the
	// fetch it started still serves the next.
	v = NewValidator(AuthConfig{AppID: teamsfake.AppID, MetadataURL: fake.MetadataURL(), RefreshInterval: time.Minute, Now: clk.now})
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = v.Authenticate(gone, "Bearer "+good) // refused, or served if its fetch beat it: either is right
	if _, err := v.Authenticate(ctx, "Bearer "+good); err != nil {
		t.Errorf("after a request that gave up: %v, want the token accepted", err)
	}
}

// A slow fetch of the keys holds up only the tokens that need it: a token
// signed by a known key is validated meanwhile. Tokens that arrive
// together before any key is known share one fetch.
func TestSlowFetchBlocksOnlyWhoNeedsIt(t *testing.T) {
	fake, proxy, clk, v, good := proxiedValidator(t)
	release := make(chan struct{})
	proxy.hold = release
	ctx := context.Background()
	errs := make(chan error, 20)
	for range cap(errs) {
		go func() {
			_, err := v.Authenticate(ctx, "Bearer "+good)
			errs <- err
		}()
	}
	<-proxy.arrived
	close(release)
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("a token that waited for the first fetch: %v", err)
		}
	}
	if n := proxy.requests(); n != 1 {
		t.Errorf("%d fetches for %d tokens arriving together, want 1", n, cap(errs))
	}

	// A minute on, a token names a key nobody published, and the endpoint hangs.
	hang := make(chan struct{})
	defer close(hang)
	proxy.mu.Lock()
	proxy.hold = hang
	proxy.mu.Unlock()
	clk.add(2 * time.Minute)
	forged := make(chan error, 1)
	go func() {
		_, err := v.Authenticate(ctx, "Bearer "+sign(t, fake.Claims(time.Now()), "key-new", testRSAKeys(t)[1]))
		forged <- err
	}()
	<-proxy.arrived
	ok := make(chan error, 1)
	go func() {
		_, err := v.Authenticate(ctx, "Bearer "+good)
		ok <- err
	}()
	select {
	case err := <-ok:
		if err != nil {
			t.Errorf("known key during a slow fetch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a token signed by a known key waited for a fetch it does not need")
	}
	select {
	case err := <-forged:
		t.Errorf("the token with the unknown key finished (%v) before the fetch it waits for", err)
	default:
	}
}
