package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Retries of one connector call: Teams answers 429 when a conversation gets
// more than about 7 messages a second, and 412, 502 and 504 on transient
// faults of its own.
const (
	connectorAttempts = 5
	retryBase         = 500 * time.Millisecond
	retryMax          = 20 * time.Second
)

// Connector calls the Bot Connector REST API of a conversation's service
// URL as the bot. The msbotbuilder-go client is not used for this: it takes
// no context, sets no timeouts, drops the posted activity's id (which the
// turn worker records) and dereferences a nil response on a transport
// error.
type Connector struct {
	tokens *TokenSource
	client *http.Client
	// sleep waits between retries; tests make it instant.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewConnector returns a connector signing in through tokens; client nil
// means one with a 20 s timeout per request.
func NewConnector(tokens *TokenSource, client *http.Client) *Connector {
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	return &Connector{tokens: tokens, client: client, sleep: sleepCtx}
}

// StatusError is a connector call that failed with an HTTP status.
type StatusError struct {
	Status int
	Code   string // the connector's error code, when it sent one
}

func (e *StatusError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("bot connector: status %d (%s)", e.Status, e.Code)
	}
	return fmt.Sprintf("bot connector: status %d", e.Status)
}

// activityPath is the connector path of a conversation's activities, or of
// one activity in it (a reply to it, or its update).
func activityPath(conversationID, activityID string) string {
	p := "/v3/conversations/" + url.PathEscape(conversationID) + "/activities"
	if activityID != "" {
		p += "/" + url.PathEscape(activityID)
	}
	return p
}

// Send sends an activity (POST a new one or a reply, PUT an update) and
// returns the id the connector gave it. 429, 412, 502 and 504 are retried
// with jittered exponential backoff, waiting at least as long as a
// Retry-After header asks; a 401 is retried once with a fresh token.
func (c *Connector) Send(ctx context.Context, method, serviceURL, path string, activity any) (string, error) {
	body, err := json.Marshal(activity)
	if err != nil {
		return "", fmt.Errorf("encode activity: %w", err)
	}
	u := strings.TrimRight(serviceURL, "/") + path
	refreshed := false
	for attempt := 1; ; attempt++ {
		id, wait, err := c.once(ctx, method, u, body)
		if err == nil {
			return id, nil
		}
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized && !refreshed {
			c.tokens.Invalidate()
			refreshed = true
			attempt--
			continue
		}
		if !retryable(err) || attempt >= connectorAttempts {
			return "", err
		}
		if wait > retryMax {
			return "", err // it asks for longer than a turn should wait: the job retries later
		}
		if serr := c.sleep(ctx, backoff(attempt, wait)); serr != nil {
			return "", fmt.Errorf("%w (stopped waiting to retry: %v)", err, serr)
		}
	}
}

// once makes one call; wait is the Retry-After the connector asked for.
func (c *Connector) once(ctx context.Context, method, u string, body []byte) (id string, wait time.Duration, err error) {
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return "", 0, fmt.Errorf("bot connector: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("bot connector: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Status: resp.StatusCode}
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil {
			se.Code = e.Error.Code
		}
		return "", retryAfter(resp.Header.Get("Retry-After"), time.Now()), se
	}
	var rr struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &rr) // an update may answer with no body
	return rr.ID, 0, nil
}

// retryable reports whether a failed call is worth another try.
func retryable(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Status {
	case http.StatusTooManyRequests, http.StatusPreconditionFailed, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the wait before retry attempt+1: full jitter over an
// exponentially growing window, but never less than what Retry-After asked.
func backoff(attempt int, retryAfter time.Duration) time.Duration {
	window := min(retryBase<<(attempt-1), retryMax)
	d := time.Duration(rand.Int64N(int64(window)) + 1)
	if retryAfter > 0 {
		// Jitter above the server's floor, so that callers it throttled
		// together do not come back together.
		d = retryAfter + d/4
	}
	return d
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
