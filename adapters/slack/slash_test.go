package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/testriver"
)

// blockTexts collects every text of a Block Kit answer (sections, their
// fields, context elements, button labels and values), for assertions.
func blockTexts(t *testing.T, blocks any) []string {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && (k == "text" || k == "value") {
					out = append(out, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	walk(v)
	return out
}

func hasText(texts []string, want string) bool {
	for _, s := range texts {
		if s == want {
			return true
		}
	}
	return false
}

// /opsbot usage answers with the caller's own figures, counted in their
// time zone from users.info.
func TestSlashUsageShowsTheCallersRealNumbers(t *testing.T) {
	e := testEnv(t)
	const user = "U8USAGE"
	e.slack.AddPerson(user, "Priya Nair", "Asia/Kolkata")
	for i, ts := range []string{"1764000008.000100", "1764000008.000200"} {
		e.deliver(t, "Ev8USAGE"+string(rune('A'+i)), slackfake.MessageEvent(user, "D8PRIYA", "im", ts, "", "question number "+ts), 0)
		e.answers(t, "D8PRIYA", ts, 1)
	}
	out := e.slash(t, user, "C8OPS", "Usage 7D", "r8")
	if out["response_type"] != "ephemeral" {
		t.Errorf("response_type %v, want ephemeral", out["response_type"])
	}
	texts := blockTexts(t, out["blocks"])
	// Two model calls of 1,200 + 300 tokens at 360 micro-USD each.
	for _, want := range []string{"*Cost*\n$0.00072", "*Tokens*\n3,000", "*In / out*\n2,400 / 600", "*Replies*\n2"} {
		if !hasText(texts, want) {
			t.Errorf("usage answer %q lacks field %q", texts, want)
		}
	}
	if !strings.Contains(strings.Join(texts, "\n"), "last 7 days") || !strings.Contains(strings.Join(texts, "\n"), "Asia/Kolkata") {
		t.Errorf("usage answer %q: want the last 7 days in Asia/Kolkata", texts)
	}
	// usage team is for admins only.
	if out := e.slash(t, user, "C8OPS", "usage team", "r8b"); !strings.Contains(out["text"].(string), "for admins") {
		t.Errorf("usage team for a non-admin: %v, want a refusal", out["text"])
	}
}

// /opsbot archive offers the caller's conversations of the channel as
// buttons; pressing one archives it, and Undo brings it back.
func TestArchiveAndUndoRoundTrip(t *testing.T) {
	e := testEnv(t)
	const root = "1764000009.000100"
	e.mentionAnswered(t, "Ev9ARCH", "C9ARCH", root, "dns propagation is slow")
	var convID uuid.UUID
	if err := e.db.QueryRow(context.Background(), `SELECT id FROM conversations WHERE thread_id = $1`, root).Scan(&convID); err != nil {
		t.Fatal(err)
	}

	out := e.slash(t, "U1ANA", "C9ARCH", "archive", "r9")
	archive := commands.Action{Kind: commands.ActArchive, ID: convID}.Value()
	if texts := blockTexts(t, out["blocks"]); !hasText(texts, archive) {
		t.Fatalf("archive offers %q, want a button with value %s", texts, archive)
	}
	if resp := e.press(t, "U1ANA", "C9ARCH", actionArchive, archive, "r9a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("press Archive: got %d, want 200", resp.StatusCode)
	}
	last := e.response(t, "r9a")
	undo := commands.Action{Kind: commands.ActUnarchive, ID: convID}.Value()
	if last["replace_original"] != true || !hasText(blockTexts(t, last["blocks"]), undo) {
		t.Fatalf("after Archive: response %v, want the list replaced by a confirmation with Undo", last)
	}
	if n := e.count(t, `SELECT count(*) FROM conversations WHERE id = $1 AND archived_at IS NOT NULL`, convID); n != 1 {
		t.Errorf("conversation not archived")
	}
	e.press(t, "U1ANA", "C9ARCH", actionUndo, undo, "r9b")
	if last := e.response(t, "r9b"); !strings.Contains(last["text"].(string), "Restored") {
		t.Errorf("after Undo: response %v, want Restored", last)
	}
	if n := e.count(t, `SELECT count(*) FROM conversations WHERE id = $1 AND archived_at IS NULL`, convID); n != 1 {
		t.Errorf("conversation still archived after Undo")
	}
	// Someone else pressing the same button archives nothing.
	e.press(t, "U2RAVI", "C9ARCH", actionArchive, archive, "r9c")
	if last := e.response(t, "r9c"); !strings.Contains(last["text"].(string), "cannot find") {
		t.Errorf("someone else's archive: %v, want a refusal", last["text"])
	}
	if n := e.count(t, `SELECT count(*) FROM conversations WHERE id = $1 AND archived_at IS NULL`, convID); n != 1 {
		t.Errorf("another person archived Ana's conversation")
	}
}

// "@opsbot archive" inside a thread archives that thread's conversation.
func TestMentionArchiveInThread(t *testing.T) {
	e := testEnv(t)
	const root = "1764000010.000100"
	e.mentionAnswered(t, "Ev10A", "C10ARCH", root, "payment gateway 5xx")
	mark := e.slack.Mark()
	e.deliver(t, "Ev10B", slackfake.AppMention("U1ANA", "C10ARCH", "1764000010.000200", root, "archive this"), 0)
	testriver.WaitFor(t, "the archive answer", func() bool { return len(e.slack.CallsAfter(mark, methodPostEphemeral)) == 1 })
	if n := e.count(t, `SELECT count(*) FROM conversations WHERE thread_id = $1 AND archived_at IS NOT NULL`, root); n != 1 {
		t.Errorf("the thread's conversation is not archived")
	}
	if blocks := e.slack.CallsAfter(mark, methodPostEphemeral)[0].Form.Get("blocks"); !strings.Contains(blocks, `"action_id":"opsbot_undo"`) {
		t.Errorf("archive answer %s: want an Undo button", blocks)
	}
}

// 👍/👎 under an answer store the vote; 👎 puts the question on the gap
// report. The answer itself stays as it is.
func TestVoteButtons(t *testing.T) {
	e := testEnv(t)
	const root = "1764000011.000100"
	e.mentionAnswered(t, "Ev11", "C11VOTE", root, "kafka consumer lag on orders")
	answerID, _ := threadAnswer(t, e, "C11VOTE", root)
	down := commands.Action{Kind: commands.ActVoteDown, ID: uuid.MustParse(answerID)}.Value()
	e.press(t, "U2RAVI", "C11VOTE", actionVoteDown, down, "r11")
	last := e.response(t, "r11")
	if last["replace_original"] != false || last["response_type"] != "ephemeral" {
		t.Errorf("vote response %v: want an ephemeral thanks that leaves the answer", last)
	}
	if n := e.count(t, `SELECT count(*) FROM message_feedback WHERE message_id = $1 AND vote = -1`, answerID); n != 1 {
		t.Errorf("stored down votes %d, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM knowledge_gaps WHERE question = 'kafka consumer lag on orders'`); n != 1 {
		t.Errorf("gap report entries %d, want 1", n)
	}
}

// slowCommands takes longer than Slack waits.
type slowCommands struct{ Commands }

func (s slowCommands) RunText(ctx context.Context, c commands.Caller, text string) (commands.Result, error) {
	select {
	case <-time.After(slashDeadline + 300*time.Millisecond):
	case <-ctx.Done():
		return commands.Result{}, ctx.Err()
	}
	return commands.Result{Command: commands.CmdHelp, Text: "late but here"}, nil
}

// A command slower than Slack's limit is acked empty at once and answers
// through response_url.
func TestSlowSlashCommandAnswersThroughResponseURL(t *testing.T) {
	e := testEnv(t)
	cfg := e.app.cfg
	cfg.Commands = slowCommands{cfg.Commands}
	app, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &handler{app: app, inbox: e.inbox}
	start := time.Now()
	form := e.slashForm("U1ANA", "C12SLOW", "help", "r12")
	resp, follow := h.slash(context.Background(), slashCommandOf(form))
	if resp != nil || follow == nil || time.Since(start) > slashDeadline+time.Second {
		t.Fatalf("got an answer %v after %s, want an empty ack within %s", resp, time.Since(start), slashDeadline)
	}
	follow()
	if last := e.response(t, "r12"); last["text"] != "late but here" {
		t.Errorf("late answer %v, want it through response_url", last)
	}
}

// handover is for the whole channel; everything else answers the caller
// alone.
func TestSlashHandoverPostsInTheChannel(t *testing.T) {
	e := testEnv(t)
	e.mentionAnswered(t, "Ev23", "C23SHIFT", "1764000023.000100", "tls cert on api-sg expires")
	out := e.slash(t, "U2RAVI", "C23SHIFT", "handover 12h", "r23")
	if out["response_type"] != "in_channel" || !strings.Contains(out["text"].(string), "Handover for the last 12h: 1 conversations") {
		t.Errorf("handover answer %v, want it in the channel, listing the one conversation", out)
	}
	if out := e.slash(t, "U2RAVI", "C23SHIFT", "token", "r23b"); out["response_type"] != "ephemeral" ||
		!strings.Contains(strings.Join(blockTexts(t, out["blocks"]), " "), "shown only this once") {
		t.Errorf("token answer %v, want it for the caller alone", out)
	}
}
