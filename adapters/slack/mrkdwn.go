package slack

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack/slackutilsx"
)

// Text going out to Slack and coming in from it. Slack's message text is
// mrkdwn, in which "<…>" is a control sequence: <!channel>, <!here>,
// <!subteam^S1>, <@U1> ping people and <url|label> links. Model output is
// untrusted, so every piece of it is escaped (& < > become entities) and
// the only control sequences in what we post are the links we build from
// the model's Markdown ourselves, with their URLs percent-encoded.

// escape makes text inert as mrkdwn: nothing in it can ping or link.
func escape(s string) string { return slackutilsx.EscapeMessage(s) }

// Markdown constructs toMrkdwn converts, line by line.
var (
	mdFence      = regexp.MustCompile("^\\s*(```|~~~)")
	mdHeading    = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	mdRule       = regexp.MustCompile(`^\s{0,3}([-*_])(\s*([-*_])){2,}\s*$`)
	mdBullet     = regexp.MustCompile(`^(\s*)[-*+]\s+(.*)$`)
	mdOrdered    = regexp.MustCompile(`^(\s*)(\d{1,9})[.)]\s+(.*)$`)
	mdQuote      = regexp.MustCompile(`^\s{0,3}>\s?(.*)$`)
	mdLinkish    = regexp.MustCompile(`\[([^\[\]\n]+)\]\(\s*([^()\s]+)(?:\s+"[^"\n]*")?\s*\)|<(https?://[^<>|\s]+)(?:\|([^<>\n]*))?>|https?://[^\s<>()\[\]{}|"'` + "`" + `]+`)
	mdBold       = regexp.MustCompile(`\*\*([^*\n]+?)\*\*|__([^_\n]+?)__`)
	mdItalicStar = regexp.MustCompile(`\*([^*\s](?:[^*\n]*[^*\s])?)\*`)
	mdStrike     = regexp.MustCompile(`~~([^~\n]+?)~~`)
)

// boldMark stands in for a bold marker while single-star italics are
// rewritten, so that **bold** does not read as two italics.
const boldMark = "\uE000"

// toMrkdwn renders the model's Markdown as Slack mrkdwn: headings and
// **bold** become *bold*, *italic* becomes _italic_, ~~strike~~ becomes
// ~strike~, list bullets become •, [label](url) becomes <url|label>, code
// blocks lose their language tag, and everything else is escaped.
func toMrkdwn(md string) string {
	lines := strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	out := make([]string, 0, len(lines))
	inCode := false
	for _, line := range lines {
		if mdFence.MatchString(line) {
			inCode = !inCode
			out = append(out, "```")
			continue
		}
		if inCode {
			out = append(out, escape(line))
			continue
		}
		out = append(out, mrkdwnLine(line))
	}
	if inCode { // an answer cut off inside a code block still renders as one
		out = append(out, "```")
	}
	return strings.Join(out, "\n")
}

// mrkdwnLine converts one line outside code blocks.
func mrkdwnLine(line string) string {
	switch {
	case mdRule.MatchString(line):
		return "───"
	case mdHeading.MatchString(line):
		title := mdHeading.FindStringSubmatch(line)[1]
		title = strings.NewReplacer("**", "", "__", "").Replace(title)
		return "*" + inline(title) + "*"
	case mdBullet.MatchString(line):
		m := mdBullet.FindStringSubmatch(line)
		return m[1] + "• " + inline(m[2])
	case mdOrdered.MatchString(line):
		m := mdOrdered.FindStringSubmatch(line)
		return m[1] + m[2] + ". " + inline(m[3])
	case mdQuote.MatchString(line):
		// A raw ">" at the start of a line is mrkdwn's quote; alone it
		// cannot open a control sequence.
		return "> " + inline(mdQuote.FindStringSubmatch(line)[1])
	}
	return inline(line)
}

// inline converts a line's inline code, links and emphasis.
func inline(s string) string {
	var b strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			b.WriteString(formatted(s))
			break
		}
		j := strings.IndexByte(s[i+1:], '`')
		if j < 0 {
			b.WriteString(formatted(s))
			break
		}
		b.WriteString(formatted(s[:i]))
		b.WriteString("`" + escape(s[i+1:i+1+j]) + "`")
		s = s[i+2+j:]
	}
	return b.String()
}

// formatted converts links and emphasis in text with no code in it.
func formatted(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range mdLinkish.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(emphasis(escape(s[last:m[0]])))
		last = m[1]
		switch {
		case m[2] >= 0: // [label](url)
			b.WriteString(link(s[m[4]:m[5]], s[m[2]:m[3]]))
		case m[6] >= 0: // <url> or Slack's own <url|label>
			label := ""
			if m[8] >= 0 {
				label = s[m[8]:m[9]]
			}
			b.WriteString(link(s[m[6]:m[7]], label))
		default: // a bare URL, without the punctuation that ends a sentence
			u := strings.TrimRight(s[m[0]:m[1]], ".,;:!?")
			b.WriteString(link(u, ""))
			last = m[0] + len(u)
		}
	}
	b.WriteString(emphasis(escape(s[last:])))
	return b.String()
}

// emphasis rewrites Markdown emphasis in escaped text as mrkdwn.
func emphasis(s string) string {
	s = mdBold.ReplaceAllStringFunc(s, func(m string) string { return boldMark + m[2:len(m)-2] + boldMark })
	s = mdItalicStar.ReplaceAllString(s, "_${1}_")
	s = mdStrike.ReplaceAllString(s, "~${1}~")
	return strings.ReplaceAll(s, boldMark, "*")
}

