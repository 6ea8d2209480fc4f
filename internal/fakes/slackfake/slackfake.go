// Package slackfake is Slack on 127.0.0.1 for tests, the load tool and
// the fault tests: the Web API as slack-go calls it (form posts to
// /api/<method>, JSON answers with "ok"), response_url posts, and a
// Socket Mode WebSocket server, with the workspace's messages held so a
// caller can see what was posted, and counted per thread. It also signs
// requests and builds event payloads as Slack does, for whoever plays
// Slack towards the bot. It does not import adapters/slack: it is the
// other side of the wire, so method names are plain strings here.
package slackfake

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake workspace's credentials and bot. The fake refuses any other
// token.
const (
	BotToken  = "xoxb-test-token"
	AppToken  = "xapp-test-token" // apps.connections.open only
	BotUserID = "U0BOT"
	BotID     = "B0BOT"
	TeamID    = "T0001" // what auth.test answers
)

// Web API methods the fake answers.
const (
	MethodPostMessage     = "chat.postMessage"
	MethodPostEphemeral   = "chat.postEphemeral"
	MethodUpdate          = "chat.update"
	MethodDelete          = "chat.delete"
	MethodStartStream     = "chat.startStream"
	MethodAppendStream    = "chat.appendStream"
	MethodStopStream      = "chat.stopStream"
	MethodReplies         = "conversations.replies"
	MethodUsersInfo       = "users.info"
	MethodAuthTest        = "auth.test"
	MethodSetStatus       = "assistant.threads.setStatus"
	MethodSetPrompts      = "assistant.threads.setSuggestedPrompts"
	MethodSetTitle        = "assistant.threads.setTitle"
	MethodConnectionsOpen = "apps.connections.open"
)

// Message is a message in the fake workspace.
type Message struct {
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

	seq int // posting order
}

// Thread names a thread: its channel and its parent's ts.
type Thread struct {
	Channel, TS string
}

// Call is one Web API request the fake received.
type Call struct {
	Method string
	Form   url.Values
	At     time.Time
}

// Fault may answer a Web API call in the fake's place (a 429, an error);
// it reports whether it did.
type Fault func(method string, w http.ResponseWriter) bool

// RateLimit answers the first n calls of method with 429 and Retry-After
// (in whole seconds, as Slack sends it): n = 1 is one rate limit, a large
// n a storm.
func RateLimit(method string, n int, retryAfter time.Duration) Fault {
	var mu sync.Mutex
	left := n
	return func(m string, w http.ResponseWriter) bool {
		if m != method {
			return false
		}
		mu.Lock()
		hit := left > 0
		left--
		mu.Unlock()
		if hit {
			w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
			w.WriteHeader(http.StatusTooManyRequests)
		}
		return hit
	}
}

// Config sets up a fake.
type Config struct {
	// Record keeps every Web API call with its form, for Calls and
	// CallsAfter (tests). A load run leaves it off and reads Count, so
	// the fake's memory grows with the messages only.
	Record bool
	// OnPost, when set, is called with each message for everyone just
	// posted (chat.postMessage) or finished (chat.stopStream,
	// chat.update), before the fake answers the call: a load run times
	// its answers by it. It is called without the fake's lock, from the
	// goroutine of the call, so it may call the fake.
	OnPost func(Message)
}

// Server is the fake Slack. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	record bool
	onPost func(Message)

	mu        sync.Mutex
	calls     []Call
	counts    map[string]int
	byTS      map[Thread]*Message   // non-ephemeral messages by channel and ts
	threads   map[Thread][]*Message // by channel and thread_ts, in posting order
	responses []response            // response_url posts, in order
	nextTS    int
	people    map[string]map[string]any // users.info answers by user id
	noStream  map[string]bool           // channels where chat.startStream fails
	fault     Fault
	acks      map[string]Ack
	changed   chan struct{} // closed and replaced when an ack or a response comes

	socks sockets
}

type response struct {
	id   string
	body map[string]any
}

