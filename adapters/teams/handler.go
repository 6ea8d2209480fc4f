package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/users"
)

// Path is where the Bot Framework posts activities (the bot's messaging
// endpoint in its Azure registration).
const Path = "/api/messages"

// MaxBodyBytes bounds an activity: text is at most 28 KB in Teams, and
// card submits and entities add little.
const MaxBodyBytes = 256 << 10

// Platform is the TurnArgs platform of Teams turns.
const Platform = conversations.SourceTeams

// maxZoneName bounds the time zone name taken from an activity.
const maxZoneName = 64

// actionTimeout bounds a button press: the command and the card update
// happen while Teams waits for the answer.
const actionTimeout = 10 * time.Second

// Inbox takes a turn for the job queue; *bot.Inbox is one.
type Inbox interface {
	Accept(ctx context.Context, eventKey string, args bot.TurnArgs) (bool, error)
}

// Identities finds or creates the user behind a Teams account and keeps
// their time zone; *users.Store is one.
type Identities interface {
	ResolveIdentity(ctx context.Context, id users.Identity) (users.User, error)
	SetTimeZone(ctx context.Context, id uuid.UUID, zone string) error
}

// Actions runs button actions; *commands.Set is one.
type Actions interface {
	Do(ctx context.Context, c commands.Caller, a commands.Action) (commands.Result, error)
}

// Answers finds the answer a Teams message is; *conversations.Store is one.
type Answers interface {
	AnswerPosted(ctx context.Context, ch conversations.Channel, platformMessageID string) (conversations.Message, error)
}

// HandlerConfig is what the endpoint is built from; all but Log are
// required.
type HandlerConfig struct {
	Validator *Validator
	// TenantID is the bot's tenant: activities from other tenants are
	// refused (the bot is single-tenant).
	TenantID   string
	Inbox      Inbox
	Identities Identities
	Actions    Actions
	Answers    Answers
	// Connector updates the card whose button was pressed.
	Connector *Connector
	Log       *slog.Logger
}

// Handler is the Bot Framework endpoint. Questions and commands are
// accepted into the inbox and answered by the turn job; button presses
// and feedback run at once, since Teams waits for their answer.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger
}

// NewHandler returns the endpoint.
func NewHandler(c HandlerConfig) *Handler {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: c, log: log}
}

// ServeHTTP authenticates the request (a missing token is 401, every
// other failure 403), ties the token to the activity, and handles it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok, err := h.cfg.Validator.Authenticate(ctx, r.Header.Get("Authorization"))
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "activity too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the activity", http.StatusBadRequest)
		return
	}
	in, err := parseActivity(body)
	if err != nil {
		h.log.WarnContext(ctx, "teams activity refused", "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := tok.Check(in.ServiceURL, in.ChannelID); err != nil {
		h.refuse(w, r, err)
		return
	}
	if h.cfg.TenantID != "" && in.tenant() != h.cfg.TenantID {
		h.refuse(w, r, forbidden("activity from another tenant"))
		return
	}
	switch in.Type {
	case "message":
		if v, ok := in.Value[actionField].(string); ok {
			h.submit(w, r, in, v)
			return
		}
		h.message(w, r, in)
	case "invoke":
		h.invoke(w, r, in)
	default:
		// conversationUpdate, installationUpdate, reactions, typing:
		// nothing to answer.
		w.WriteHeader(http.StatusOK)
	}
}

// refuse answers an authentication failure, logging why.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusForbidden
	var ae *AuthError
	if errors.As(err, &ae) {
		status = ae.Status
	}
	h.log.WarnContext(r.Context(), "teams request refused", "status", status, "reason", err.Error())
	http.Error(w, http.StatusText(status), status)
}

