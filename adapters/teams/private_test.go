package teams

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
)

// Answers that hold the caller's own data (list, usage, usage team) are
// not posted where others can read them: in a channel or a group chat the
// bot says the answer is private and where to ask; in a 1:1 chat it
// answers.
func TestPersonalAnswersOnlyInPersonalChat(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ana := h.user(t, anaAAD)
	if _, err := h.db.Exec(ctx, `UPDATE users SET role = 'admin' WHERE id = $1`, ana.ID); err != nil {
		t.Fatal(err)
	}
	// A conversation from another surface and some spend: what must not leak.
	const secretTitle = "rotate the db-sg-02 replication password"
	if _, err := conversations.NewStore(h.db).Create(ctx, conversations.NewConversation{OwnerID: ana.ID, Title: secretTitle,
		Source: conversations.SourceSlack}); err != nil {
		t.Fatal(err)
	}
	if err := usage.Record(ctx, h.db, usage.Event{UserID: ana.ID, Source: "slack", Model: "gpt-4o", PromptTokens: 4000,
		CompletionTokens: 1000, CostMicroUSD: 7_250_000, PriceVersion: "t"}); err != nil {
		t.Fatal(err)
	}
	const groupID = "19:ops-huddle@thread.v2"
	tok := h.token(t)
	shared := []struct {
		id, convType, convID, text string
		mention                    bool
	}{
		{"1:g-list", convGroupChat, groupID, "list", false},
		{"1:g-usage", convGroupChat, groupID, "usage 30d", false},
		{"1:g-team", convGroupChat, groupID, "usage team", false},
		{"1772413323001", convChannel, channelID, "<at>opsbot</at> list", true},
		{"1772413323002", convChannel, channelID, "<at>opsbot</at> usage", true},
		{"1772413323003", convChannel, channelID, "<at>opsbot</at> usage team 7d", true},
	}
	for _, s := range shared {
		if status, body := h.post(t, h.fake.Message(s.id, s.convType, s.convID, s.text, s.mention, anaAAD), tok); status != http.StatusOK {
			t.Fatalf("%s: %d %s", s.text, status, body)
		}
	}
	msgs := h.waitFor(t, "the answers in shared places", len(shared), isMessage)
	for _, m := range msgs {
		raw, _ := json.Marshal(m.Activity)
		if m.Activity["text"] != privateNotice || m.Activity["attachments"] != nil {
			t.Errorf("answer at %s is %s, want only %q", m.Path, raw, privateNotice)
		}
		for _, leak := range []string{secretTitle, "7.25", "Ana Reyes"} {
			if strings.Contains(string(raw), leak) {
				t.Errorf("answer at %s shows %q to everyone there: %s", m.Path, leak, raw)
			}
		}
	}

	// In the 1:1 chat the same commands answer.
	h.post(t, h.fake.Message("1:p-list", convPersonal, chatID, "list", false, anaAAD), tok)
	h.post(t, h.fake.Message("1:p-team", convPersonal, chatID, "usage team", false, anaAAD), tok)
	msgs = h.waitFor(t, "the answers in the 1:1 chat", len(shared)+2, isMessage)
	for _, m := range msgs {
		raw, _ := json.Marshal(m.Activity)
		switch {
		case strings.HasSuffix(m.Path, "/1:p-list"):
			if text, _ := m.Activity["text"].(string); !strings.Contains(text, secretTitle) {
				t.Errorf("list in the 1:1 chat: %s, want the caller's conversations", raw)
			}
		case strings.HasSuffix(m.Path, "/1:p-team"):
			if facts := factsOf(cardOf(t, m.Activity)); facts["Cost"] != "$7.25" || facts["Ana Reyes"] != "$7.25" {
				t.Errorf("usage team in the 1:1 chat: facts %v, want $7.25 in all, Ana Reyes $7.25", facts)
			}
		}
	}
}
