package slack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Test tokens. The fake refuses any other.
const (
	testBotToken = "xoxb-test-token"
	testAppToken = "xapp-test-token"
	testBotUser  = "U0BOT"
	testBotID    = "B0BOT"
)

// fakeMsg is a message in the fake workspace.
type fakeMsg struct {
	Channel   string
	TS        string
	ThreadTS  string
	Text      string
	Markdown  string // streamed markdown_text
	Blocks    string // the blocks JSON as posted
	Metadata  string // the metadata JSON as posted
	Streaming bool
	Deleted   bool
	Ephemeral bool
	User      string // ephemeral: who sees it
}

// apiCall is one request the fake received.
type apiCall struct {
	Method string
	Form   url.Values
	At     time.Time
}

// fakeSlack speaks the Slack Web API as slack-go calls it (form posts to
// /api/<method>, JSON answers with "ok"), holds the messages posted, serves
// response_url posts at /response/<id>, and runs a Socket Mode server:
// apps.connections.open hands out a ws:// URL on 127.0.0.1 whose WebSocket
// sends envelopes and collects acks.
type fakeSlack struct {
	srv *httptest.Server

	mu        sync.Mutex
	calls     []apiCall
	msgs      []*fakeMsg
	responses []map[string]any // response_url posts, in order
	nextTS    int
	people    map[string]map[string]any // users.info answers by user id
	noStream  map[string]bool           // channels where chat.startStream fails, as in a workspace without it
	// fail, when set, may answer a call instead (a 429); it returns
	// whether it did.
	fail func(method string, w http.ResponseWriter) bool

	sock   *websocket.Conn
	sockMu sync.Mutex // one writer at a time
	acks   map[string]json.RawMessage
	acked  chan string
}

