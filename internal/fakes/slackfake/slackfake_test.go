package slackfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/internal/fakes/slackfake"
)

// Sign gives the signature of Slack's own worked example
// (docs.slack.dev/authentication/verifying-requests-from-slack), and a
// request signed now passes slack-go's verifier.
func TestSign(t *testing.T) {
	const body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar" +
		"&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands" +
		"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	const want = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	if got := slackfake.Sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", []byte(body)); got != want {
		t.Errorf("Sign = %s, want Slack's %s", got, want)
	}
	ev := slackfake.EventCallback("T0001", "Ev1", slackfake.AppMention("U1ANA", "C1", "1764000000.000100", "", "hello"))
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/slack/events", bytes.NewReader(ev))
	slackfake.SignRequest(req, "s3cret", ev, time.Now())
	for _, secret := range []string{"s3cret", "another"} {
		v, err := slack.NewSecretsVerifier(req.Header, secret)
		if err == nil {
			_, _ = v.Write(ev)
			err = v.Ensure()
		}
		if (err == nil) != (secret == "s3cret") {
			t.Errorf("verified with %q: %v", secret, err)
		}
	}
}

// The Web API as slack-go calls it: posts are held and counted per thread
// (ephemeral and deleted ones left out), calls are counted though not
// recorded, and a wrong token is refused.
func TestWebAPIThroughSlackGo(t *testing.T) {
	f := slackfake.Start(slackfake.Config{})
	t.Cleanup(f.Close)
	ctx := context.Background()
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(f.APIURL()))
	post := func(thread, text string) string {
		t.Helper()
		_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(text, false), slack.MsgOptionTS(thread))
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		return ts
	}
	post("100.1", "first")
	post("100.1", "second")
	post("100.2", "other thread")
	gone := post("100.2", "deleted")
	if _, _, err := api.DeleteMessageContext(ctx, "C1", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U1ANA", slack.MsgOptionText("only you", false), slack.MsgOptionTS("100.1")); err != nil {
		t.Fatal(err)
	}
	want := map[slackfake.Thread]int{{Channel: "C1", TS: "100.1"}: 2, {Channel: "C1", TS: "100.2"}: 1}
	if got := f.ReplyCounts(); len(got) != len(want) || got[slackfake.Thread{Channel: "C1", TS: "100.1"}] != 2 ||
		got[slackfake.Thread{Channel: "C1", TS: "100.2"}] != 1 {
		t.Errorf("reply counts %v, want %v", got, want)
	}
	if in := f.InThread("C1", "100.1"); len(in) != 2 || in[0].Text != "first" || in[1].Text != "second" || in[0].TS >= in[1].TS {
		t.Errorf("thread 100.1: %+v, want first then second, with rising ts", in)
	}
	if n := f.Count(slackfake.MethodPostMessage); n != 4 || len(f.Calls(slackfake.MethodPostMessage)) != 0 || f.Mark() != 0 {
		t.Errorf("postMessage counted %d, recorded %d: want 4, none recorded", n, len(f.Calls(slackfake.MethodPostMessage)))
	}
	if got := strings.Join(f.Methods(), " "); got != "chat.delete chat.postEphemeral chat.postMessage" {
		t.Errorf("methods %q", got)
	}
	if _, err := slack.New("xoxb-wrong", slack.OptionAPIURL(f.APIURL())).AuthTestContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token: %v, want invalid_auth", err)
	}
}

// RateLimit answers the first n calls of one method with 429 and
// Retry-After; other methods pass.
func TestRateLimitStorm(t *testing.T) {
	f := slackfake.ForTest(t)
	f.SetFault(slackfake.RateLimit(slackfake.MethodPostMessage, 2, 3*time.Second))
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(f.APIURL()))
	ctx := context.Background()
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Errorf("auth.test during a postMessage storm: %v", err)
	}
	for i := range 3 {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
		var rl *slack.RateLimitedError
		if limited := errors.As(err, &rl) && rl.RetryAfter == 3*time.Second; limited != (i < 2) || (i == 2 && err != nil) {
			t.Errorf("post %d: %v; want the first two rate limited for 3s, then posted", i, err)
		}
	}
	if n := len(f.Calls(slackfake.MethodPostMessage)); n != 3 {
		t.Errorf("recorded %d postMessage calls, want 3", n)
	}
}