// person resolves the activity's sender; ok is false (and the activity is
// to be ignored) for bots and accounts with no AAD object id. The sender's
// time zone follows their Teams client's (the activity's localTimezone),
// so that usage days are their days; it is written only when it changed.
func (h *Handler) person(ctx context.Context, in *inbound) (u users.User, ok bool, err error) {
	if in.From.Role == "bot" || in.From.AadObjectID == "" || in.tenant() == "" {
		return users.User{}, false, nil
	}
	u, err = h.cfg.Identities.ResolveIdentity(ctx, users.Identity{Platform: Platform, Tenant: in.tenant(),
		ExternalID: in.From.AadObjectID, DisplayName: in.From.Name})
	if err != nil {
		return users.User{}, false, err
	}
	if zone := in.LocalTimezone; zone != "" && zone != u.TimeZone {
		if err := h.followZone(ctx, &u, zone); err != nil {
			return users.User{}, false, err
		}
	}
	return u, true, nil
}

// followZone makes zone, the IANA name a Teams client reported, the
// user's time zone. A name this server cannot load is logged and left.
func (h *Handler) followZone(ctx context.Context, u *users.User, zone string) error {
	err := users.ErrInvalid
	// "Local" would load as this server's zone, not the person's; IANA
	// names are short (America/Argentina/ComodRivadavia is among the longest).
	if zone != "Local" && len(zone) <= maxZoneName {
		err = h.cfg.Identities.SetTimeZone(ctx, u.ID, zone)
	}
	switch {
	case errors.Is(err, users.ErrInvalid):
		h.log.InfoContext(ctx, "teams user's time zone is not an IANA zone here; keeping theirs", "user_id", u.ID,
			"tz", truncate(zone, maxZoneName))
	case err != nil:
		return fmt.Errorf("set teams user's time zone: %w", err)
	default:
		u.TimeZone = zone
	}
	return nil
}