func newFakeSlack() *fakeSlack {
	f := &fakeSlack{nextTS: 1, people: map[string]map[string]any{}, noStream: map[string]bool{},
		acks: map[string]json.RawMessage{}, acked: make(chan string, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", f.serveAPI)
	mux.HandleFunc("/response/{id}", f.serveResponse)
	mux.HandleFunc("/link", f.serveSocket)
	f.srv = httptest.NewServer(mux)
	return f
}

// newTestFakeSlack is a fake of the test's own, closed at its end.
func newTestFakeSlack(t testing.TB) *fakeSlack {
	f := newFakeSlack()
	t.Cleanup(f.close)
	return f
}

func (f *fakeSlack) close() {
	f.dropSocket()
	f.srv.Close()
}

// dropSocket closes the Socket Mode connection, if one is open.
func (f *fakeSlack) dropSocket() {
	f.sockMu.Lock()
	defer f.sockMu.Unlock()
	if f.sock != nil {
		_ = f.sock.Close()
		f.sock = nil
	}
}

// APIURL is SLACK_API_URL for the fake.
func (f *fakeSlack) APIURL() string { return f.srv.URL + "/api/" }

// ResponseURL is a response_url on the fake.
func (f *fakeSlack) ResponseURL(id string) string { return f.srv.URL + "/response/" + id }

// addPerson makes users.info know a person.
func (f *fakeSlack) addPerson(id, displayName, tz string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.people[id] = map[string]any{"id": id, "name": strings.ToLower(displayName), "real_name": displayName, "tz": tz,
		"profile": map[string]any{"display_name": displayName, "real_name": displayName}}
}

func (f *fakeSlack) reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeSlack) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if tok := r.PostForm.Get("token"); tok != "" {
			token = tok
		}
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	want := testBotToken
	if method == methodConnectionsOpen {
		want = testAppToken
	}
	if token != want {
		f.reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, apiCall{Method: method, Form: r.PostForm, At: time.Now()})
	fail := f.fail
	f.mu.Unlock()
	if fail != nil && fail(method, w) {
		return
	}
	form := r.PostForm
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case methodPostMessage, methodPostEphemeral:
		m := &fakeMsg{Channel: form.Get("channel"), TS: f.ts(), ThreadTS: form.Get("thread_ts"), Text: form.Get("text"),
			Blocks: form.Get("blocks"), Metadata: form.Get("metadata"), Ephemeral: method == methodPostEphemeral, User: form.Get("user")}
		f.msgs = append(f.msgs, m)
		if m.Ephemeral {
			f.reply(w, map[string]any{"ok": true, "message_ts": m.TS})
			return
		}
		f.reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
	case methodStartStream:
		if f.noStream[form.Get("channel")] {
			f.reply(w, map[string]any{"ok": false, "error": "not_allowed_token_type"})
			return
		}
		m := &fakeMsg{Channel: form.Get("channel"), TS: f.ts(), ThreadTS: form.Get("thread_ts"),
			Markdown: form.Get("markdown_text"), Streaming: true}
		f.msgs = append(f.msgs, m)
		f.reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
	case methodAppendStream, methodStopStream:
		m := f.find(form.Get("channel"), form.Get("ts"))
		if m == nil || !m.Streaming {
			f.reply(w, map[string]any{"ok": false, "error": "message_not_in_streaming_state"})
			return
		}
		m.Markdown += form.Get("markdown_text")
		if method == methodStopStream {
			m.Streaming = false
			if b := form.Get("blocks"); b != "" {
				m.Blocks = b
			}
			if md := form.Get("metadata"); md != "" {
				m.Metadata = md
			}
		}
		f.reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
	case methodUpdate:
		m := f.find(form.Get("channel"), form.Get("ts"))
		if m == nil || m.Deleted {
			f.reply(w, map[string]any{"ok": false, "error": "message_not_found"})
			return
		}
		m.Text, m.Markdown = form.Get("text"), ""
		if b, ok := form["blocks"]; ok {
			m.Blocks = b[0]
		}
		if md := form.Get("metadata"); md != "" {
			m.Metadata = md
		}
		f.reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text})
	case methodDelete:
		m := f.find(form.Get("channel"), form.Get("ts"))
		if m == nil {
			f.reply(w, map[string]any{"ok": false, "error": "message_not_found"})
			return
		}
		m.Deleted = true
		f.reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
	case methodReplies:
		f.reply(w, map[string]any{"ok": true, "has_more": false, "messages": f.thread(form)})
	case methodUsersInfo:
		p, ok := f.people[form.Get("user")]
		if !ok {
			f.reply(w, map[string]any{"ok": false, "error": "user_not_found"})
			return
		}
		f.reply(w, map[string]any{"ok": true, "user": p})
	case methodAuthTest:
		f.reply(w, map[string]any{"ok": true, "user_id": testBotUser, "bot_id": testBotID, "team_id": "T0001"})
	case methodSetStatus, methodSetPrompts, methodSetTitle:
		f.reply(w, map[string]any{"ok": true})
	case methodConnectionsOpen:
		f.reply(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/link"})
	default:
		f.reply(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

// ts makes message timestamps as Slack does: seconds.microseconds, rising.
func (f *fakeSlack) ts() string {
	f.nextTS++
	return fmt.Sprintf("1900000000.%06d", f.nextTS) // after every event ts the tests use
}

func (f *fakeSlack) find(channel, ts string) *fakeMsg {
	for _, m := range f.msgs {
		if m.Channel == channel && m.TS == ts && !m.Ephemeral {
			return m
		}
	}
	return nil
}

// thread answers conversations.replies: the bot's messages in a thread
// from oldest on, with metadata only when include_all_metadata is set.
func (f *fakeSlack) thread(form url.Values) []map[string]any {
	var out []map[string]any
	for _, m := range f.msgs {
		if m.Deleted || m.Ephemeral || m.Channel != form.Get("channel") || (m.ThreadTS != form.Get("ts") && m.TS != form.Get("ts")) {
			continue
		}
		if form.Get("oldest") != "" && m.TS < form.Get("oldest") {
			continue
		}
		o := map[string]any{"type": "message", "ts": m.TS, "thread_ts": m.ThreadTS, "text": m.Text, "user": testBotUser, "bot_id": testBotID}
		if m.Metadata != "" && form.Get("include_all_metadata") == "1" {
			o["metadata"] = json.RawMessage(m.Metadata)
		}
		out = append(out, o)
	}
	return out
}

func (f *fakeSlack) serveResponse(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body["_id"] = r.PathValue("id")
	f.mu.Lock()
	f.responses = append(f.responses, body)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// serveSocket is the Socket Mode WebSocket: hello, then envelopes sent by
// the test; acks are collected; pings keep slack-go's watchdog content.
func (f *fakeSlack) serveSocket(w http.ResponseWriter, r *http.Request) {
	// slack-go dials with Origin: https://api.slack.com, as Slack expects.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.sockMu.Lock()
	f.sock = conn
	err = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": "A0OPS"}, "debug_info": map[string]any{"host": "fake"}})
	f.sockMu.Unlock()
	if err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := conn.ReadJSON(&ack); err != nil {
			return
		}
		f.mu.Lock()
		f.acks[ack.EnvelopeID] = ack.Payload
		f.mu.Unlock()
		f.acked <- ack.EnvelopeID
	}
}

// send delivers an envelope over Socket Mode.
func (f *fakeSlack) send(t testing.TB, envelopeID, typ string, payload any, retry int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.sockMu.Lock()
		conn := f.sock
		f.sockMu.Unlock()
		if conn != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Socket Mode connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	f.sockMu.Lock()
	defer f.sockMu.Unlock()
	if err := f.sock.WriteJSON(map[string]any{"envelope_id": envelopeID, "type": typ, "payload": json.RawMessage(raw),
		"accepts_response_payload": typ == "slash_commands", "retry_attempt": retry, "retry_reason": ""}); err != nil {
		t.Fatalf("send envelope: %v", err)
	}
}

// waitAck waits for an envelope's ack and returns its payload.
func (f *fakeSlack) waitAck(t testing.TB, envelopeID string) json.RawMessage {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		f.mu.Lock()
		p, ok := f.acks[envelopeID]
		f.mu.Unlock()
		if ok {
			return p
		}
		select {
		case <-f.acked:
		case <-deadline:
			t.Fatalf("envelope %s was not acked", envelopeID)
		}
	}
}

// isAcked reports whether an envelope was acked.
func (f *fakeSlack) isAcked(envelopeID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.acks[envelopeID]
	return ok
}

// callsOf returns the calls of a method.
func (f *fakeSlack) callsOf(method string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// methods returns every method called.
func (f *fakeSlack) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if !slices.Contains(out, c.Method) {
			out = append(out, c.Method)
		}
	}
	return out
}