// Start starts a fake on 127.0.0.1.
func Start(cfg Config) *Server {
	s := &Server{record: cfg.Record, onPost: cfg.OnPost, counts: map[string]int{}, byTS: map[Thread]*Message{}, threads: map[Thread][]*Message{},
		nextTS: 1, people: map[string]map[string]any{}, noStream: map[string]bool{}, acks: map[string]Ack{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("/response/{id}", s.serveResponse)
	mux.HandleFunc("/link", s.serveSocket)
	s.srv = httptest.NewServer(mux)
	return s
}

// ForTest starts a fake that records every call, closed when the test
// ends.
func ForTest(tb testing.TB) *Server {
	tb.Helper()
	s := Start(Config{Record: true})
	tb.Cleanup(s.Close)
	return s
}

// Close drops the Socket Mode connections and stops the server.
func (s *Server) Close() {
	s.DropSockets()
	s.srv.Close()
}

// APIURL is SLACK_API_URL for the fake.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// ResponseURL is a response_url on the fake; Response returns what was
// posted to it.
func (s *Server) ResponseURL(id string) string { return s.srv.URL + "/response/" + id }

// AddPerson makes users.info know a person.
func (s *Server) AddPerson(id, displayName, tz string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.people[id] = map[string]any{"id": id, "name": strings.ToLower(displayName), "real_name": displayName, "tz": tz,
		"profile": map[string]any{"display_name": displayName, "real_name": displayName}}
}

// DisableStreaming makes chat.startStream fail in channel, as in a
// workspace without it.
func (s *Server) DisableStreaming(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noStream[channel] = true
}

// SetFault installs f (nil removes it).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Reset forgets every message, call, count, response and ack, the fault
// and the channels without streaming; the people stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.responses, s.fault = nil, nil, nil
	clear(s.counts)
	clear(s.byTS)
	clear(s.threads)
	clear(s.noStream)
	clear(s.acks)
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
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
	want := BotToken
	if method == MethodConnectionsOpen {
		want = AppToken
	}
	if token != want {
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	s.mu.Lock()
	s.counts[method]++
	if s.record {
		s.calls = append(s.calls, Call{Method: method, Form: r.PostForm, At: time.Now()})
	}
	fault := s.fault
	s.mu.Unlock()
	if fault != nil && fault(method, w) {
		return
	}
	s.mu.Lock()
	out := s.answer(method, r.PostForm)
	var done *Message
	if s.onPost != nil {
		done = s.finished(method, out)
	}
	s.mu.Unlock()
	if done != nil {
		s.onPost(*done)
	}
	reply(w, out)
}

// finished returns a copy of the message for everyone that a successful
// call posted or finished, nil for other calls; s.mu is held.
func (s *Server) finished(method string, out map[string]any) *Message {
	switch method {
	case MethodPostMessage, MethodStopStream, MethodUpdate:
	default:
		return nil
	}
	if ok, _ := out["ok"].(bool); !ok {
		return nil
	}
	ch, _ := out["channel"].(string)
	ts, _ := out["ts"].(string)
	m := s.byTS[Thread{ch, ts}]
	if m == nil {
		return nil
	}
	cp := *m
	return &cp
}

// answer carries out a Web API call; s.mu is held.
func (s *Server) answer(method string, form url.Values) map[string]any {
	notFound := map[string]any{"ok": false, "error": "message_not_found"}
	switch method {
	case MethodPostMessage, MethodPostEphemeral:
		m := s.add(&Message{Channel: form.Get("channel"), ThreadTS: form.Get("thread_ts"), Text: form.Get("text"),
			Blocks: form.Get("blocks"), Metadata: form.Get("metadata"), Ephemeral: method == MethodPostEphemeral, User: form.Get("user")})
		if m.Ephemeral {
			return map[string]any{"ok": true, "message_ts": m.TS}
		}
		return map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS}
	case MethodStartStream:
		if s.noStream[form.Get("channel")] {
			return map[string]any{"ok": false, "error": "not_allowed_token_type"}
		}
		m := s.add(&Message{Channel: form.Get("channel"), ThreadTS: form.Get("thread_ts"), Markdown: form.Get("markdown_text"), Streaming: true})
		return map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS}
	case MethodAppendStream, MethodStopStream:
		m := s.byTS[Thread{form.Get("channel"), form.Get("ts")}]
		if m == nil || !m.Streaming {
			return map[string]any{"ok": false, "error": "message_not_in_streaming_state"}
		}
		m.Markdown += form.Get("markdown_text")
		if method == MethodStopStream {
			m.Streaming = false
			if b := form.Get("blocks"); b != "" {
				m.Blocks = b
			}
			if md := form.Get("metadata"); md != "" {
				m.Metadata = md
			}
		}
		return map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS}
	case MethodUpdate:
		m := s.byTS[Thread{form.Get("channel"), form.Get("ts")}]
		if m == nil || m.Deleted {
			return notFound
		}
		m.Text, m.Markdown = form.Get("text"), ""
		if b, ok := form["blocks"]; ok {
			m.Blocks = b[0]
		}
		if md := form.Get("metadata"); md != "" {
			m.Metadata = md
		}
		return map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text}
	case MethodDelete:
		m := s.byTS[Thread{form.Get("channel"), form.Get("ts")}]
		if m == nil {
			return notFound
		}
		m.Deleted = true
		return map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS}
	case MethodReplies:
		return map[string]any{"ok": true, "has_more": false, "messages": s.replies(form)}
	case MethodUsersInfo:
		p, ok := s.people[form.Get("user")]
		if !ok {
			return map[string]any{"ok": false, "error": "user_not_found"}
		}
		return map[string]any{"ok": true, "user": p}
	case MethodAuthTest:
		return map[string]any{"ok": true, "user_id": BotUserID, "bot_id": BotID, "team_id": TeamID}
	case MethodSetStatus, MethodSetPrompts, MethodSetTitle:
		return map[string]any{"ok": true}
	case MethodConnectionsOpen:
		return map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link"}
	default:
		return map[string]any{"ok": false, "error": "unknown_method"}
	}
}

