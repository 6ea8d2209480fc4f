package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/slackutilsx"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
)

// Events. One handler serves the Events API over HTTP and Socket Mode: an
// event opsbot answers is recorded through the inbox (its inbound_events
// row and turn job in one transaction) and only then acked; the model call
// happens in the job. A redelivery, by either transport, carries the same
// event_id and is acked without a second job.

// eventScopes are the bot events the adapter subscribes to, with the scope
// each needs; the manifest must list exactly these.
var eventScopes = map[string]string{
	"app_mention":              "app_mentions:read",
	"assistant_thread_started": "assistant:write",
	"message.channels":         "channels:history",
	"message.groups":           "groups:history",
	"message.im":               "im:history",
	"message.mpim":             "mpim:history",
}

// messageSubscriptions maps a message event's channel_type to the
// subscription it arrives through.
var messageSubscriptions = map[string]string{
	"channel": "message.channels",
	"group":   "message.groups",
	"im":      "message.im",
	"mpim":    "message.mpim",
}

// Meta keys of a Slack turn (bot.TurnArgs.Meta): what the Replier needs
// besides the thread.
const (
	metaUser      = "slack_user"      // who asked: ephemeral answers, stream recipients
	metaUserTeam  = "slack_user_team" // their team (differs in shared channels)
	metaTS        = "slack_ts"        // the question's ts: our replies come after it
	metaDM        = "slack_dm"        // "1" in a direct message
	metaAssistant = "slack_assistant" // "1" in an assistant thread (status, title)
	metaFirst     = "slack_first"     // "1" when the turn starts its conversation
)

// lostNotice is posted when the last delivery Slack makes of a message
// could not be recorded: without it the person would wait in silence.
const lostNotice = "Sorry, I could not take your message: my database is not answering right now. Please send it again in a few minutes."

// finalDelivery is the retry number of Slack's last delivery of an event
// (it retries three times).
const finalDelivery = 3

// handler serves Slack's requests for one inbox.
type handler struct {
	app   *App
	inbox Inbox
}

// inbound is a message opsbot answers, from an app_mention or a message
// event.
type inbound struct {
	eventID     string
	team        string // the workspace the app is in: the thread's tenant
	userTeam    string // the person's workspace (differs in shared channels)
	user        string
	channel     string
	channelType string
	ts          string
	threadTS    string
	text        string // as Slack sent it
}

// event handles one Events API callback. It returns nil when the delivery
// may be acked: the turn is recorded, was recorded before, or the event is
// one opsbot does not answer. An error means nothing was recorded and the
// delivery must not be acked, so that Slack delivers it again.
func (h *handler) event(ctx context.Context, ev slackevents.EventsAPIEvent, retry int) error {
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok {
		return nil
	}
	a := h.app
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		// In a DM the message event answers; edits and bots are ignored.
		if e.BotID != "" || e.Edited != nil || e.User == "" || slackutilsx.DetectChannelType(e.Channel) == slackutilsx.CTypeDM {
			return nil
		}
		return h.answer(ctx, inbound{eventID: cb.EventID, team: ev.TeamID, userTeam: e.UserTeam, user: e.User,
			channel: e.Channel, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, text: e.Text}, cb, retry)
	case *slackevents.MessageEvent:
		if e.SubType != "" || e.BotID != "" || e.User == "" || messageSubscriptions[e.ChannelType] == "" {
			return nil // edits, deletions, joins, bots (ourselves included)
		}
		bot := a.botUserID(ctx, cb.Authorizations)
		if e.User == bot {
			return nil
		}
		in := inbound{eventID: cb.EventID, team: ev.TeamID, userTeam: e.UserTeam, user: e.User, channel: e.Channel,
			channelType: e.ChannelType, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, text: e.Text}
		if e.ChannelType == "im" {
			return h.answer(ctx, in, cb, retry)
		}
		// In a channel: a mention is answered through its app_mention;
		// otherwise only follow-ups in threads the bot already answered.
		if in.threadTS == "" || mentions(e.Text, bot) {
			return nil
		}
		_, err := a.convs.GetByThread(ctx, in.thread())
		switch {
		case errors.Is(err, conversations.ErrNotFound):
			return nil
		case err != nil:
			h.tellLost(ctx, in, retry)
			return fmt.Errorf("slack event %s: thread lookup: %w", cb.EventID, err)
		}
		return h.answer(ctx, in, cb, retry)
	case *slackevents.AssistantThreadStartedEvent:
		h.assistantStarted(ctx, e.AssistantThread)
	}
	return nil
}

