package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/fakes/teamsfake"
	"github.com/apacops/opsbot/internal/testriver"

	"github.com/apacops/opsbot/usage"
)

// A mention in a channel post is answered in that post's reply chain, the
// mention removed from the question; the sources are written out, since
// channels show no citation entities; the model's attempt at mentions is
// defused; a channel message without the mention is not answered.
func TestChannelMessageAnsweredInReplyChain(t *testing.T) {
	h := newHarness(t)
	const root, reply = "1772413323000", "1772413399111"
	act := h.fake.Message(reply, convChannel, channelID+";messageid="+root, "<at>opsbot</at> /var is full on web-sg-03", true, anaAAD)
	if status, body := h.post(t, act, h.token(t)); status != http.StatusOK {
		t.Fatalf("post: %d %s, want 200", status, body)
	}
	msgs := h.waitFor(t, "the answer", 1, isMessage)
	m := msgs[0]
	if want := "/v3/conversations/19:ops-room@thread.tacv2%3Bmessageid=1772413323000/activities/1772413399111"; m.Path != want || m.Method != "POST" {
		t.Errorf("answer went to %s %s, want POST %s", m.Method, m.Path, want)
	}
	text, _ := m.Activity["text"].(string)
	for _, want := range []string{"Vacuum the journal with journalctl [1].", "**Sources**", "[1] Disk full — Free space on /var", "[2] Kafka consumer lag",
		"&lt;at&gt;Ana&lt;/at&gt;", "@\u200beveryone"} {
		if !strings.Contains(text, want) {
			t.Errorf("answer %q lacks %q", text, want)
		}
	}
	if strings.Contains(text, "<at>") || m.Activity["entities"] != nil {
		t.Errorf("answer %q with entities %v: want no mention markup and no entities in a channel", text, m.Activity["entities"])
	}
	if q := h.llm.questions(); len(q) != 1 || q[0] != "/var is full on web-sg-03" {
		t.Errorf("the model was asked %q, want the text without the mention", q)
	}
	var platform, tenant, channel, thread string
	if err := h.db.QueryRow(context.Background(), `SELECT thread_platform, thread_tenant, thread_channel, thread_id FROM conversations`).
		Scan(&platform, &tenant, &channel, &thread); err != nil {
		t.Fatal(err)
	}
	if platform != "teams" || tenant != teamsfake.TenantID || channel != channelID || thread != root {
		t.Errorf("thread key %s/%s/%s/%s, want teams/%s/%s/%s", platform, tenant, channel, thread, teamsfake.TenantID, channelID, root)
	}
	typing := h.waitFor(t, "a typing indicator", 1, func(c teamsfake.Call) bool { return c.Activity["type"] == "typing" })
	if !strings.HasPrefix(typing[0].Path, "/v3/conversations/19:ops-room@thread.tacv2%3Bmessageid=1772413323000/") {
		t.Errorf("typing went to %s, want the reply chain", typing[0].Path)
	}

	// The same chain continues the conversation; a post without the mention is left alone.
	act = h.fake.Message("1772413500222", convChannel, channelID+";messageid="+root, "<at>opsbot</at> and the journal?", true, anaAAD)
	h.post(t, act, h.token(t))
	h.waitFor(t, "the second answer", 2, isMessage)
	quiet := h.fake.Message("1772413600333", convChannel, channelID+";messageid="+root, "thanks all", false, benAAD)
	if status, _ := h.post(t, quiet, h.token(t)); status != http.StatusOK {
		t.Errorf("unmentioned post: %d, want 200", status)
	}
	if n := h.count(t, `SELECT count(*) FROM conversations`); n != 1 {
		t.Errorf("%d conversations, want the chain's one", n)
	}
	if n := h.count(t, `SELECT count(*) FROM river_job`); n != 2 {
		t.Errorf("%d jobs, want 2 (the unmentioned post makes none)", n)
	}
}

