package slack

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apacops/opsbot/internal/fakes/slackfake"
)

func TestToMrkdwn(t *testing.T) {
	tests := []struct{ name, md, want string }{
		{"bold and italic", "**bold**, __also bold__, *italic* and _italic_", "*bold*, *also bold*, _italic_ and _italic_"},
		{"strike", "~~gone~~", "~gone~"},
		{"heading", "### Check **the** disk ###", "*Check the disk*"},
		{"bullets", "- one\n* two\n  + nested", "• one\n• two\n  • nested"},
		{"ordered", "1. first\n2) second", "1. first\n2. second"},
		{"quote", "> careful & slow", "> careful &amp; slow"},
		{"rule", "---", "───"},
		{"link", "see [the runbook](https://wiki.example.com/a?b=1&c=2)", "see <https://wiki.example.com/a?b=1&amp;c=2|the runbook>"},
		{"autolink", "<https://status.example.com>", "<https://status.example.com>"},
		{"bare url", "open https://grafana.example.com/d/x.", "open <https://grafana.example.com/d/x>."},
		{"mailto", "[mail us](mailto:ops@example.com)", "<mailto:ops@example.com|mail us>"},
		{"other scheme", "[app](slack://open)", "app (slack://open)"},
		{"inline code untouched", "run `rm -rf /tmp/*_old <x>` **now**", "run `rm -rf /tmp/*_old &lt;x&gt;` *now*"},
		{"code block", "```bash\necho <!channel> **x**\n```", "```\necho &lt;!channel&gt; **x**\n```"},
		{"unclosed code block", "```\nls", "```\nls\n```"},
		{"arithmetic is not italic", "2 * 3 * 4", "2 * 3 * 4"},
		{"mentions neutralised", "<!here> <@U1> <!subteam^S1|@ops> <#C1>", "&lt;!here&gt; &lt;@U1&gt; &lt;!subteam^S1|@ops&gt; &lt;#C1&gt;"},
		{"link label escaped", "[<!channel>](https://a.example.com)", "<https://a.example.com|&lt;!channel&gt;>"},
		{"url cannot break out", "[x](https://a.example.com/|<!channel>)", "<https://a.example.com/%7C%3C!channel%3E|x>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toMrkdwn(tt.md); got != tt.want {
				t.Errorf("toMrkdwn(%q)\n got  %q\n want %q", tt.md, got, tt.want)
			}
		})
	}
}

func TestSplitMrkdwn(t *testing.T) {
	para := func(c string, n int) string { return strings.Repeat(c, n) }
	code := "```\n" + strings.Repeat("line of code\n", 30) + "```"
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"fits", "a\n\nb", 100, []string{"a\n\nb"}},
		{"paragraphs", para("a", 60) + "\n\n" + para("b", 60), 100, []string{para("a", 60), para("b", 60)}},
		{"code block kept whole", "intro\n\n" + code, 500, []string{"intro\n\n" + code}},
		{"code block moved whole", para("a", 80) + "\n\n" + code, 400, []string{para("a", 80), code}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitMrkdwn(tt.text, tt.limit)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// Whatever the input, pieces fit, code fences stay balanced, and
	// nothing is cut inside a character, an entity or a link.
	long := code + "\n\n" + strings.Repeat("word &amp; <https://example.com/x|link> ünïcödé ", 60) + "\n\n" + strings.Repeat("x", 700)
	for _, limit := range []int{120, 200, 333} {
		pieces := splitMrkdwn(long, limit)
		for _, p := range pieces {
			if len(p) > limit {
				t.Errorf("limit %d: piece of %d bytes", limit, len(p))
			}
			if !utf8.ValidString(p) || strings.Count(p, "```")%2 != 0 {
				t.Errorf("limit %d: broken piece %q", limit, p)
			}
			if strings.Count(p, "<") != strings.Count(p, ">") || strings.Count(p, "&") != strings.Count(p, ";") {
				t.Errorf("limit %d: a link or entity was cut: %q", limit, p)
			}
		}
		squeeze := func(s string) string { return strings.Join(strings.Fields(strings.ReplaceAll(s, "```", "")), "") }
		if squeeze(strings.Join(pieces, "")) != squeeze(long) {
			t.Errorf("limit %d: text lost or changed in splitting", limit)
		}
	}
}

func TestPlainText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<@U0BOT> usage 7d", "usage 7d"},
		{"<@U0BOT>", ""},
		{"ask <@U2|ravi> about <#C1|ops-sg>", "ask @ravi about #ops-sg"},
		{"<!here> is <https://x.example.com|the link> up? <https://y.example.com>", "@here is the link (https://x.example.com) up? https://y.example.com"},
		{"a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"},
		{"<mailto:ops@example.com|ops@example.com>", "ops@example.com"},
		{"<!subteam^S1|@oncall> help", "oncall help"},
	}
	for _, tt := range tests {
		if got := plainText(tt.in, slackfake.BotUserID); got != tt.want {
			t.Errorf("plainText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
