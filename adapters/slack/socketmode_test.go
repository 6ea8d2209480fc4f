package slack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
)

// Socket Mode runs the same handler: an event is recorded, then acked on
// the socket; Slack's re-send of it is acked and not answered again; a
// slash command is answered in its ack; a button press is acked and
// answered through response_url.
func TestSocketMode(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- e.app.RunSocketMode(ctx, e.inbox) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("RunSocketMode: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("RunSocketMode did not stop")
		}
		e.slack.DropSockets()
	})

	const ts = "1764000020.000100"
	const question = "over the socket: is the failover done?"
	event := json.RawMessage(slackfake.EventCallback("T0001", "Ev20SOCK", slackfake.MessageEvent("U1ANA", "D20ANA", "im", ts, "", question)))
	e.send(t, "env-1", "events_api", event, 0)
	e.waitAck(t, "env-1")
	msgs := e.answers(t, "D20ANA", ts, 1)
	if len(msgs) != 1 || msgs[0].Markdown != defaultAnswer {
		t.Fatalf("answer over Socket Mode: %+v", msgs)
	}
	// Slack re-sends an envelope it thinks was lost: acked, not answered.
	e.send(t, "env-2", "events_api", event, 1)
	e.waitAck(t, "env-2")
	time.Sleep(200 * time.Millisecond)
	if n := e.model.CallsFor(question); n != 1 {
		t.Errorf("model calls %d, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'key' = 'slack:Ev20SOCK'`, bot.TurnKind); n != 1 {
		t.Errorf("turn jobs %d, want 1", n)
	}

	// /opsbot over the socket: the answer is the ack's payload.
	cmd := slashCommandOf(e.slashForm("U1ANA", "C20OPS", "help", "r20"))
	e.send(t, "env-3", "slash_commands", cmd, 0)
	var ack struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(e.waitAck(t, "env-3"), &ack); err != nil || ack.ResponseType != "ephemeral" || !strings.Contains(ack.Text, "Ask me") {
		t.Errorf("slash ack %+v (%v), want the help, ephemeral", ack, err)
	}

	// A button press: acked, then the result through response_url.
	e.send(t, "env-4", "interactive", e.pressPayload("U1ANA", "C20OPS", actionArchive,
		"archive:00000000-0000-0000-0000-000000000000", "r20b"), 0)
	e.waitAck(t, "env-4")
	if r := e.response(t, "r20b"); !strings.Contains(r["text"].(string), "cannot find") {
		t.Errorf("button over the socket: %v", r["text"])
	}
}

// An envelope that cannot be recorded is left unacked, so Slack sends it
// again.
func TestSocketModeLeavesUnrecordedEventsUnacked(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	tried := make(chan string, 1)
	go func() { ended <- e.app.RunSocketMode(ctx, failingInbox{tried: tried}) }()
	t.Cleanup(func() {
		cancel()
		<-ended
		e.slack.DropSockets()
	})
	e.send(t, "env-9", "events_api", json.RawMessage(slackfake.EventCallback("T0001", "Ev21",
		slackfake.MessageEvent("U1ANA", "D21ANA", "im", "1764000021.000100", "", "hello?"))), 0)
	select {
	case key := <-tried:
		if key != "Ev21" {
			t.Errorf("recorded %s, want Ev21", key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event never reached the inbox")
	}
	time.Sleep(300 * time.Millisecond) // room for an ack, if one were sent
	if e.slack.Acked("env-9") {
		t.Errorf("an unrecorded event was acked")
	}
}
