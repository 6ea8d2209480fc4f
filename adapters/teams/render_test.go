package teams

import (
	"testing"
)

func TestTeamsMarkdown(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"mention markup escaped", "ask <at>Ana</at> now", "ask &lt;at&gt;Ana&lt;/at&gt; now"},
		{"broadcast defused", "@everyone and @Channel, not email@team.com", "@\u200beveryone and @\u200bChannel, not email@team.com"},
		{"heading becomes bold", "## Steps ##\n1. drain", "**Steps**\n1. drain"},
		{"blockquote kept", "> note\ntext", "> note\ntext"},
		{"code left alone", "run:\n```\necho <at>x</at> > /tmp/f\n```\n<b>", "run:\n```\necho <at>x</at> > /tmp/f\n```\n&lt;b&gt;"},
		{"unclosed fence", "```\nif a < b", "```\nif a < b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := teamsMarkdown(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithReferences(t *testing.T) {
	if got, want := withReferences("see [2]", 3), "see [2]\n\nSources: [1] [3]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := withReferences("see [1] and [2]", 2); got != "see [1] and [2]" {
		t.Errorf("got %q, want the text unchanged", got)
	}
}

func TestThreadKeys(t *testing.T) {
	tests := []struct {
		name, body          string
		channel, thread, to string
	}{
		{"reply in a chain",
			`{"type":"message","id":"171","channelId":"msteams","serviceUrl":"s","conversation":{"id":"19:c@thread.tacv2;messageid=170","conversationType":"channel","tenantId":"t"}}`,
			"19:c@thread.tacv2", "170", "19:c@thread.tacv2;messageid=170"},
		{"new channel post without the chain suffix",
			`{"type":"message","id":"180","channelId":"msteams","serviceUrl":"s","conversation":{"id":"19:c@thread.tacv2","conversationType":"channel","tenantId":"t"}}`,
			"19:c@thread.tacv2", "180", "19:c@thread.tacv2;messageid=180"},
		{"personal chat",
			`{"type":"message","id":"1:x","channelId":"msteams","serviceUrl":"s","conversation":{"id":"a:1abc","conversationType":"personal","tenantId":"t"}}`,
			"a:1abc", "chat", "a:1abc"},
		{"group chat, tenant from channelData",
			`{"type":"message","id":"1:y","channelId":"msteams","serviceUrl":"s","conversation":{"id":"19:g@thread.v2","conversationType":"groupChat"},"channelData":{"tenant":{"id":"t"}}}`,
			"19:g@thread.v2", "chat", "19:g@thread.v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseActivity([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			k := in.threadKey()
			if k.Tenant != "t" || k.Channel != tt.channel || k.Thread != tt.thread || in.replyConversation() != tt.to {
				t.Errorf("got %+v replying to %s, want channel %s thread %s replying to %s", k, in.replyConversation(), tt.channel, tt.thread, tt.to)
			}
		})
	}
}

func TestQuestionRemovesOnlyTheBotsMention(t *testing.T) {
	in, err := parseActivity([]byte(`{"type":"message","channelId":"msteams","serviceUrl":"s","conversation":{"id":"c"},
		"recipient":{"id":"28:bot"},"text":"<at>opsbot</at>&nbsp;ask <at>Ana Reyes</at>  about   db-02",
		"entities":[{"type":"mention","text":"<at>opsbot</at>","mentioned":{"id":"28:bot"}},
		            {"type":"mention","text":"<at>Ana Reyes</at>","mentioned":{"id":"29:ana"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := in.question(), "ask Ana Reyes about db-02"; got != want || !in.mentioned() {
		t.Errorf("got %q (mentioned %v), want %q and the bot mentioned", got, in.mentioned(), want)
	}
}