// In a 1:1 chat the answer streams (informative update, streaming chunks
// carrying all text so far, final message), is marked AI-generated with
// its citations, offers feedback buttons, and the feedback is stored.
func TestPersonalChatAnswerStreamsWithCitations(t *testing.T) {
	h := newHarness(t)
	act := h.fake.Message("1:msg-1", convPersonal, chatID, "how do I free space on /var?", false, anaAAD)
	if status, body := h.post(t, act, h.token(t)); status != http.StatusOK {
		t.Fatalf("post: %d %s", status, body)
	}
	final := h.waitFor(t, "the final message", 1, isMessage)[0]
	var stream []teamsfake.Call
	for _, c := range h.fake.Activities() {
		if c.Activity["type"] == "typing" {
			stream = append(stream, c)
		}
	}
	if len(stream) < 2 {
		t.Fatalf("got %d typing activities, want the informative update and at least one chunk", len(stream))
	}
	info := entityOf(stream[0].Activity, "streaminfo")
	if stream[0].Activity["text"] != "Searching runbooks…" || info["streamType"] != "informative" || info["streamSequence"] != 1.0 {
		t.Errorf("first update %v, want the informative one with sequence 1", stream[0].Activity)
	}
	streamID := "1:act-1" // the fake's id of the first activity
	prev := ""
	for i, c := range stream[1:] {
		e := entityOf(c.Activity, "streaminfo")
		text, _ := c.Activity["text"].(string)
		if e["streamId"] != streamID || e["streamType"] != "streaming" || e["streamSequence"] != float64(i+2) {
			t.Errorf("chunk %d: %v, want stream %s, streaming, sequence %d", i, e, streamID, i+2)
		}
		if !strings.HasPrefix(text, prev) || text == prev {
			t.Errorf("chunk %d %q does not extend the text so far %q", i, text, prev)
		}
		prev = text
	}
	if e := entityOf(final.Activity, "streaminfo"); e["streamId"] != streamID || e["streamType"] != "final" {
		t.Errorf("final message streaminfo %v, want stream %s final", e, streamID)
	}
	if want := "/v3/conversations/a:1personal-chat-with-ana/activities/1:msg-1"; final.Path != want {
		t.Errorf("final message went to %s, want %s", final.Path, want)
	}
	ai := entityOf(final.Activity, "https://schema.org/Message")
	if ai == nil || fmt.Sprint(ai["additionalType"]) != "[AIGeneratedContent]" {
		t.Fatalf("final message entities %v, want the AI-generated message entity", final.Activity["entities"])
	}
	claims, _ := ai["citation"].([]any)
	if len(claims) != 2 {
		t.Fatalf("citations %v, want 2", ai["citation"])
	}
	c1 := claims[0].(map[string]any)
	app := c1["appearance"].(map[string]any)
	if c1["position"] != 1.0 || app["name"] != "Disk full — Free space on /var" || app["abstract"] != "Vacuum the journal: journalctl --vacuum-size=500M" {
		t.Errorf("citation 1 = %v, want the disk-full section at position 1", c1)
	}
	text, _ := final.Activity["text"].(string)
	if !strings.Contains(text, "journalctl [1]") || !strings.Contains(text, "Sources: [2]") {
		t.Errorf("final text %q, want [1] as the model wrote it and [2] referenced", text)
	}
	if cd, _ := final.Activity["channelData"].(map[string]any); cd["feedbackLoopEnabled"] != true {
		t.Errorf("channelData %v, want the feedback buttons", final.Activity["channelData"])
	}

	// Thumbs down on the answer: Teams names the message by its activity id.
	testWaitPosted(t, h)
	fb := h.fake.Message("1:fb-1", convPersonal, chatID, "", false, anaAAD)
	fb["type"], fb["name"], fb["replyToId"] = "invoke", "message/submitAction", "1:act-"+fmt.Sprint(len(h.fake.Activities()))
	fb["value"] = map[string]any{"actionName": "feedback", "actionValue": map[string]any{"reaction": "dislike", "feedback": `{"feedbackText":"wrong host"}`}}
	if status, body := h.post(t, fb, h.token(t)); status != http.StatusOK {
		t.Fatalf("feedback: %d %s", status, body)
	}
	if n := h.count(t, `SELECT count(*) FROM message_feedback f JOIN messages m ON m.id = f.message_id
		WHERE f.vote = -1 AND m.role = 'assistant' AND f.user_id = $1`, h.user(t, anaAAD).ID); n != 1 {
		t.Errorf("%d down votes stored on the answer, want 1", n)
	}
}

// testWaitPosted waits until the turn job recorded the answer's activity id.
func testWaitPosted(t *testing.T, h *harness) {
	t.Helper()
	testriver.WaitFor(t, "the answer's activity id recorded", func() bool {
		return h.count(t, `SELECT count(*) FROM messages WHERE role = 'assistant' AND platform_message_id IS NOT NULL`) == 1
	})
}

