package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/users"
)

// Error is an error with the HTTP status and public detail it answers with.
// Handlers return it for input problems they find themselves; errors from
// the domain packages are translated in statusOf.
type Error struct {
	Status int
	Detail string
	Field  string // the input field at fault, for 422
	// RetryAfter, when set, is sent as the Retry-After header (whole
	// seconds, rounded up).
	RetryAfter time.Duration
	Err        error // the cause, logged for 5xx and never shown
}

// Error is the public detail, with the cause when there is one (for logs).
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errInvalid(field, reason string) error {
	return &Error{Status: http.StatusUnprocessableEntity, Field: field, Detail: field + ": " + reason}
}

var (
	errNotFound     = &Error{Status: http.StatusNotFound, Detail: "Conversation not found"}
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Detail: "Missing or invalid bearer token"}
	errForbidden    = &Error{Status: http.StatusForbidden, Detail: "Admin role required"}
)

// problem is an RFC 9457 problem document. Detail keeps clients of the seed
// service (which read .detail) working. There is deliberately no "instance":
// a foreign conversation and a missing one must answer byte for byte alike.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
}

// statusOf translates any error into what the client is told. This is the
// one place errors become HTTP statuses: the server's own (*Error, an
// oversized body, a bad token), then everything the engine and the stores
// return, sorted by bot.Classify. A spent budget is 402 rather than 429
// because waiting a moment does not help and clients retry 429 on their own.
func statusOf(err error) *Error {
	var he *Error
	var ve *conversations.ValidationError
	var tl *conversations.TooLargeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Detail: "request body too large"}
	case errors.Is(err, users.ErrUnauthorized):
		return errUnauthorized
	case errors.Is(err, conversations.ErrConflict):
		return &Error{Status: http.StatusConflict, Detail: "Conversation already exists"}
	}
	f := bot.Classify(err)
	switch f.Kind {
	case bot.FailInvalid:
		if errors.As(err, &ve) {
			return &Error{Status: http.StatusUnprocessableEntity, Field: ve.Field, Detail: ve.Error()}
		}
	case bot.FailTooLarge:
		if errors.As(err, &tl) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Field: tl.Field, Detail: tl.Error()}
		}
	case bot.FailNotFound:
		return errNotFound
	case bot.FailBudget:
		return &Error{Status: http.StatusPaymentRequired, Detail: f.Message, Err: err}
	case bot.FailUnpriced:
		// 503, not 402: nothing is spent and the user can do nothing about
		// it; the service cannot serve this model until an admin prices it.
		return &Error{Status: http.StatusServiceUnavailable, Detail: f.Message, Err: err}
	case bot.FailModelDown:
		return &Error{Status: http.StatusServiceUnavailable, Detail: f.Message, RetryAfter: f.RetryAfter, Err: err}
	case bot.FailModelRefused:
		return &Error{Status: http.StatusBadGateway, Detail: f.Message, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "Internal server error", Err: err}
}

// writeError answers with a problem document, logging server faults once.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := statusOf(err)
	if e.Status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="opsbot"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(problem{
		Type:   "about:blank",
		Title:  http.StatusText(e.Status),
		Status: e.Status,
		Detail: e.Detail,
		Field:  e.Field,
	})
}
