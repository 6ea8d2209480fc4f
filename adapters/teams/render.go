package teams

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/usage"
)

// outActivity is an activity the bot sends. It is not schema.Activity,
// whose struct-typed fields are always encoded (a zero timestamp, empty
// suggested actions) and whose Entity keeps only a type.
type outActivity struct {
	Type        string              `json:"type"`
	Text        string              `json:"text,omitempty"`
	TextFormat  string              `json:"textFormat,omitempty"`
	Attachments []schema.Attachment `json:"attachments,omitempty"`
	Entities    []any               `json:"entities,omitempty"`
	ChannelData map[string]any      `json:"channelData,omitempty"`
}

// adaptiveCardType is the attachment content type of an Adaptive Card.
const adaptiveCardType = "application/vnd.microsoft.card.adaptive"

// actionField is the Action.Submit data field that carries a button's
// commands.Action value.
const actionField = "opsbot"

// Teams' limits on citations.
const (
	maxCitations        = 20
	maxCitationName     = 80
	maxCitationAbstract = 160
)

var (
	fence     = regexp.MustCompile("(?s)```.*?(```|$)")
	heading   = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	broadcast = regexp.MustCompile(`(?i)(^|[^\w.])@(everyone|channel|here|team)\b`)
	citeRef   = regexp.MustCompile(`\[(\d{1,2})\]`)
	quoteLine = regexp.MustCompile(`(?m)^(\s*)&gt;`)
)

// teamsMarkdown turns model output (Markdown) into text Teams renders and
// that cannot mention anyone: outside code, "<" is escaped so that no
// <at> tag (or other markup) reaches Teams, and headings, which Teams
// messages do not render, become bold lines. Nobody is mentioned anyway
// unless a mention entity says so, and the bot never sends one for model
// output; @everyone and friends get a zero-width space for readers who
// would take them for a ping.
func teamsMarkdown(s string) string {
	var b strings.Builder
	last := 0
	for _, loc := range fence.FindAllStringIndex(s, -1) {
		b.WriteString(prose(s[last:loc[0]]))
		b.WriteString(s[loc[0]:loc[1]])
		last = loc[1]
	}
	b.WriteString(prose(s[last:]))
	return broadcast.ReplaceAllString(b.String(), "$1@\u200b$2")
}