// add posts m with the next timestamp; s.mu is held.
func (s *Server) add(m *Message) *Message {
	// Message timestamps as Slack makes them, seconds.microseconds, rising,
	// after every event ts the tests use.
	s.nextTS++
	m.TS = fmt.Sprintf("%d.%06d", 1900000000+s.nextTS/1000000, s.nextTS%1000000)
	m.seq = s.nextTS
	if !m.Ephemeral {
		s.byTS[Thread{m.Channel, m.TS}] = m
	}
	if m.ThreadTS != "" {
		k := Thread{m.Channel, m.ThreadTS}
		s.threads[k] = append(s.threads[k], m)
	}
	return m
}

// replies answers conversations.replies: the bot's messages in a thread
// (its parent included) from oldest on, with metadata only when
// include_all_metadata is set. s.mu is held.
func (s *Server) replies(form url.Values) []map[string]any {
	k := Thread{form.Get("channel"), form.Get("ts")}
	in := slices.Clone(s.threads[k])
	if parent := s.byTS[k]; parent != nil && parent.ThreadTS != k.TS {
		in = append(in, parent)
	}
	slices.SortFunc(in, func(a, b *Message) int { return cmp.Compare(a.seq, b.seq) })
	out := []map[string]any{}
	for _, m := range in {
		if m.Deleted || m.Ephemeral || (form.Get("oldest") != "" && m.TS < form.Get("oldest")) {
			continue
		}
		o := map[string]any{"type": "message", "ts": m.TS, "thread_ts": m.ThreadTS, "text": m.Text, "user": BotUserID, "bot_id": BotID}
		if m.Metadata != "" && form.Get("include_all_metadata") == "1" {
			o["metadata"] = json.RawMessage(m.Metadata)
		}
		out = append(out, o)
	}
	return out
}

func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.responses = append(s.responses, response{id: r.PathValue("id"), body: body})
	s.notify()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// notify wakes whoever waits for an ack or a response; s.mu is held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitUntil waits until found returns true (called with s.mu held) or
// ctx ends.
func (s *Server) waitUntil(ctx context.Context, found func() bool) error {
	for {
		s.mu.Lock()
		ok, changed := found(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Response waits for the first post to ResponseURL(id) and returns its
// body.
func (s *Server) Response(ctx context.Context, id string) (map[string]any, error) {
	var body map[string]any
	err := s.waitUntil(ctx, func() bool {
		for _, r := range s.responses {
			if r.id == id {
				body = r.body
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("nothing posted to response_url %s: %w", id, err)
	}
	return body, nil
}

// Count counts the calls of a Web API method (recorded or not).
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

// Methods returns every Web API method called, sorted.
func (s *Server) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.counts))
}

// Calls returns the recorded calls of a method (Config.Record).
func (s *Server) Calls(method string) []Call {
	return s.CallsAfter(0, method)
}

// Mark is where the recorded calls so far end, for CallsAfter.
func (s *Server) Mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// CallsAfter returns the recorded calls of method made after mark.
func (s *Server) CallsAfter(mark int, method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls[mark:] {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// InThread returns the messages for everyone (not ephemeral, not
// deleted) in a thread, in posting order.
func (s *Server) InThread(channel, thread string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.threads[Thread{channel, thread}] {
		if !m.Deleted && !m.Ephemeral {
			out = append(out, *m)
		}
	}
	return out
}

// ReplyCounts counts the messages for everyone (not ephemeral, not
// deleted) in each thread that has any: what a load run checks for
// exactly one answer per question.
func (s *Server) ReplyCounts() map[Thread]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[Thread]int{}
	for k, ms := range s.threads {
		for _, m := range ms {
			if !m.Deleted && !m.Ephemeral {
				out[k]++
			}
		}
	}
	return out
}
