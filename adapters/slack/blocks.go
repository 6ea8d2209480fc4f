package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/usage"
)

// Block Kit. Every text object that carries model output or anything a
// person typed is mrkdwn built by toMrkdwn or escape, and verbatim, so Slack
// does not turn words such as @here into mentions on its own.

// Size limits: a section's text is at most 3,000 characters; we keep under
// it in bytes, and put a bounded number of sections in one message.
const (
	sectionBytes       = 2900
	sectionsPerMessage = 8
	fallbackRunes      = 300
)

// Action ids of our buttons; interactivity acts on these only.
const (
	actionPrefix   = "opsbot_"
	blockVotes     = "opsbot_votes"
	blockActions   = "opsbot_actions"
	actionArchive  = "opsbot_archive"
	actionUndo     = "opsbot_undo"
	actionVoteUp   = "opsbot_vote_up"
	actionVoteDown = "opsbot_vote_down"
)

// outMsg is one Slack message to post: the notification text and blocks.
type outMsg struct {
	text   string
	blocks []slack.Block
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// fallback is a message's notification text: the start of s, escaped.
func fallback(s string) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > fallbackRunes {
		s = string([]rune(s)[:fallbackRunes]) + "…"
	}
	return escape(s)
}

// answerMessages renders a stored answer: its text as mrkdwn sections, as
// many messages as it takes, the last one ending with the notice, the
// sources and the vote buttons.
func answerMessages(r bot.Reply) []outMsg {
	pieces := splitMrkdwn(toMrkdwn(r.Text), sectionBytes)
	if len(pieces) == 0 {
		pieces = []string{"…"}
	}
	var out []outMsg
	for len(pieces) > 0 {
		n := min(len(pieces), sectionsPerMessage)
		m := outMsg{text: fallback(r.Text)}
		for _, p := range pieces[:n] {
			m.blocks = append(m.blocks, slack.NewSectionBlock(mrkdwn(p), nil, nil))
		}
		out = append(out, m)
		pieces = pieces[n:]
	}
	last := &out[len(out)-1]
	last.blocks = append(last.blocks, tailBlocks(r)...)
	return out
}

// tailBlocks end an answer: a budget notice, the runbook sections it drew
// on and 👍/👎.
func tailBlocks(r bot.Reply) []slack.Block {
	var bs []slack.Block
	if r.Notice != "" {
		bs = append(bs, slack.NewContextBlock("", mrkdwn(":warning: "+escape(r.Notice))))
	}
	if s := sources(r.Citations); s != "" {
		bs = append(bs, slack.NewContextBlock("opsbot_sources", mrkdwn(s)))
	}
	if r.AssistantMessage.ID != uuid.Nil {
		var buttons []slack.BlockElement
		for _, a := range commands.VoteActions(r.AssistantMessage.ID) {
			id := actionVoteUp
			if a.Kind == commands.ActVoteDown {
				id = actionVoteDown
			}
			buttons = append(buttons, slack.NewButtonBlockElement(id, a.Value(), plain(a.Label)))
		}
		bs = append(bs, slack.NewActionBlock(blockVotes, buttons...))
	}
	return bs
}

// sources names the runbook and section of each citation, numbered as the
// answer cites them.
func sources(cs []bot.Citation) string {
	if len(cs) == 0 {
		return ""
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		name := "*" + escape(c.Document) + "*"
		if c.Section != "" && c.Section != c.Document {
			name += " › " + escape(c.Section)
		}
		parts[i] = fmt.Sprintf("[%d] %s", i+1, name)
	}
	return "Sources: " + strings.Join(parts, " · ")
}

// commandMessage renders a command's result: its text, usage figures as
// fields, one Archive button per offered conversation, and Undo.
func commandMessage(res commands.Result) outMsg {
	m := outMsg{text: fallback(firstLine(res.Text))}
	text := escape(strings.TrimSpace(res.Text))
	if res.Token != "" {
		text = strings.Replace(text, escape(res.Token), "`"+escape(res.Token)+"`", 1)
	}
	archives := map[uuid.UUID]commands.Action{}
	var others []commands.Action
	for _, a := range res.Actions {
		if a.Kind == commands.ActArchive {
			archives[a.ID] = a
		} else {
			others = append(others, a)
		}
	}
	switch {
	case res.Usage != nil:
		m.blocks = usageBlocks(res)
	case len(archives) > 0:
		m.blocks = append(m.blocks, slack.NewSectionBlock(mrkdwn(escape(firstLine(res.Text))), nil, nil))
		for _, it := range res.Conversations {
			line := fmt.Sprintf("*%s*\n%d messages", escape(it.Title), it.Messages)
			var acc *slack.Accessory
			if a, ok := archives[it.ID]; ok {
				acc = slack.NewAccessory(slack.NewButtonBlockElement(actionArchive, a.Value(), plain(a.Label)))
			}
			m.blocks = append(m.blocks, slack.NewSectionBlock(mrkdwn(line), nil, acc))
		}
	default:
		for _, p := range splitMrkdwn(text, sectionBytes) {
			m.blocks = append(m.blocks, slack.NewSectionBlock(mrkdwn(p), nil, nil))
		}
	}
	if len(others) > 0 {
		var buttons []slack.BlockElement
		for _, a := range others {
			b := slack.NewButtonBlockElement(actionUndo, a.Value(), plain(a.Label))
			buttons = append(buttons, b)
		}
		m.blocks = append(m.blocks, slack.NewActionBlock(blockActions, buttons...))
	}
	return m
}

// usageBlocks shows usage figures as fields.
func usageBlocks(res commands.Result) []slack.Block {
	f := res.Usage
	t := f.Totals
	fields := []*slack.TextBlockObject{
		mrkdwn("*Cost*\n" + usage.FormatUSD(t.CostMicroUSD)),
		mrkdwn("*Tokens*\n" + usage.FormatCount(t.TotalTokens())),
		mrkdwn("*In / out*\n" + usage.FormatCount(t.PromptTokens) + " / " + usage.FormatCount(t.CompletionTokens)),
		mrkdwn("*Replies*\n" + fmt.Sprint(t.Messages)),
	}
	bs := []slack.Block{
		slack.NewSectionBlock(mrkdwn("*"+escape(firstLine(res.Text))+"*"), fields, nil),
	}
	var lines []string
	if len(f.Users) > 0 {
		lines = append(lines, "Top people: "+escape(rowList(f.Users)))
	}
	if len(f.Models) > 0 {
		lines = append(lines, "Top models: "+escape(rowList(f.Models)))
	}
	if len(lines) > 0 {
		bs = append(bs, slack.NewContextBlock("", mrkdwn(strings.Join(lines, "\n"))))
	}
	return bs
}

func rowList(rows []usage.Row) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = r.Label + " " + usage.FormatUSD(r.CostMicroUSD)
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