// mentions reports whether Slack text mentions the bot; with the bot's id
// unknown, any mention counts, so that a mention is never answered twice.
func mentions(text, bot string) bool {
	if bot == "" {
		return strings.Contains(text, "<@")
	}
	return strings.Contains(text, "<@"+bot+">") || strings.Contains(text, "<@"+bot+"|")
}

func (in inbound) thread() conversations.ThreadKey {
	th := in.threadTS
	if th == "" {
		th = in.ts // the message starts the thread our answer goes in
	}
	return conversations.ThreadKey{Platform: Platform, Tenant: in.team, Channel: in.channel, Thread: th}
}

// answer records a message to answer through the inbox.
func (h *handler) answer(ctx context.Context, in inbound, cb *slackevents.EventsAPICallbackEvent, retry int) error {
	a := h.app
	userTeam := in.userTeam
	if userTeam == "" {
		userTeam = in.team
	}
	userID, err := a.person(ctx, userTeam, in.user)
	if err != nil {
		h.tellLost(ctx, in, retry)
		return fmt.Errorf("slack event %s: find the person: %w", in.eventID, err)
	}
	text := plainText(in.text, a.botUserID(ctx, cb.Authorizations))
	if text == "" {
		text = commands.CmdHelp // a bare mention: say what the bot can do
	}
	_, isCommand := commands.ParseMessage(text)
	thread := in.thread()
	meta := map[string]string{metaUser: in.user, metaUserTeam: userTeam, metaTS: in.ts}
	dm := in.channelType == "im"
	if dm {
		meta[metaDM] = "1"
		if in.threadTS != "" {
			meta[metaAssistant] = "1"
			// Assistant threads get a title from their first question.
			if _, err := a.convs.GetByThread(ctx, thread); errors.Is(err, conversations.ErrNotFound) {
				meta[metaFirst] = "1"
			} else if err != nil {
				h.tellLost(ctx, in, retry)
				return fmt.Errorf("slack event %s: thread lookup: %w", in.eventID, err)
			}
		}
	}
	key := in.eventID
	if key == "" {
		key = "msg:" + in.channel + ":" + in.ts
	}
	isNew, err := h.inbox.Accept(ctx, key, bot.TurnArgs{Platform: Platform, UserID: userID, Thread: &thread, Text: text,
		Source: conversations.SourceSlack, Meta: meta, Command: isCommand, Private: dm})
	if err != nil {
		h.tellLost(ctx, in, retry)
		return fmt.Errorf("slack event %s: %w", in.eventID, err)
	}
	if !isNew {
		a.log.DebugContext(ctx, "redelivered event acked", "event_id", in.eventID, "retry", retry)
	}
	return nil
}

// tellLost tells the person, on Slack's last delivery of their message,
// that it could not be taken; earlier deliveries stay silent because Slack
// will try again.
func (h *handler) tellLost(ctx context.Context, in inbound, retry int) {
	if retry < finalDelivery {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	th := in.thread()
	err := call(ctx, methodPostMessage, func(ctx context.Context) error {
		_, _, err := h.app.api.PostMessageContext(ctx, th.Channel, slack.MsgOptionTS(th.Thread),
			slack.MsgOptionText(escape(lostNotice), false))
		return err
	})
	if err != nil {
		h.app.log.WarnContext(ctx, "tell a person their message was lost", "event_id", in.eventID, "error", err)
	}
}

// suggestedPrompts are offered when someone opens the assistant panel; the
// manifest's assistant_view lists the same ones.
var suggestedPrompts = []slack.AssistantThreadsPrompt{
	{Title: "Disk full", Message: "How do I clear a full /var on a Linux host?"},
	{Title: "Failover", Message: "How do we fail over the primary Postgres in ap-southeast-1?"},
	{Title: "My usage", Message: "usage 7d"},
}

// assistantStarted offers the suggested prompts in a new assistant thread.
// It is a nicety: a failure is logged and the event acked.
func (h *handler) assistantStarted(ctx context.Context, th slackevents.AssistantThread) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := call(ctx, methodSetPrompts, func(ctx context.Context) error {
		return h.app.api.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
			Title: "Try asking", ChannelID: th.ChannelID, ThreadTS: th.ThreadTimeStamp, Prompts: suggestedPrompts})
	})
	if err != nil {
		h.app.log.WarnContext(ctx, "set suggested prompts", "channel", th.ChannelID, "error", err)
	}
}
