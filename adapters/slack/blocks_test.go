package slack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
)

// An answer ends with the budget notice, the runbook sources and the
// vote buttons, all escaped.
func TestAnswerTail(t *testing.T) {
	id := uuid.MustParse("11111111-2222-3333-4444-555555555555")
	msgs := answerMessages(bot.Reply{Text: "Free space <now>.", Notice: "You have used 80% of your <budget>.",
		AssistantMessage: conversations.Message{ID: id},
		Citations:        []bot.Citation{{Document: "Disk full", Section: "Clearing /var"}, {Document: "On-call & escalation", Section: "On-call & escalation"}}})
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	raw, err := json.Marshal(msgs[0].blocks)
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	for _, want := range []string{
		`"text":"Free space \u0026lt;now\u0026gt;."`,
		`:warning: You have used 80% of your \u0026lt;budget\u0026gt;.`,
		`Sources: [1] *Disk full* › Clearing /var · [2] *On-call \u0026amp; escalation*"`,
		`"value":"vote_up:` + id.String() + `"`, `"value":"vote_down:` + id.String() + `"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("blocks %s\nlack %s", got, want)
		}
	}
	if msgs[0].text != "Free space &lt;now&gt;." {
		t.Errorf("notification text %q, want it escaped", msgs[0].text)
	}
	// A failure notice or a reply with nothing stored has no buttons.
	if tail := tailBlocks(bot.Reply{Text: "x"}); len(tail) != 0 {
		t.Errorf("tail of an unstored reply: %d blocks, want none", len(tail))
	}
}