// Socket Mode: apps.connections.open hands out the WebSocket; each
// connection is greeted; envelopes are spread over the open connections;
// acks are collected; DropSockets closes them all.
func TestSocketModeConnections(t *testing.T) {
	f := slackfake.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api := slack.New(slackfake.BotToken, slack.OptionAppLevelToken(slackfake.AppToken), slack.OptionAPIURL(f.APIURL()))
	var conns []*websocket.Conn
	for range 2 {
		_, u, err := api.StartSocketModeContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Cleanup(func() { ws.Close() })
		var hello struct{ Type string }
		if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
			t.Fatalf("first message %+v (%v), want hello", hello, err)
		}
		conns = append(conns, ws)
	}
	if n := f.Sockets(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	for i, id := range []string{"e1", "e2", "e3", "e4"} {
		typ := "events_api"
		if i == 3 {
			typ = "slash_commands"
		}
		payload := json.RawMessage(slackfake.EventCallback("T0001", "Ev"+id, slackfake.MessageEvent("U1ANA", "D1", "im", "1.1", "", "hi")))
		if err := f.Send(ctx, slackfake.Envelope{ID: id, Type: typ, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	// Each connection got two, in turn; each acks what it got.
	for i, ws := range conns {
		for j := range 2 {
			var env struct {
				EnvelopeID             string          `json:"envelope_id"`
				Type                   string          `json:"type"`
				AcceptsResponsePayload bool            `json:"accepts_response_payload"`
				Payload                json.RawMessage `json:"payload"`
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if err := ws.ReadJSON(&env); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if want := []string{"e1", "e2", "e3", "e4"}[2*j+i]; env.EnvelopeID != want || env.AcceptsResponsePayload != (want == "e4") ||
				!strings.Contains(string(env.Payload), `"event_id":"Ev`+want+`"`) {
				t.Errorf("connection %d got %+v, want envelope %s", i, env, want)
			}
			if err := ws.WriteJSON(map[string]any{"envelope_id": env.EnvelopeID, "payload": map[string]string{"text": "ok " + env.EnvelopeID}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range []string{"e1", "e2", "e3", "e4"} {
		ack, err := f.WaitAck(ctx, id)
		if err != nil || string(ack.Payload) != `{"text":"ok `+id+`"}` || ack.At.IsZero() || !f.Acked(id) {
			t.Errorf("ack of %s: %s at %v (%v), want the payload sent back", id, ack.Payload, ack.At, err)
		}
	}
	if f.Acked("e9") {
		t.Errorf("an envelope never sent is acked")
	}
	f.DropSockets()
	for i, ws := range conns {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); err == nil {
			t.Errorf("connection %d still open after DropSockets", i)
		}
	}
	if n := f.Sockets(); n != 0 {
		t.Errorf("%d connections after DropSockets, want 0", n)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := f.Send(short, slackfake.Envelope{ID: "e5", Type: "events_api", Payload: map[string]any{}}); err == nil {
		t.Errorf("Send with no connection succeeded")
	}
}

// response_url posts are kept by id; Response waits for one.
func TestResponseURL(t *testing.T) {
	f := slackfake.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		time.Sleep(20 * time.Millisecond)
		resp, err := http.Post(f.ResponseURL("r1"), "application/json", strings.NewReader(`{"text":"late but here"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	body, err := f.Response(ctx, "r1")
	if err != nil || body["text"] != "late but here" {
		t.Errorf("response %v (%v), want the post", body, err)
	}
}

// OnPost sees each message for everyone when it is posted or finished
// (a stream stopped, an update), not ephemeral ones or stream starts, and
// may call the fake.
func TestOnPost(t *testing.T) {
	var (
		mu    sync.Mutex
		saw   []slackfake.Message
		f     *slackfake.Server
		ready = make(chan struct{})
	)
	f = slackfake.Start(slackfake.Config{OnPost: func(m slackfake.Message) {
		<-ready
		_ = f.ReplyCounts() // no deadlock: called without the lock
		mu.Lock()
		saw = append(saw, m)
		mu.Unlock()
	}})
	close(ready)
	seen := func() []slackfake.Message {
		mu.Lock()
		defer mu.Unlock()
		return append([]slackfake.Message(nil), saw...)
	}
	t.Cleanup(f.Close)
	ctx := context.Background()
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(f.APIURL()))
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("posted", false), slack.MsgOptionTS("1.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	_, ts, err := api.StartStreamContext(ctx, "C1", slack.MsgOptionTS("1.2"), slack.MsgOptionMarkdownText("str"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(seen()); n != 1 {
		t.Fatalf("after a post, an ephemeral and a stream start: seen %d, want 1", n)
	}
	if _, _, err := api.StopStreamContext(ctx, "C1", ts, slack.MsgOptionMarkdownText("eamed")); err != nil {
		t.Fatal(err)
	}
	if got := seen(); len(got) != 2 || got[0].Text != "posted" || got[0].ThreadTS != "1.1" || got[1].Markdown != "streamed" || got[1].Streaming {
		t.Errorf("seen %+v, want the post in 1.1 then the finished stream", got)
	}
}
