package slack

import (
	"context"
	"errors"
	"time"

	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
)

// Slash command and buttons. /opsbot runs the shared command set at once
// (commands are quick database work) and answers in the HTTP response, or
// the Socket Mode ack; one that is not done within slashDeadline is acked
// empty and answers through response_url when it is. Button presses
// (interactivity) run the action, ack, and then update the message through
// response_url.

// SlashCommand is the command the manifest declares.
const SlashCommand = "/opsbot"

// slashDeadline leaves Slack's 3 seconds room for the network;
// followTimeout bounds a late command or button and its response_url post.
const (
	slashDeadline = 2 * time.Second
	followTimeout = 30 * time.Second
)

// slash runs /opsbot. It returns the answer, or, when the command needs
// longer than slashDeadline, nil and a follow-up that posts the answer
// through response_url once the request is acked.
func (h *handler) slash(ctx context.Context, cmd slack.SlashCommand) (*slack.WebhookMessage, func()) {
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), followTimeout)
	done := make(chan *slack.WebhookMessage, 1)
	go func() { done <- h.runSlash(work, cmd) }()
	timer := time.NewTimer(slashDeadline)
	defer timer.Stop()
	select {
	case resp := <-done:
		cancel()
		return resp, nil
	case <-timer.C:
	}
	return nil, func() {
		defer cancel()
		h.respond(work, cmd.ResponseURL, <-done)
	}
}

// runSlash runs the command for its caller, in the channel it was given in.
// Slash answers are ephemeral, seen by the caller alone, unless the
// command's answer is for the channel (handover).
func (h *handler) runSlash(ctx context.Context, cmd slack.SlashCommand) *slack.WebhookMessage {
	u, err := h.app.caller(ctx, cmd.TeamID, cmd.UserID)
	if err != nil {
		return h.failed(ctx, "slash command", err)
	}
	c := commands.Caller{User: u, Source: conversations.SourceSlack, Private: true,
		Channel: &conversations.Channel{Platform: Platform, Tenant: cmd.TeamID, ID: cmd.ChannelID}}
	res, err := h.app.cmds.RunText(ctx, c, cmd.Text)
	if err != nil {
		return h.failed(ctx, "slash command", err)
	}
	return resultMessage(res)
}

// resultMessage is a command result as a slash response or response_url
// body.
func resultMessage(res commands.Result) *slack.WebhookMessage {
	m := commandMessage(res)
	typ := slack.ResponseTypeEphemeral
	if res.Public {
		typ = slack.ResponseTypeInChannel
	}
	return &slack.WebhookMessage{ResponseType: typ, Text: m.text, Blocks: &slack.Blocks{BlockSet: m.blocks}}
}

// failed is the ephemeral sentence for a command or button that failed.
func (h *handler) failed(ctx context.Context, what string, err error) *slack.WebhookMessage {
	h.app.log.ErrorContext(ctx, what+" failed", "error", err)
	return &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: escape(bot.Classify(err).Message)}
}

// respond posts msg to a response_url.
func (h *handler) respond(ctx context.Context, responseURL string, msg *slack.WebhookMessage) {
	if responseURL == "" || msg == nil {
		return
	}
	err := call(ctx, "response_url", func(ctx context.Context) error {
		return slack.PostWebhookCustomHTTPContext(ctx, responseURL, h.app.hc, msg)
	})
	if err != nil {
		h.app.log.WarnContext(ctx, "answer through response_url", "error", err)
	}
}

// interaction handles a button press: it runs the action for whoever
// pressed it and returns the follow-up that shows the result through
// response_url (nil when there is nothing to show).
func (h *handler) interaction(ctx context.Context, cb slack.InteractionCallback) func() {
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	var act *slack.BlockAction
	for _, ba := range cb.ActionCallback.BlockActions {
		if len(ba.ActionID) > len(actionPrefix) && ba.ActionID[:len(actionPrefix)] == actionPrefix {
			act = ba
			break
		}
	}
	if act == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, slashDeadline)
	defer cancel()
	msg := h.press(ctx, cb, act)
	return func() {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), followTimeout)
		defer fcancel()
		h.respond(fctx, cb.ResponseURL, msg)
	}
}

// press runs a button's action. Archive and Undo replace the message they
// were pressed on (an ephemeral list or confirmation); a vote leaves the
// answer as it is and thanks the voter alone.
func (h *handler) press(ctx context.Context, cb slack.InteractionCallback, ba *slack.BlockAction) *slack.WebhookMessage {
	action, err := commands.ParseAction(ba.Value)
	if err != nil {
		return &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: "That button is not one of mine any more."}
	}
	team := cb.User.TeamID
	if team == "" {
		team = cb.Team.ID
	}
	u, err := h.app.caller(ctx, team, cb.User.ID)
	if err != nil {
		return h.failed(ctx, "button", err)
	}
	c := commands.Caller{User: u, Source: conversations.SourceSlack, Private: true}
	if cb.Channel.ID != "" {
		c.Channel = &conversations.Channel{Platform: Platform, Tenant: cb.Team.ID, ID: cb.Channel.ID}
	}
	res, err := h.app.cmds.Do(ctx, c, action)
	if errors.Is(err, commands.ErrBadAction) {
		return &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: "That button is not one of mine any more."}
	}
	if err != nil {
		return h.failed(ctx, "button", err)
	}
	msg := resultMessage(res)
	msg.ResponseType = slack.ResponseTypeEphemeral
	msg.ReplaceOriginal = action.Kind == commands.ActArchive || action.Kind == commands.ActUnarchive
	return msg
}