// link builds <url|label> for http, https and mailto URLs; any other
// scheme (javascript:, slack:) is shown as text, not linked.
func link(url, label string) string {
	lower := strings.ToLower(url)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "mailto:") {
		if label == "" {
			return escape(url)
		}
		return escape(label) + " (" + escape(url) + ")"
	}
	// Inside <…> a "|" ends the URL and "<", ">" would end or open a
	// sequence: percent-encode them; "&" is escaped as everywhere.
	safe := strings.NewReplacer("&", "&amp;", "|", "%7C", "<", "%3C", ">", "%3E").Replace(url)
	if label == "" || label == url {
		return "<" + safe + ">"
	}
	return "<" + safe + "|" + escape(label) + ">"
}

// splitMrkdwn cuts mrkdwn into pieces of at most limit bytes, at paragraph
// boundaries where it can, keeping each code block whole or, when one is
// longer than limit, closing and reopening its fence at line boundaries.
func splitMrkdwn(text string, limit int) []string {
	var pieces []string
	var cur strings.Builder
	flush := func() {
		if s := strings.Trim(cur.String(), "\n"); s != "" {
			pieces = append(pieces, s)
		}
		cur.Reset()
	}
	add := func(unit string) {
		if cur.Len() > 0 && cur.Len()+2+len(unit) > limit {
			flush()
		}
		if cur.Len() > 0 {
			cur.WriteString("\n\n")
		}
		cur.WriteString(unit)
	}
	for _, unit := range units(text) {
		if len(unit) <= limit {
			add(unit)
			continue
		}
		flush()
		for _, part := range splitUnit(unit, limit) {
			add(part)
			flush()
		}
	}
	flush()
	return pieces
}

// units splits mrkdwn into paragraphs and whole code blocks.
func units(text string) []string {
	var out []string
	var cur []string
	inCode := false
	for _, line := range strings.Split(text, "\n") {
		fence := line == "```"
		switch {
		case fence && !inCode:
			if len(cur) > 0 {
				out = append(out, strings.Join(cur, "\n"))
			}
			cur = []string{line}
			inCode = true
		case fence && inCode:
			cur = append(cur, line)
			out = append(out, strings.Join(cur, "\n"))
			cur, inCode = nil, false
		case inCode:
			cur = append(cur, line)
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, strings.Join(cur, "\n"))
			}
			cur = nil
		default:
			cur = append(cur, line)
		}
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

// splitUnit cuts one paragraph or code block longer than limit at line
// boundaries (and, for a single huge line, at spaces); a code block's
// pieces each get their own fences.
func splitUnit(unit string, limit int) []string {
	code := strings.HasPrefix(unit, "```\n") && strings.HasSuffix(unit, "\n```")
	body, room := unit, limit
	if code {
		body = strings.TrimSuffix(strings.TrimPrefix(unit, "```\n"), "\n```")
		room = limit - len("```\n\n```")
	}
	var pieces []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		p := cur.String()
		if code {
			p = "```\n" + p + "\n```"
		}
		pieces = append(pieces, p)
		cur.Reset()
	}
	for _, line := range strings.Split(body, "\n") {
		for len(line) > room {
			flush()
			cut := safeCut(line, room)
			cur.WriteString(line[:cut])
			flush()
			line = strings.TrimLeft(line[cut:], " ")
		}
		if cur.Len() > 0 && cur.Len()+1+len(line) > room {
			flush()
		}
		if cur.Len() > 0 {
			cur.WriteString("\n")
		}
		cur.WriteString(line)
	}
	flush()
	return pieces
}

// safeCut finds where to cut s so the first part has at most n bytes: at
// the last space, never inside a UTF-8 character, an entity (&amp;) or a
// link (<url|label>).
func safeCut(s string, n int) int {
	cut := n
	if sp := strings.LastIndexByte(s[:n], ' '); sp > n/2 {
		cut = sp
	}
	if lt := strings.LastIndexByte(s[:cut], '<'); lt > 0 && !strings.Contains(s[lt:cut], ">") {
		cut = lt
	}
	if amp := strings.LastIndexByte(s[:cut], '&'); amp > 0 && !strings.Contains(s[amp:cut], ";") {
		cut = amp
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut == 0 { // nothing safe before n: cut at the character boundary
		cut = n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
	}
	return cut
}

// Slack's own markup in what people send, turned into plain text for the
// model and the command parser.
var slackMarkup = regexp.MustCompile(`<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>`)

// plainText turns a Slack message's text into what the person typed:
// mentions of the bot (botUserID) are dropped, other mentions become
// @name, channels #name, links "label (url)", and entities are decoded.
func plainText(text, botUserID string) string {
	text = slackMarkup.ReplaceAllStringFunc(text, func(m string) string {
		sm := slackMarkup.FindStringSubmatch(m)
		sigil, target, label := sm[1], sm[2], sm[3]
		switch sigil {
		case "@":
			if target == botUserID && botUserID != "" {
				return ""
			}
			if label != "" {
				return "@" + strings.TrimPrefix(label, "@")
			}
			return "@" + target
		case "#":
			if label != "" {
				return "#" + label
			}
			return "#" + target
		case "!":
			if label != "" {
				return strings.TrimPrefix(label, "@")
			}
			name, _, _ := strings.Cut(target, "^")
			return "@" + name
		}
		if label == "" || label == target || "mailto:"+label == target {
			return strings.TrimPrefix(target, "mailto:")
		}
		return label + " (" + target + ")"
	})
	text = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
	return strings.TrimSpace(text)
}
