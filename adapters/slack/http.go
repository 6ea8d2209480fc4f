package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// The HTTP endpoints Slack calls (the manifest's request URLs end in
// these paths).
const (
	PathEvents        = "/slack/events"
	PathCommands      = "/slack/commands"
	PathInteractivity = "/slack/interactivity"
)

// Body limits: an event or a button press carries a message with its
// blocks (Slack messages reach 40,000 characters); a slash command is a
// short form.
const (
	maxEventBytes   = 1 << 20
	maxCommandBytes = 64 << 10
)

// Route is one HTTP endpoint of the surface, to be served beside the REST
// API (httpapi wraps it with request ids, logs, metrics and MaxBodyBytes).
type Route struct {
	Method       string
	Path         string
	Handler      http.Handler
	MaxBodyBytes int64
}

// Routes returns the HTTP endpoints, which record events through inbox.
// Every request must carry Slack's signature; without a signing secret
// there are no endpoints (Socket Mode only).
func (a *App) Routes(inbox Inbox) []Route {
	if a.cfg.SigningSecret == "" {
		return nil
	}
	h := &handler{app: a, inbox: inbox}
	return []Route{
		{Method: http.MethodPost, Path: PathEvents, Handler: http.HandlerFunc(h.serveEvents), MaxBodyBytes: maxEventBytes},
		{Method: http.MethodPost, Path: PathCommands, Handler: http.HandlerFunc(h.serveCommands), MaxBodyBytes: maxCommandBytes},
		{Method: http.MethodPost, Path: PathInteractivity, Handler: http.HandlerFunc(h.serveInteractivity), MaxBodyBytes: maxEventBytes},
	}
}

// verified reads the body once and checks Slack's signature over it (and
// the 5-minute window of its timestamp). On failure it has answered: 413
// for a body over the limit, 401 for a missing, bad or stale signature.
func (h *handler) verified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "could not read the request body", http.StatusBadRequest)
		return nil, false
	}
	sv, err := slack.NewSecretsVerifier(r.Header, h.app.cfg.SigningSecret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		h.app.log.WarnContext(r.Context(), "slack request refused: bad signature", "path", r.URL.Path, "error", err)
		http.Error(w, "invalid Slack signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// serveEvents is POST /slack/events.
func (h *handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, ok := h.verified(w, r)
	if !ok {
		return
	}
	if !json.Valid(body) {
		http.Error(w, "body: not a JSON event", http.StatusUnprocessableEntity)
		return
	}
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		// Signed by Slack but not an event we know: nothing to do, and
		// nothing a redelivery would change.
		h.app.log.InfoContext(r.Context(), "slack event not understood; acked", "error", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		v, _ := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if v == nil || v.Challenge == "" {
			http.Error(w, "challenge: required", http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": v.Challenge})
		return
	case slackevents.AppRateLimited:
		h.app.log.WarnContext(r.Context(), "Slack is rate-limiting our event subscription")
	case slackevents.CallbackEvent:
		retry, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num"))
		if err := h.event(r.Context(), ev, retry); err != nil {
			// Not recorded: a 5xx makes Slack deliver it again.
			h.app.log.ErrorContext(r.Context(), "slack event not recorded; Slack will redeliver", "retry", retry, "error", err)
			http.Error(w, "temporarily unable to record the event", http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// serveCommands is POST /slack/commands: /opsbot.
func (h *handler) serveCommands(w http.ResponseWriter, r *http.Request) {
	body, ok := h.verified(w, r)
	if !ok {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cmd, err := slack.SlashCommandParse(r)
	if err != nil || cmd.TeamID == "" || cmd.UserID == "" || cmd.ChannelID == "" {
		http.Error(w, "body: not a slash command (team_id, user_id and channel_id are required)", http.StatusUnprocessableEntity)
		return
	}
	resp, follow := h.slash(r.Context(), cmd)
	var out []byte
	if resp != nil {
		out, _ = json.Marshal(resp)
		w.Header().Set("Content-Type", "application/json")
	}
	ackThen(w, out, follow)
}

// serveInteractivity is POST /slack/interactivity: button presses.
func (h *handler) serveInteractivity(w http.ResponseWriter, r *http.Request) {
	body, ok := h.verified(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	var cb slack.InteractionCallback
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &cb)
	}
	if err != nil {
		http.Error(w, "payload: not an interaction payload", http.StatusUnprocessableEntity)
		return
	}
	ackThen(w, nil, h.interaction(r.Context(), cb))
}

// ackThen sends a complete 200 response (with body, if any) and then runs
// follow, when there is one, still inside the handler: Slack has its
// answer within its 3 seconds, and the follow-up (a response_url post)
// belongs to the request, which the server lets finish on shutdown.
func ackThen(w http.ResponseWriter, body []byte, follow func()) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	if follow == nil {
		return
	}
	_ = http.NewResponseController(w).Flush()
	follow()
}
