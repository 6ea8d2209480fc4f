// Package teams is the Microsoft Teams surface of opsbot.
package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/apacops/opsbot/periodic"
)

// Notifier posts reports (the daily usage digest, the weekly runbook gap
// report) into one Teams conversation as the bot, proactively: it takes an
// app token from the tenant's token endpoint (client credentials) and posts
// an activity to the Bot Connector of the conversation's service URL.
type Notifier struct {
	cfg    NotifierConfig
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ periodic.Notifier = (*Notifier)(nil)

// NotifierConfig says where reports go and how the bot signs in.
type NotifierConfig struct {
	AppID, AppPassword string
	// TokenURL is the tenant's v2 token endpoint,
	// https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token.
	TokenURL string
	// ServiceURL and ConversationID name the channel or chat to post in
	// (from any activity the bot received there).
	ServiceURL     string
	ConversationID string
}

// NewNotifier returns a notifier for c.
func NewNotifier(c NotifierConfig) *Notifier {
	return &Notifier{cfg: c, client: &http.Client{Timeout: 15 * time.Second}, now: time.Now}
}

// Notify posts text as a plain-text message. Failures (429, 412, 502, 504
// included) are returned for the job's retry to handle.
func (n *Notifier) Notify(ctx context.Context, text string) error {
	tok, err := n.appToken(ctx)
	if err != nil {
		return fmt.Errorf("teams report: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"type": "message", "text": text, "textFormat": "plain"})
	u := strings.TrimRight(n.cfg.ServiceURL, "/") + "/v3/conversations/" + url.PathEscape(n.cfg.ConversationID) + "/activities"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("teams report: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("teams report: post activity: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusUnauthorized {
		n.mu.Lock()
		n.token = "" // fetch a fresh one on the retry
		n.mu.Unlock()
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("teams report: post activity: status %d", resp.StatusCode)
	}
	return nil
}

// appToken returns a cached app token, fetching one when it is missing or
// within a minute of expiry.
func (n *Notifier) appToken(ctx context.Context) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.token != "" && n.now().Before(n.expires.Add(-time.Minute)) {
		return n.token, nil
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {n.cfg.AppID},
		"client_secret": {n.cfg.AppPassword},
		"scope":         {"https://api.botframework.com/.default"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := n.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch app token: %w", err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch app token: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("fetch app token: malformed answer")
	}
	n.token, n.expires = tr.AccessToken, n.now().Add(time.Duration(tr.ExpiresIn)*time.Second)
	return n.token, nil
}