func prose(s string) string {
	s = strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
	// Blockquotes survive: the escape above is undone at a line start.
	s = quoteLine.ReplaceAllString(s, "$1>")
	return heading.ReplaceAllString(s, "**$1**")
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// citationName is how a citation is titled: "Disk full — Free space".
func citationName(c bot.Citation) string {
	name := c.Document
	if c.Section != "" && c.Section != c.Document {
		name += " — " + c.Section
	}
	return name
}

// aiEntity marks a message as AI-generated and carries its citations
// (Teams shows them on the [n] markers of the text).
func aiEntity(cites []bot.Citation) map[string]any {
	e := map[string]any{
		"type":           "https://schema.org/Message",
		"@type":          "Message",
		"@context":       "https://schema.org",
		"@id":            "",
		"additionalType": []string{"AIGeneratedContent"},
	}
	var claims []map[string]any
	for i, c := range cites[:min(len(cites), maxCitations)] {
		claims = append(claims, map[string]any{
			"@type":    "Claim",
			"position": i + 1,
			"appearance": map[string]any{
				"@type":    "DigitalDocument",
				"name":     truncate(citationName(c), maxCitationName),
				"abstract": truncate(strings.Join(strings.Fields(c.Snippet), " "), maxCitationAbstract),
			},
		})
	}
	if claims != nil {
		e["citation"] = claims
	}
	return e
}

// withReferences makes sure every citation is referenced in the text,
// since Teams shows only the citations the text points at: those the
// answer did not mark get a "Sources" line of [n] markers.
func withReferences(text string, n int) string {
	n = min(n, maxCitations)
	seen := map[string]bool{}
	for _, m := range citeRef.FindAllStringSubmatch(text, -1) {
		seen[m[1]] = true
	}
	var missing []string
	for i := 1; i <= n; i++ {
		if !seen[fmt.Sprint(i)] {
			missing = append(missing, fmt.Sprintf("[%d]", i))
		}
	}
	if len(missing) == 0 {
		return text
	}
	return text + "\n\nSources: " + strings.Join(missing, " ")
}

// sourcesList is the citations written out, for channels, where Teams
// shows no citation entities.
func sourcesList(cites []bot.Citation) string {
	if len(cites) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n\n**Sources**")
	for i, c := range cites {
		fmt.Fprintf(&b, "\n\n[%d] %s", i+1, teamsMarkdown(citationName(c)))
		if c.Path != "" {
			fmt.Fprintf(&b, " (`%s`)", strings.ReplaceAll(c.Path, "`", "'"))
		}
	}
	return b.String()
}

// answerActivity renders a stored answer. In chats it is marked
// AI-generated, carries its citations as Teams citations and offers the
// feedback buttons; channels show neither, so there the sources are
// written out.
func answerActivity(r bot.Reply, chat bool) outActivity {
	text := teamsMarkdown(r.Text)
	a := outActivity{Type: "message", TextFormat: "markdown"}
	if chat {
		text = withReferences(text, len(r.Citations))
		a.Entities = []any{aiEntity(r.Citations)}
		a.ChannelData = map[string]any{"feedbackLoopEnabled": true}
	} else {
		text += sourcesList(r.Citations)
	}
	if r.Notice != "" {
		text += "\n\n_" + teamsMarkdown(r.Notice) + "_"
	}
	a.Text = text
	return a
}

// noticeActivity is a plain message: a failure notice, a command's text.
func noticeActivity(text string) outActivity {
	return outActivity{Type: "message", Text: text, TextFormat: "plain"}
}

// privateNotice stands in for an answer that holds the caller's own data
// where others would see it.
const privateNotice = "That answer is private: ask me in a 1:1 chat with me."

// commandActivity renders a command's result: usage as a card of figures,
// archive (and its choices) as a card with buttons, the rest as text.
// Outside a 1:1 chat (personal false) everyone in the channel or group
// chat sees what the bot posts, and Teams has no message for one person
// alone: an answer holding the caller's own data becomes privateNotice.
func commandActivity(res commands.Result, personal bool) outActivity {
	switch {
	case res.Personal && !personal:
		return noticeActivity(privateNotice)
	case res.Refused:
		return noticeActivity(res.Text)
	case res.Usage != nil:
		return cardActivity(usageCard(res.Usage), res.Text)
	case len(res.Actions) > 0:
		return cardActivity(actionsCard(res), res.Text)
	}
	return noticeActivity(res.Text)
}

func cardActivity(card map[string]any, fallback string) outActivity {
	card["fallbackText"] = fallback
	return outActivity{Type: "message", Attachments: []schema.Attachment{{ContentType: adaptiveCardType, Content: card}}}
}

func adaptiveCard(body []any, actions []any) map[string]any {
	c := map[string]any{
		"type":    "AdaptiveCard",
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"version": "1.5",
		"body":    body,
	}
	if len(actions) > 0 {
		c["actions"] = actions
	}
	return c
}

func textBlock(text string, opts ...string) map[string]any {
	t := map[string]any{"type": "TextBlock", "text": text, "wrap": true}
	for i := 0; i+1 < len(opts); i += 2 {
		t[opts[i]] = opts[i+1]
	}
	return t
}

func factSet(facts [][2]string) map[string]any {
	fs := make([]map[string]string, len(facts))
	for i, f := range facts {
		fs[i] = map[string]string{"title": f[0], "value": f[1]}
	}
	return map[string]any{"type": "FactSet", "facts": fs}
}

func submit(a commands.Action, title string) map[string]any {
	return map[string]any{"type": "Action.Submit", "title": title, "data": map[string]string{actionField: a.Value()}}
}

// usageCard shows the caller's (or the team's) figures.
func usageCard(f *commands.Figures) map[string]any {
	title := fmt.Sprintf("Your usage, last %d days", f.Days)
	if f.Team {
		title = fmt.Sprintf("Team usage, last %d days", f.Days)
	}
	t := f.Totals
	facts := [][2]string{
		{"Cost", usage.FormatUSD(t.CostMicroUSD)},
		{"Tokens", usage.FormatCount(t.TotalTokens())},
		{"Prompt", usage.FormatCount(t.PromptTokens)},
		{"Completion", usage.FormatCount(t.CompletionTokens)},
		{"Replies", fmt.Sprint(t.Messages)},
	}
	if f.Team {
		facts = append(facts, [2]string{"People", fmt.Sprint(f.People)})
	}
	body := []any{
		textBlock(title, "size", "Medium", "weight", "Bolder"),
		textBlock(fmt.Sprintf("%s to %s (%s)", f.From, f.To, f.Zone), "isSubtle", "true", "spacing", "None"),
		factSet(facts),
	}
	for _, part := range []struct {
		title string
		rows  []usage.Row
	}{{"Top people", f.Users}, {"Top models", f.Models}} {
		if len(part.rows) == 0 {
			continue
		}
		rows := make([][2]string, len(part.rows))
		for i, r := range part.rows {
			rows[i] = [2]string{r.Label, usage.FormatUSD(r.CostMicroUSD)}
		}
		body = append(body, textBlock(part.title, "weight", "Bolder"), factSet(rows))
	}
	return adaptiveCard(body, nil)
}

// actionsCard is a command's text with its buttons: Undo after archive,
// or one Archive button per conversation offered.
func actionsCard(res commands.Result) map[string]any {
	if len(res.Actions) == 1 {
		a := res.Actions[0]
		return adaptiveCard([]any{textBlock(res.Text)}, []any{submit(a, a.Label)})
	}
	head, _, _ := strings.Cut(res.Text, "\n")
	body := []any{textBlock(head, "weight", "Bolder")}
	for i, a := range res.Actions {
		label := a.Label
		if i < len(res.Conversations) && res.Conversations[i].ID == a.ID {
			label = res.Conversations[i].Title
		}
		body = append(body, map[string]any{
			"type": "ColumnSet",
			"columns": []any{
				map[string]any{"type": "Column", "width": "stretch", "verticalContentAlignment": "Center",
					"items": []any{textBlock(label)}},
				map[string]any{"type": "Column", "width": "auto",
					"items": []any{map[string]any{"type": "ActionSet", "actions": []any{submit(a, a.Label)}}}},
			},
		})
	}
	return adaptiveCard(body, nil)
}