// inThread returns the messages for everyone (not ephemeral, not
// deleted) in a thread.
func (f *fakeSlack) inThread(channel, thread string) []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeMsg
	for _, m := range f.msgs {
		if m.Channel == channel && m.ThreadTS == thread && !m.Deleted && !m.Ephemeral {
			out = append(out, *m)
		}
	}
	return out
}

// response waits for the post to response_url id and returns it.
func (f *fakeSlack) response(t testing.TB, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f.mu.Lock()
		for _, r := range f.responses {
			if r["_id"] == id {
				f.mu.Unlock()
				return r
			}
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("nothing was posted to response_url %s", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rateLimitOnce answers the first call of method with 429 and Retry-After.
func rateLimitOnce(method string, retryAfter int) func(string, http.ResponseWriter) bool {
	var once sync.Once
	return func(m string, w http.ResponseWriter) bool {
		hit := false
		if m == method {
			once.Do(func() {
				hit = true
				w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
				w.WriteHeader(http.StatusTooManyRequests)
			})
		}
		return hit
	}
}

// reset forgets every message, call, response and ack, and the faults;
// the people stay.
func (f *fakeSlack) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.msgs, f.responses, f.fail = nil, nil, nil, nil
	clear(f.noStream)
	clear(f.acks)
}

// setFail installs a fault for the rest of the test.
func (f *fakeSlack) setFail(t testing.TB, fail func(method string, w http.ResponseWriter) bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
	t.Cleanup(func() {
		f.mu.Lock()
		f.fail = nil
		f.mu.Unlock()
	})
}

// mark is where the calls so far end, for callsAfter.
func (f *fakeSlack) mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// callsAfter returns the calls of method among those made after mark.
func (f *fakeSlack) callsAfter(mark int, method string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls[mark:] {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}