// message accepts a question or command for the turn job. In channels
// the bot answers only when mentioned; in chats always.
func (h *Handler) message(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx := r.Context()
	ctype := in.conversationType()
	if in.ID == "" || (ctype == convChannel && !in.mentioned()) {
		w.WriteHeader(http.StatusOK)
		return
	}
	text := in.question()
	if text == "" {
		if in.Text == "" {
			w.WriteHeader(http.StatusOK) // an attachment or a card: nothing to read
			return
		}
		text = commands.CmdHelp // a bare mention
	}
	u, ok, err := h.person(ctx, in)
	if err != nil {
		h.fail(w, r, "resolve teams user", err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	thread := in.threadKey()
	_, isCommand := commands.ParseMessage(text)
	args := bot.TurnArgs{
		Platform: Platform, UserID: u.ID, Thread: &thread, Text: text, Source: conversations.SourceTeams,
		Command: isCommand, Private: ctype == convPersonal,
		Meta: map[string]string{
			metaServiceURL:   in.ServiceURL,
			metaConversation: in.replyConversation(),
			metaReplyTo:      in.ID,
			metaConvType:     ctype,
		},
	}
	// Activity ids are unique within a conversation only.
	isNew, err := h.cfg.Inbox.Accept(ctx, in.ID+"@"+thread.Channel, args)
	if err != nil {
		h.fail(w, r, "accept teams activity", err)
		return
	}
	if !isNew {
		h.log.InfoContext(ctx, "teams activity redelivered; answered once", "activity_id", in.ID)
	}
	w.WriteHeader(http.StatusOK)
}

// fail answers a fault of ours (the database): 503, so the Bot Framework
// delivers the activity again.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.ErrorContext(r.Context(), what, "error", err)
	http.Error(w, "try again later", http.StatusServiceUnavailable)
}

// caller is who pressed a button, and where.
func caller(u users.User, in *inbound) commands.Caller {
	thread := in.threadKey()
	ch := thread.InChannel()
	return commands.Caller{User: u, Source: conversations.SourceTeams, Thread: &thread, Channel: &ch,
		Private: in.conversationType() == convPersonal}
}

// runAction runs a button's action for the activity's sender.
func (h *Handler) runAction(ctx context.Context, in *inbound, value string) (commands.Result, bool, error) {
	a, err := commands.ParseAction(value)
	if err != nil {
		return commands.Result{}, false, nil
	}
	u, ok, err := h.person(ctx, in)
	if err != nil || !ok {
		return commands.Result{}, false, err
	}
	res, err := h.cfg.Actions.Do(ctx, caller(u, in), a)
	if err != nil {
		return commands.Result{}, false, err
	}
	return res, true, nil
}

// submit handles an Action.Submit of one of the bot's cards (Undo,
// Archive): the action runs, and the card is replaced by its result, so a
// redelivered press changes nothing visible.
func (h *Handler) submit(w http.ResponseWriter, r *http.Request, in *inbound, value string) {
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	res, ok, err := h.runAction(ctx, in, value)
	if err != nil {
		h.fail(w, r, "teams button action", err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	method, path := http.MethodPut, activityPath(in.Conversation.ID, in.ReplyToID)
	if in.ReplyToID == "" {
		method, path = http.MethodPost, activityPath(in.replyConversation(), in.ID)
	}
	if _, err := h.cfg.Connector.Send(ctx, method, in.ServiceURL, path, commandActivity(res, in.conversationType() == convPersonal)); err != nil {
		// The action is done; only showing it failed. Teams need not retry.
		h.log.WarnContext(ctx, "teams: show action result", "action", res.Command, "error", err)
	}
	w.WriteHeader(http.StatusOK)
}

// invoke answers the invokes the bot takes part in: a Universal Action
// (adaptiveCard/action) and the feedback buttons (message/submitAction).
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, in *inbound) {
	switch in.Name {
	case "adaptiveCard/action":
		h.execute(w, r, in)
	case "message/submitAction":
		h.feedback(w, r, in)
	default:
		writeJSON(w, map[string]any{"statusCode": http.StatusNotImplemented})
	}
}

// execute runs an Action.Execute press and answers with the card that
// replaces the pressed one.
func (h *Handler) execute(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	var v struct {
		Action struct {
			Data map[string]any `json:"data"`
		} `json:"action"`
	}
	raw, _ := json.Marshal(in.Value)
	_ = json.Unmarshal(raw, &v)
	value, _ := v.Action.Data[actionField].(string)
	res, ok, err := h.runAction(ctx, in, value)
	if err != nil {
		h.fail(w, r, "teams card action", err)
		return
	}
	if !ok {
		writeJSON(w, map[string]any{"statusCode": http.StatusBadRequest, "type": "application/vnd.microsoft.error",
			"value": map[string]string{"code": "BadRequest", "message": "not an opsbot action"}})
		return
	}
	act := commandActivity(res, in.conversationType() == convPersonal)
	card := adaptiveCard([]any{textBlock(act.Text)}, nil)
	if len(act.Attachments) > 0 {
		card = act.Attachments[0].Content.(map[string]any)
	}
	writeJSON(w, map[string]any{"statusCode": http.StatusOK, "type": adaptiveCardType, "value": card})
}

// feedback stores a vote from Teams' feedback buttons on an answer:
// replyToId names the answer's message.
func (h *Handler) feedback(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx := r.Context()
	var v struct {
		ActionName  string `json:"actionName"`
		ActionValue struct {
			Reaction string `json:"reaction"`
		} `json:"actionValue"`
	}
	raw, _ := json.Marshal(in.Value)
	_ = json.Unmarshal(raw, &v)
	kind := map[string]string{"like": commands.ActVoteUp, "dislike": commands.ActVoteDown}[v.ActionValue.Reaction]
	if v.ActionName != "feedback" || kind == "" || in.ReplyToID == "" {
		writeJSON(w, map[string]any{})
		return
	}
	thread := in.threadKey()
	answer, err := h.cfg.Answers.AnswerPosted(ctx, thread.InChannel(), in.ReplyToID)
	if errors.Is(err, conversations.ErrNotFound) {
		h.log.InfoContext(ctx, "teams feedback on an unknown answer", "reply_to_id", in.ReplyToID)
		writeJSON(w, map[string]any{})
		return
	}
	if err != nil {
		h.fail(w, r, "find the answer voted on", err)
		return
	}
	if _, ok, err := h.runAction(ctx, in, commands.Action{Kind: kind, ID: answer.ID}.Value()); err != nil {
		h.fail(w, r, "store teams feedback", err)
		return
	} else if !ok {
		h.log.InfoContext(ctx, "teams feedback from an unknown sender", "answer_id", answer.ID)
	}
	writeJSON(w, map[string]any{})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
