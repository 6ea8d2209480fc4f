package slack

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/bot"
)

// Replies. Every message posted for a turn carries Slack message metadata
// naming the turn key and its part, so that a retried job (Reply.Attempt >
// 1) finds in the thread what an earlier attempt posted but died before
// recording, and posts only what is missing: each reply is posted once,
// even across a crash between the post and the database write.

// replyEvent is the metadata event_type of our replies.
const replyEvent = "opsbot_reply"

// Metadata payload fields.
const (
	mdTurn  = "turn_key"
	mdPart  = "part"  // 1-based part of a long answer
	mdFinal = "final" // false while a streamed answer is still being written
)

// maxReplyPages bounds the thread pages read when looking for an earlier
// post (200 messages each, from the question on).
const maxReplyPages = 5

func replyMetadata(key string, part int, final bool) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: replyEvent, EventPayload: map[string]any{mdTurn: key, mdPart: part, mdFinal: final}}
}

// Reply posts a reply in its turn's thread; see bot.Replier. It returns the
// ts of the (first) message.
func (a *App) Reply(ctx context.Context, t bot.Turn, r bot.Reply) (string, error) {
	th, err := threadOf(t)
	if err != nil {
		return "", err
	}
	switch {
	case r.Command != nil:
		return a.replyCommand(ctx, t, r)
	case !r.Stored():
		if s := a.streams.take(t.Key); s != nil {
			return s.fail(ctx, r)
		}
		return a.postOnce(ctx, t, r.Attempt, []outMsg{{text: escape(r.Text)}})
	}
	var ts string
	if s := a.streams.take(t.Key); s != nil {
		ts, err = s.finish(ctx, r)
	} else {
		ts, err = a.postOnce(ctx, t, r.Attempt, answerMessages(r))
	}
	if err == nil && t.Meta[metaAssistant] == "1" && t.Meta[metaFirst] == "1" {
		a.setTitle(ctx, th.Channel, th.Thread, t.Text)
	}
	return ts, err
}

// replyCommand posts a command's result. What is for the caller alone
// (anything but handover outside a DM, and a token anywhere) is ephemeral;
// ephemeral messages cannot be found again, so they have no ts to record.
func (a *App) replyCommand(ctx context.Context, t bot.Turn, r bot.Reply) (string, error) {
	m := commandMessage(*r.Command)
	if r.Command.Token == "" && (r.Command.Public || t.Meta[metaDM] == "1") {
		return a.postOnce(ctx, t, r.Attempt, []outMsg{m})
	}
	th, _ := threadOf(t)
	err := call(ctx, methodPostEphemeral, func(ctx context.Context) error {
		_, err := a.api.PostEphemeralContext(ctx, th.Channel, t.Meta[metaUser], slack.MsgOptionTS(th.Thread),
			slack.MsgOptionText(m.text, false), slack.MsgOptionBlocks(m.blocks...))
		return err
	})
	return "", err
}

// posted is a message found in the thread for a turn.
type posted struct {
	ts    string
	final bool
}

// postOnce posts msgs as the parts of a turn's reply. On a retry it first
// looks for parts already posted: a final one is kept, one left unfinished
// by a stream is completed with chat.update, and only missing ones are
// posted.
func (a *App) postOnce(ctx context.Context, t bot.Turn, attempt int, msgs []outMsg) (string, error) {
	th, err := threadOf(t)
	if err != nil {
		return "", err
	}
	found := map[int]posted{}
	if attempt > 1 {
		if found, err = a.findPosted(ctx, t); err != nil {
			return "", err
		}
	}
	var first string
	for i, m := range msgs {
		part := i + 1
		md := replyMetadata(t.Key, part, true)
		ts := ""
		switch p, ok := found[part]; {
		case ok && p.final:
			ts = p.ts
		case ok:
			if err := a.update(ctx, th.Channel, p.ts, m, md); err != nil {
				return "", err
			}
			ts = p.ts
		default:
			if ts, err = a.post(ctx, th.Channel, th.Thread, m, md); err != nil {
				return "", err
			}
		}
		if part == 1 {
			first = ts
		}
	}
	return first, nil
}

// post posts one message in a thread, paced per channel.
func (a *App) post(ctx context.Context, channel, thread string, m outMsg, md slack.SlackMetadata) (string, error) {
	if err := a.posts.wait(ctx, channel); err != nil {
		return "", fmt.Errorf("slack %s: %w", methodPostMessage, err)
	}
	opts := []slack.MsgOption{slack.MsgOptionTS(thread), slack.MsgOptionText(m.text, false),
		slack.MsgOptionMetadata(md), slack.MsgOptionDisableLinkUnfurl()}
	if len(m.blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.blocks...))
	}
	var ts string
	err := call(ctx, methodPostMessage, func(ctx context.Context) (err error) {
		_, ts, err = a.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// update replaces a message of ours.
func (a *App) update(ctx context.Context, channel, ts string, m outMsg, md slack.SlackMetadata) error {
	opts := []slack.MsgOption{slack.MsgOptionText(m.text, false), slack.MsgOptionMetadata(md), slack.MsgOptionBlocks(m.blocks...)}
	return call(ctx, methodUpdate, func(ctx context.Context) error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	})
}

// findPosted reads the turn's thread, from the question on, for messages
// carrying its turn key.
func (a *App) findPosted(ctx context.Context, t bot.Turn) (map[int]posted, error) {
	th, _ := threadOf(t)
	found := map[int]posted{}
	p := &slack.GetConversationRepliesParameters{ChannelID: th.Channel, Timestamp: th.Thread, Oldest: t.Meta[metaTS],
		Inclusive: true, Limit: 200, IncludeAllMetadata: true}
	for range maxReplyPages {
		var msgs []slack.Message
		var more bool
		var next string
		err := call(ctx, methodReplies, func(ctx context.Context) (err error) {
			msgs, more, next, err = a.api.GetConversationRepliesContext(ctx, p)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			md := m.Metadata
			if m.BotID == "" || md.EventType != replyEvent || md.EventPayload[mdTurn] != t.Key {
				continue
			}
			part, _ := md.EventPayload[mdPart].(float64)
			final, _ := md.EventPayload[mdFinal].(bool)
			found[int(part)] = posted{ts: m.Timestamp, final: final}
		}
		if !more || next == "" {
			break
		}
		p.Cursor = next
	}
	return found, nil
}

// setTitle names an assistant thread after its first question. It is a
// nicety: a failure is logged.
func (a *App) setTitle(ctx context.Context, channel, thread, question string) {
	title := firstLine(question)
	if utf8.RuneCountInString(title) > 60 {
		title = string([]rune(title)[:59]) + "…"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := call(ctx, methodSetTitle, func(ctx context.Context) error {
		return a.api.SetAssistantThreadsTitleContext(ctx, slack.AssistantThreadsSetTitleParameters{
			ChannelID: channel, ThreadTS: thread, Title: title})
	})
	if err != nil {
		a.log.WarnContext(ctx, "set assistant thread title", "channel", channel, "error", err)
	}
}
