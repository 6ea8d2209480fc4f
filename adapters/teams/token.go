package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// botFrameworkScope is the scope of the app tokens the Bot Connector takes.
const botFrameworkScope = "https://api.botframework.com/.default"

// tokenEarly is how long before its expiry a cached app token is replaced,
// so that a token never expires between being handed out and being used.
const tokenEarly = 5 * time.Minute

// TokenURL is the v2 token endpoint of a tenant: a single-tenant bot signs
// in there (Azure no longer accepts new multi-tenant bots).
func TokenURL(tenantID string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenantID) + "/oauth2/v2.0/token"
}

// Credentials are the bot's app registration: its app id and client
// secret, and the token endpoint of its tenant (TokenURL).
type Credentials struct {
	AppID, AppPassword string
	TokenURL           string
}

// TokenSource hands out the bot's app token for Bot Connector calls
// (client credentials), cached until shortly before it expires. One
// TokenSource serves the whole process: the replier and the report poster
// share it, so they share one token. It is safe for concurrent use.
type TokenSource struct {
	creds  Credentials
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewTokenSource returns a token source for creds; client nil means one
// with a 15 s timeout.
func NewTokenSource(creds Credentials, client *http.Client) *TokenSource {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	return &TokenSource{creds: creds, client: client, now: time.Now}
}

// Token returns the cached app token, fetching a new one when there is
// none or it expires within tokenEarly. Concurrent callers wait for one
// fetch.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.expires.Add(-tokenEarly)) {
		return s.token, nil
	}
	tok, life, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.token, s.expires = tok, s.now().Add(life)
	return s.token, nil
}

// Invalidate drops the cached token (the connector refused it), so the
// next Token fetches a fresh one.
func (s *TokenSource) Invalidate() {
	s.mu.Lock()
	s.token = ""
	s.mu.Unlock()
}

func (s *TokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.creds.AppID},
		"client_secret": {s.creds.AppPassword},
		"scope":         {botFrameworkScope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.creds.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("fetch app token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("fetch app token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		// The body names the AAD error code (AADSTS...), never the secret.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return "", 0, fmt.Errorf("fetch app token: status %d %s", resp.StatusCode, e.Error)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", 0, errors.New("fetch app token: malformed answer")
	}
	return tr.AccessToken, time.Duration(tr.ExpiresIn) * time.Second, nil
}