// entityOf returns the activity's entity of the given type.
func entityOf(act map[string]any, typ string) map[string]any {
	ents, _ := act["entities"].([]any)
	for _, e := range ents {
		if m, ok := e.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

// One activity delivered five times at once, and again later, is answered
// once.
func TestRedeliveredActivityAnsweredOnce(t *testing.T) {
	h := newHarness(t)
	act := h.fake.Message("1:dup-1", convPersonal, chatID, "is the VPN down?", false, anaAAD)
	tok := h.token(t)
	var wg sync.WaitGroup
	statuses := make(chan int, 5)
	for range 5 {
		wg.Go(func() {
			status, _ := h.post(t, act, tok)
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a delivery got %d, want 200 for every one", s)
		}
	}
	h.waitFor(t, "the answer", 1, isMessage)
	testWaitPosted(t, h)
	if status, _ := h.post(t, act, tok); status != http.StatusOK {
		t.Errorf("late redelivery: %d, want 200", status)
	}
	time.Sleep(300 * time.Millisecond) // room for a second answer, were there one
	if n := len(h.waitFor(t, "answers", 1, isMessage)); n != 1 {
		t.Errorf("%d answers posted, want 1", n)
	}
	if n := h.count(t, `SELECT count(*) FROM river_job`); n != 1 {
		t.Errorf("%d jobs, want 1", n)
	}
	if q := h.llm.questions(); len(q) != 1 {
		t.Errorf("%d model calls, want 1", len(q))
	}
}

// "usage 7d" answers with an Adaptive Card of the caller's own figures.
func TestUsageCommandAnswersWithCard(t *testing.T) {
	h := newHarness(t)
	ana := h.user(t, anaAAD)
	ben := h.user(t, benAAD)
	ctx := context.Background()
	for _, e := range []usage.Event{
		{UserID: ana.ID, Source: "teams", Model: "gpt-4o-mini", PromptTokens: 1000, CompletionTokens: 250, CostMicroUSD: 1_250_000, PriceVersion: "t"},
		{UserID: ana.ID, Source: "slack", Model: "gpt-4o", PromptTokens: 200, CompletionTokens: 50, CostMicroUSD: 250_000, PriceVersion: "t"},
		{UserID: ben.ID, Source: "teams", Model: "gpt-4o", PromptTokens: 9000, CompletionTokens: 900, CostMicroUSD: 9_000_000, PriceVersion: "t"},
	} {
		if err := usage.Record(ctx, h.db, e); err != nil {
			t.Fatal(err)
		}
	}
	act := h.fake.Message("1:usage-1", convPersonal, chatID, "Usage 7d", false, anaAAD)
	if status, body := h.post(t, act, h.token(t)); status != http.StatusOK {
		t.Fatalf("post: %d %s", status, body)
	}
	m := h.waitFor(t, "the usage card", 1, isMessage)[0]
	card := cardOf(t, m.Activity)
	facts := factsOf(card)
	// Ana's two events: 1,200 prompt + 300 completion tokens, $1.25 + $0.25.
	want := map[string]string{"Cost": "$1.50", "Tokens": "1,500", "Prompt": "1,200", "Completion": "300", "Replies": "2",
		"gpt-4o-mini": "$1.25", "gpt-4o": "$0.25"}
	for k, v := range want {
		if facts[k] != v {
			t.Errorf("card fact %s = %q, want %q (card facts %v)", k, facts[k], v, facts)
		}
	}
	if b, _ := json.Marshal(card); !strings.Contains(string(b), "Your usage, last 7 days") {
		t.Errorf("card %s, want the 7-day title", b)
	}
	if len(h.llm.questions()) != 0 {
		t.Error("a command went to the model")
	}
}

func cardOf(t *testing.T, act map[string]any) map[string]any {
	t.Helper()
	atts, _ := act["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("activity %v, want one attachment", act)
	}
	a := atts[0].(map[string]any)
	if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("attachment type %v, want an Adaptive Card", a["contentType"])
	}
	return a["content"].(map[string]any)
}

// factsOf collects every fact of a card's fact sets, and the data of
// its submit actions under "submit".
func factsOf(card map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "FactSet" {
				for _, f := range x["facts"].([]any) {
					f := f.(map[string]any)
					out[f["title"].(string)] = f["value"].(string)
				}
			}
			if x["type"] == "Action.Submit" {
				out["submit:"+x["title"].(string)] = x["data"].(map[string]any)["opsbot"].(string)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(card)
	return out
}

// archive answers with a card holding Undo; pressing Undo (an
// Action.Submit, which comes back as a message activity) restores the
// conversation and replaces the card. The same through an
// adaptiveCard/action invoke answers with the card at once.
func TestArchiveAndUndo(t *testing.T) {
	h := newHarness(t)
	tok := h.token(t)
	h.post(t, h.fake.Message("1:q-1", convPersonal, chatID, "disk full on web-sg-03", false, anaAAD), tok)
	h.waitFor(t, "the answer", 1, isMessage)
	testWaitPosted(t, h)
	var convID uuid.UUID
	if err := h.db.QueryRow(context.Background(), `SELECT id FROM conversations`).Scan(&convID); err != nil {
		t.Fatal(err)
	}

	h.post(t, h.fake.Message("1:arch-1", convPersonal, chatID, "archive", false, anaAAD), tok)
	cardMsg := h.waitFor(t, "the archive card", 2, isMessage)[1]
	facts := factsOf(cardOf(t, cardMsg.Activity))
	if facts["submit:Undo"] != "unarchive:"+convID.String() {
		t.Fatalf("archive card actions %v, want Undo for %s", facts, convID)
	}
	if n := h.count(t, `SELECT count(*) FROM conversations WHERE archived_at IS NOT NULL`); n != 1 {
		t.Fatalf("%d archived conversations, want 1", n)
	}

	cardID := "1:act-" + fmt.Sprint(len(h.fake.Activities()))
	press := h.fake.Message("1:press-1", convPersonal, chatID, "", false, anaAAD)
	press["replyToId"] = cardID
	press["value"] = map[string]any{"opsbot": facts["submit:Undo"]}
	if status, body := h.post(t, press, tok); status != http.StatusOK {
		t.Fatalf("Undo: %d %s", status, body)
	}
	if n := h.count(t, `SELECT count(*) FROM conversations WHERE archived_at IS NULL`); n != 1 {
		t.Errorf("%d open conversations after Undo, want 1", n)
	}
	calls := h.fake.Activities()
	last := calls[len(calls)-1]
	if last.Method != http.MethodPut || last.Path != "/v3/conversations/a:1personal-chat-with-ana/activities/"+cardID {
		t.Errorf("Undo's result went %s %s, want the card replaced (PUT on %s)", last.Method, last.Path, cardID)
	}
	if text, _ := last.Activity["text"].(string); !strings.HasPrefix(text, "Restored ") {
		t.Errorf("Undo's result %q, want Restored", text)
	}

	// Someone else pressing Undo on Ana's card restores nothing of theirs.
	h.post(t, h.fake.Message("1:arch-2", convPersonal, chatID, "archive", false, anaAAD), tok)
	h.waitFor(t, "the second archive card", 3, isMessage)
	other := h.fake.Message("1:press-2", convPersonal, chatID, "", false, benAAD)
	other["type"], other["name"] = "invoke", "adaptiveCard/action"
	other["value"] = map[string]any{"action": map[string]any{"type": "Action.Execute", "data": map[string]any{"opsbot": facts["submit:Undo"]}}}
	status, body := h.post(t, other, tok)
	if status != http.StatusOK || !strings.Contains(body, "cannot find that conversation") {
		t.Errorf("Ben's Undo: %d %s, want a card saying it is not his", status, body)
	}
	// Ana's own invoke gets the restored card in the response.
	other["from"] = map[string]any{"id": "29:" + anaAAD, "name": "Ana Reyes", "aadObjectId": anaAAD}
	other["id"] = "1:press-3"
	status, body = h.post(t, other, tok)
	if status != http.StatusOK || !strings.Contains(body, `"statusCode":200`) || !strings.Contains(body, "Restored") {
		t.Errorf("Ana's Undo invoke: %d %s, want a 200 invoke response with the restored card", status, body)
	}
	if n := h.count(t, `SELECT count(*) FROM conversations WHERE archived_at IS NULL`); n != 1 {
		t.Errorf("%d open conversations after the second Undo, want 1", n)
	}
}
