package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
)

// Responder answers a turn; *bot.Engine satisfies it.
type Responder interface {
	Respond(ctx context.Context, t bot.Turn, onDelta func(string)) (bot.Reply, error)
}

// defaultTurnTimeout bounds a whole turn taken over HTTP, model retries
// included, when Deps.TurnTimeout is not set. The turn runs detached from
// the request, so a client that disconnects mid-stream does not lose the
// stored reply or its usage.
const defaultTurnTimeout = 3 * time.Minute

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 200

type sendBody struct {
	Content *string `json:"content"`
}

// citationJSON is a runbook section the answer cites as [n].
type citationJSON struct {
	Document string  `json:"document"`
	Section  string  `json:"section"`
	Path     string  `json:"path"`
	Score    float64 `json:"score"`
	Snippet  string  `json:"snippet"`
}

// sendResponse is the SendMessageResponse of the REST contract, plus the
// reply's citations and notice.
type sendResponse struct {
	UserMessage      messageJSON    `json:"user_message"`
	AssistantMessage messageJSON    `json:"assistant_message"`
	Usage            usageJSON      `json:"usage"`
	Citations        []citationJSON `json:"citations"`
	Notice           string         `json:"notice,omitempty"`
}

func toSendResponse(r bot.Reply) sendResponse {
	cites := make([]citationJSON, 0, len(r.Citations))
	for _, c := range r.Citations {
		cites = append(cites, citationJSON(c))
	}
	return sendResponse{
		UserMessage:      toMessageJSON(r.UserMessage),
		AssistantMessage: toMessageJSON(r.AssistantMessage),
		Usage:            turnUsage(r.Usage),
		Citations:        cites,
		Notice:           r.Notice,
	}
}

func turnUsage(u bot.Usage) usageJSON {
	return usageJSON{Model: u.Model, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TotalTokens: u.TotalTokens, CostUSD: usd(u.CostMicroUSD), Estimated: u.Estimated}
}

// sendMessage answers POST /api/v1/conversations/{id}/messages through the
// engine: 201 with SendMessageResponse, or with "Accept: text/event-stream"
// a 200 event stream of "delta" events, then "usage" and "done" (or one
// "error" event). The turn is stored once either way.
//
// Statuses: 404 for a missing or foreign conversation, 413 over 16 KiB, 422
// for empty content or bad JSON, 402 when a budget is used up (the detail
// names the limit and when it resets; 402 rather than 429 because waiting
// a moment does not help and clients retry 429 automatically), 503 when the
// model is unavailable, rate-limited or timed out (with Retry-After when the
// provider gave one) or, while a budget applies, has no price (the detail
// names the model and OPSBOT_PRICES_FILE), 502 when the provider refused the request or sent an
// unreadable answer. An Idempotency-Key header makes a retried POST return
// the stored reply instead of asking the model again.
func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var body sendBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Content == nil {
		return errInvalid("content", "is required")
	}
	if err := bot.ValidateText(*body.Content); err != nil {
		return err
	}
	user := userFrom(r.Context())
	// A stream's status goes out before its turn runs, so the conversation
	// is looked for first (as it is when there is no engine to run the
	// turn); a JSON turn learns of a missing one from the engine, a round
	// trip sooner.
	stream := wantsEventStream(r)
	if stream || s.engine == nil {
		if _, err := s.convs.Get(r.Context(), user.ID, id); err != nil {
			return err
		}
	}
	if s.engine == nil {
		return &Error{Status: http.StatusServiceUnavailable, Detail: "The bot engine is not running on this server"}
	}
	key := "api:" + uuid.NewString()
	if k := strings.TrimSpace(r.Header.Get("Idempotency-Key")); k != "" {
		if len(k) > maxIdempotencyKey || strings.IndexFunc(k, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
			// Printable ASCII only: other bytes (HTTP allows them) are not
			// valid text for PostgreSQL.
			return errInvalid("Idempotency-Key", "must be at most "+strconv.Itoa(maxIdempotencyKey)+" printable ASCII characters")
		}
		// Scoped to the user and the conversation: the same key sent to
		// another conversation is another turn, never that one's reply.
		key = "api:" + user.ID.String() + ":" + id.String() + ":" + k
	}
	turn := bot.Turn{UserID: user.ID, ConversationID: id, Text: *body.Content, Source: conversations.SourceAPI, Key: key}

	// The turn outlives a client that leaves (its reply is stored and paid
	// for either way), but not a shutdown that ran out of time (StopTurns).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.turnTimeout)
	defer cancel()
	defer context.AfterFunc(s.turns, cancel)()
	if stream {
		s.streamReply(ctx, w, r, turn)
		return nil
	}
	rep, err := s.engine.Respond(ctx, turn, nil)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, toSendResponse(rep))
}

func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// streamReply runs the turn, sending each piece of the answer as it comes.
// Write errors (the client left) are ignored: the turn still completes and
// is stored.
func (s *Server) streamReply(ctx context.Context, w http.ResponseWriter, r *http.Request, turn bot.Turn) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	gone := false
	send := func(event string, v any) {
		if gone {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			gone = true
			return
		}
		if err := rc.Flush(); err != nil {
			gone = true
		}
	}
	rep, err := s.engine.Respond(ctx, turn, func(d string) { send("delta", map[string]string{"content": d}) })
	if err != nil {
		e := statusOf(err)
		if e.Status >= 500 {
			s.log.ErrorContext(r.Context(), "streamed turn failed", "path", r.URL.Path, "error", err)
		}
		send("error", problem{Type: "about:blank", Title: http.StatusText(e.Status), Status: e.Status, Detail: e.Detail, Field: e.Field})
		return
	}
	send("usage", turnUsage(rep.Usage))
	send("done", toSendResponse(rep))
}
