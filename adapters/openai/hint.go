package openai

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"
)

// errEOF ends a stream normally.
var errEOF = io.EOF

// attemptHint carries what go-openai's errors leave out (the status code of
// a failure and its Retry-After header) from the HTTP layer to the retry
// loop, through the attempt's context.
type attemptHint struct {
	status     int
	retryAfter time.Duration
}

type hintKey struct{}

func withHint(ctx context.Context, h *attemptHint) context.Context {
	return context.WithValue(ctx, hintKey{}, h)
}

// hintingDoer is the go-openai HTTP client: it records failures' status and
// Retry-After in the request's attemptHint.
type hintingDoer struct{ c *http.Client }

func (d *hintingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	if h, ok := req.Context().Value(hintKey{}).(*attemptHint); ok {
		h.status = resp.StatusCode
		h.retryAfter = parseRetryAfter(resp.Header, time.Now())
	}
	return resp, nil
}

// maxRetryAfterHint bounds a provider's Retry-After before it becomes a
// time.Duration: "1e300" or "Inf" would otherwise overflow to a negative
// wait, which means retrying at once.
const maxRetryAfterHint = 24 * time.Hour

// parseRetryAfter reads retry-after-ms (Azure, OpenAI) or Retry-After in
// seconds or as an HTTP date; 0 when absent or unreadable, at most
// maxRetryAfterHint.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return floatDuration(ms, time.Millisecond)
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if !(s > 0) { // also NaN
			return 0
		}
		return floatDuration(s, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfterHint)
		}
	}
	return 0
}

// floatDuration is n units (n > 0), capped at maxRetryAfterHint.
func floatDuration(n float64, unit time.Duration) time.Duration {
	if n >= float64(maxRetryAfterHint/unit) {
		return maxRetryAfterHint
	}
	return time.Duration(n * float64(unit))
}
