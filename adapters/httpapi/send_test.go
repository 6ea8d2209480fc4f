package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/usage"
)

// sendLLM is an in-process model: it streams chunks, can fail, and can hold
// its answer until release is closed.
type sendLLM struct {
	mu      sync.Mutex
	calls   int
	chunks  []string
	err     error
	release chan struct{} // when set, wait for it after the first chunk
	first   chan struct{} // closed once the first chunk is out
}

func (f *sendLLM) Complete(ctx context.Context, req bot.Request, onDelta func(string)) (bot.Completion, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.err != nil {
		return bot.Completion{}, f.err
	}
	for i, c := range f.chunks {
		if onDelta != nil {
			onDelta(c)
		}
		if i == 0 && f.release != nil {
			close(f.first)
			<-f.release
		}
	}
	return bot.Completion{Text: strings.Join(f.chunks, ""), FinishReason: "stop", Model: "gpt-4o-mini",
		Usage: &bot.ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}, nil
}

// refusingBudget refuses every turn.
type refusingBudget struct{}

var budgetReset = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func (refusingBudget) Admit(context.Context, uuid.UUID) (usage.Admission, error) {
	return usage.Admission{}, &usage.BudgetExceededError{Scope: "user", LimitMicroUSD: 10_000_000, SpentMicroUSD: 10_000_001, ResetsAt: budgetReset}
}
func (refusingBudget) Settle(context.Context, usage.DBTX, usage.Admission) error { return nil }
func (refusingBudget) QueueSettle(*pgx.Batch, usage.Admission)                   {}
func (refusingBudget) Cancel(context.Context, usage.Admission) error             { return nil }

func newSendAPI(t *testing.T, cfg bot.Config) *testAPI {
	t.Helper()
	cfg.DB = testPool
	e := bot.New(cfg)
	return newTestAPI(t, func(d *Deps) { d.Engine = e })
}

func mustConversationID(t *testing.T, a *testAPI, tok string) string {
	t.Helper()
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, map[string]string{"title": "send"}, http.StatusCreated, &c)
	return c.ID.String()
}

func countTable(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := testPool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestSendMessage(t *testing.T) {
	llm := &sendLLM{chunks: []string{"Restart ", "the pod."}}
	a := newSendAPI(t, bot.Config{LLM: llm})
	u, tok := mustToken(t, "sender-"+uuid.NewString()[:8], false)
	conv := mustConversationID(t, a, tok)

	var got sendResponse
	a.mustDo("POST", "/api/v1/conversations/"+conv+"/messages", tok, map[string]string{"content": "pod is stuck"}, http.StatusCreated, &got)
	// 1000 x 0.15 + 500 x 0.60 = 450 micro-USD.
	wantUsage := usageJSON{Model: "gpt-4o-mini", PromptTokens: 1000, CompletionTokens: 500, TotalTokens: 1500, CostUSD: usd(450)}
	if got.Usage != wantUsage {
		t.Errorf("usage = %+v, want %+v", got.Usage, wantUsage)
	}
	if got.UserMessage.Content != "pod is stuck" || got.UserMessage.Role != "user" || got.UserMessage.AuthorID == nil || *got.UserMessage.AuthorID != u.ID {
		t.Errorf("user_message = %+v", got.UserMessage)
	}
	if got.AssistantMessage.Content != "Restart the pod." || got.AssistantMessage.Usage == nil || *got.AssistantMessage.Usage != wantUsage {
		t.Errorf("assistant_message = %+v", got.AssistantMessage)
	}
	var listed []messageJSON
	a.mustDo("GET", "/api/v1/conversations/"+conv+"/messages", tok, nil, http.StatusOK, &listed)
	if len(listed) != 2 || listed[1].ID != got.AssistantMessage.ID || *listed[1].Usage != wantUsage {
		t.Errorf("listed = %+v, want the two stored messages with usage", listed)
	}
	if n := countTable(t, `SELECT count(*) FROM usage_events WHERE user_id = $1 AND source = 'api' AND cost_micro_usd = 450`, u.ID); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
}

func TestSendMessageIdempotencyKey(t *testing.T) {
	llm := &sendLLM{chunks: []string{"once"}}
	a := newSendAPI(t, bot.Config{LLM: llm})
	u, tok := mustToken(t, "idem-"+uuid.NewString()[:8], false)
	conv := mustConversationID(t, a, tok)
	var ids []uuid.UUID
	for range 2 {
		req, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/conversations/"+conv+"/messages", strings.NewReader(`{"content":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Idempotency-Key", "retry-me")
		resp, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got sendResponse
		derr := json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || derr != nil || got.AssistantMessage.ID == uuid.Nil {
			t.Fatalf("status = %d, decode error %v, assistant message %s; want 201 with a stored reply",
				resp.StatusCode, derr, got.AssistantMessage.ID)
		}
		ids = append(ids, got.AssistantMessage.ID)
	}
	if ids[0] != ids[1] || llm.calls != 1 {
		t.Errorf("assistant ids %v, model calls %d; want one stored reply", ids, llm.calls)
	}
	if n := countTable(t, `SELECT count(*) FROM usage_events WHERE user_id = $1`, u.ID); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}

	// The same key on another conversation is a turn of its own there.
	other := mustConversationID(t, a, tok)
	req, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/conversations/"+other+"/messages", strings.NewReader(`{"content":"hi"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", "retry-me")
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got sendResponse
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("other conversation: status %d, decode error %v", resp.StatusCode, err)
	}
	if got.AssistantMessage.ConversationID.String() != other || got.AssistantMessage.ID == ids[0] {
		t.Errorf("other conversation got reply %s in %s, want a new reply in %s", got.AssistantMessage.ID, got.AssistantMessage.ConversationID, other)
	}

	for name, bad := range map[string]string{"not UTF-8": "k\xff\xfe", "too long": strings.Repeat("k", maxIdempotencyKey+1)} {
		req, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/conversations/"+conv+"/messages", strings.NewReader(`{"content":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header["Idempotency-Key"] = []string{bad}
		resp, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("Idempotency-Key %s: status %d, want 422", name, resp.StatusCode)
		}
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data string
}

func readEvents(t *testing.T, sc *bufio.Scanner, stopAfter int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		case line == "":
			out = append(out, cur)
			cur = sseEvent{}
			if stopAfter > 0 && len(out) == stopAfter {
				return out
			}
		}
	}
	return out
}

func openStream(t *testing.T, ctx context.Context, a *testAPI, tok, conv, content string) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"content": content})
	req, _ := http.NewRequestWithContext(ctx, "POST", a.srv.URL+"/api/v1/conversations/"+conv+"/messages", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	return resp
}

func TestSendMessageStreams(t *testing.T) {
	llm := &sendLLM{chunks: []string{"Drain ", "the ", "node."}}
	a := newSendAPI(t, bot.Config{LLM: llm})
	u, tok := mustToken(t, "streamer-"+uuid.NewString()[:8], false)
	conv := mustConversationID(t, a, tok)
	resp := openStream(t, context.Background(), a, tok, conv, "node unhealthy")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, type %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := readEvents(t, bufio.NewScanner(resp.Body), 0)
	var names []string
	var text string
	for _, e := range events {
		names = append(names, e.name)
		if e.name == "delta" {
			var d struct{ Content string }
			_ = json.Unmarshal([]byte(e.data), &d)
			text += d.Content
		}
	}
	if strings.Join(names, ",") != "delta,delta,delta,usage,done" {
		t.Fatalf("events = %v, want three deltas, usage, done", names)
	}
	if text != "Drain the node." {
		t.Errorf("streamed text = %q", text)
	}
	var us usageJSON
	_ = json.Unmarshal([]byte(events[3].data), &us)
	if us.CostUSD != usd(450) || us.TotalTokens != 1500 || us.Model != "gpt-4o-mini" {
		t.Errorf("usage event = %+v", us)
	}
	var done sendResponse
	if err := json.Unmarshal([]byte(events[4].data), &done); err != nil || done.AssistantMessage.Content != "Drain the node." {
		t.Errorf("done event = %s (%v)", events[4].data, err)
	}
	if n := countTable(t, `SELECT count(*) FROM usage_events WHERE user_id = $1`, u.ID); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
}

// A client that hangs up mid-stream does not lose the reply or its usage.
func TestSendMessageStreamSurvivesDisconnect(t *testing.T) {
	llm := &sendLLM{chunks: []string{"first ", "second"}, release: make(chan struct{}), first: make(chan struct{})}
	a := newSendAPI(t, bot.Config{LLM: llm})
	u, tok := mustToken(t, "leaver-"+uuid.NewString()[:8], false)
	conv := mustConversationID(t, a, tok)
	ctx, cancel := context.WithCancel(context.Background())
	resp := openStream(t, ctx, a, tok, conv, "long question")
	if ev := readEvents(t, bufio.NewScanner(resp.Body), 1); len(ev) != 1 || ev[0].name != "delta" {
		t.Fatalf("first event = %+v, want a delta", ev)
	}
	<-llm.first
	cancel() // the client leaves
	resp.Body.Close()
	close(llm.release)

	deadline := time.Now().Add(20 * time.Second)
	for countTable(t, `SELECT count(*) FROM usage_events WHERE user_id = $1`, u.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the reply was never stored after the client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := countTable(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, uuid.MustParse(conv)); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
	var content string
	if err := testPool.QueryRow(context.Background(), `SELECT content FROM messages WHERE conversation_id = $1 AND role = 'assistant'`,
		uuid.MustParse(conv)).Scan(&content); err != nil || content != "first second" {
		t.Errorf("stored reply = %q (%v), want the whole answer", content, err)
	}
}

func TestSendMessageErrors(t *testing.T) {
	ok := &sendLLM{chunks: []string{"fine"}}
	down := &sendLLM{err: &bot.ModelError{Kind: bot.ModelRateLimited, Status: 429, RetryAfter: 1500 * time.Millisecond, Err: errors.New("slow down")}}
	refused := &sendLLM{err: &bot.ModelError{Kind: bot.ModelRejected, Status: 401, Err: errors.New("bad key")}}
	_, tok := mustToken(t, "errs-"+uuid.NewString()[:8], false)
	_, otherTok := mustToken(t, "errs-other-"+uuid.NewString()[:8], false)

	tests := []struct {
		name       string
		cfg        bot.Config
		noEngine   bool
		foreign    bool
		conv       string
		body       any
		want       int
		wantDetail string
		wantHeader [2]string
	}{
		{name: "missing conversation", cfg: bot.Config{LLM: ok}, conv: uuid.NewString(), body: map[string]string{"content": "hi"}, want: 404, wantDetail: "Conversation not found"},
		{name: "someone else's conversation", cfg: bot.Config{LLM: ok}, foreign: true, body: map[string]string{"content": "hi"}, want: 404, wantDetail: "Conversation not found"},
		{name: "bad id", cfg: bot.Config{LLM: ok}, conv: "nope", body: map[string]string{"content": "hi"}, want: 422},
		{name: "over 16 KiB", cfg: bot.Config{LLM: ok}, body: map[string]string{"content": strings.Repeat("x", 16*1024+1)}, want: 413},
		{name: "empty content", cfg: bot.Config{LLM: ok}, body: map[string]string{"content": "   "}, want: 422, wantDetail: "content"},
		{name: "no content", cfg: bot.Config{LLM: ok}, body: map[string]string{}, want: 422, wantDetail: "content"},
		{name: "NUL character", cfg: bot.Config{LLM: ok}, body: map[string]string{"content": "a\x00b"}, want: 422, wantDetail: "NUL"},
		{name: "malformed JSON", cfg: bot.Config{LLM: ok}, body: `{"content":`, want: 422},
		{name: "budget used up", cfg: bot.Config{LLM: ok, Budget: refusingBudget{}}, body: map[string]string{"content": "hi"}, want: 402,
			wantDetail: "$10.00"},
		{name: "model rate-limited", cfg: bot.Config{LLM: down}, body: map[string]string{"content": "hi"}, want: 503,
			wantDetail: "rate-limiting", wantHeader: [2]string{"Retry-After", "2"}},
		{name: "model refused", cfg: bot.Config{LLM: refused}, body: map[string]string{"content": "hi"}, want: 502, wantDetail: "HTTP 401"},
		{name: "no engine", noEngine: true, body: map[string]string{"content": "hi"}, want: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a *testAPI
			if tt.noEngine {
				a = newTestAPI(t)
			} else {
				a = newSendAPI(t, tt.cfg)
			}
			conv := tt.conv
			if conv == "" {
				owner := tok
				if tt.foreign {
					owner = otherTok
				}
				conv = mustConversationID(t, a, owner)
			}
			resp, data := a.do("POST", "/api/v1/conversations/"+conv+"/messages", tok, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.want, data)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type = %q, want application/problem+json", ct)
			}
			var p problem
			_ = json.Unmarshal(data, &p)
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tt.wantDetail)
			}
			if h := tt.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
				t.Errorf("%s = %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
			}
			if !tt.noEngine && tt.conv == "" {
				if n := countTable(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, uuid.MustParse(conv)); n != 0 {
					t.Errorf("messages stored = %d, want 0", n)
				}
			}
		})
	}

	t.Run("streamed model failure is an error event", func(t *testing.T) {
		a := newSendAPI(t, bot.Config{LLM: down})
		conv := mustConversationID(t, a, tok)
		resp := openStream(t, context.Background(), a, tok, conv, "hi")
		defer resp.Body.Close()
		events := readEvents(t, bufio.NewScanner(resp.Body), 0)
		if len(events) != 1 || events[0].name != "error" {
			t.Fatalf("events = %+v, want one error event", events)
		}
		var p problem
		_ = json.Unmarshal([]byte(events[0].data), &p)
		if p.Status != 503 || !strings.Contains(p.Detail, "rate-limiting") {
			t.Errorf("error event = %+v, want 503 naming the rate limit", p)
		}
	})
}

// deadlineResponder records the deadline a turn was given.
type deadlineResponder struct {
	mu       sync.Mutex
	deadline time.Time
}

func (d *deadlineResponder) Respond(ctx context.Context, t bot.Turn, _ func(string)) (bot.Reply, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline, _ = ctx.Deadline()
	return bot.Reply{}, nil
}

// A turn over HTTP gets the configured time (the model's deadline and
// more), 3 minutes by default.
func TestSendMessageTurnTimeout(t *testing.T) {
	for _, tt := range []struct {
		configured, want time.Duration
	}{{0, 3 * time.Minute}, {7 * time.Minute, 7 * time.Minute}} {
		r := &deadlineResponder{}
		a := newTestAPI(t, func(d *Deps) { d.Engine = r; d.TurnTimeout = tt.configured })
		_, tok := mustToken(t, "deadline-"+uuid.NewString()[:8], false)
		conv := mustConversationID(t, a, tok)
		start := time.Now()
		a.mustDo("POST", "/api/v1/conversations/"+conv+"/messages", tok, map[string]string{"content": "slow model?"}, http.StatusCreated, nil)
		end := time.Now()
		r.mu.Lock()
		got := r.deadline
		r.mu.Unlock()
		if got.Before(start.Add(tt.want)) || got.After(end.Add(tt.want)) {
			t.Errorf("TurnTimeout %v: turn deadline %v after the request, want %v", tt.configured, got.Sub(start), tt.want)
		}
	}
}

func TestWantsEventStream(t *testing.T) {
	tests := map[string]bool{"": false, "application/json": false, "text/event-stream": true,
		"application/json, text/event-stream;q=0.9": true, "TEXT/EVENT-STREAM": true}
	for accept, want := range tests {
		r, _ := http.NewRequest("POST", "/", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := wantsEventStream(r); got != want {
			t.Errorf("wantsEventStream(%q) = %v, want %v", accept, got, want)
		}
	}
}

// blockingResponder holds a turn until its context ends, as a model call
// does, and reports that it started.
type blockingResponder struct{ started chan struct{} }

func (b *blockingResponder) Respond(ctx context.Context, _ bot.Turn, _ func(string)) (bot.Reply, error) {
	close(b.started)
	<-ctx.Done()
	return bot.Reply{}, ctx.Err()
}

// A turn outlives its client but not a shutdown whose grace ran out:
// StopTurns cuts it (the engine then records what its model call cost).
func TestStopTurnsCutsTurnsInFlight(t *testing.T) {
	r := &blockingResponder{started: make(chan struct{})}
	a := newTestAPI(t, func(d *Deps) { d.Engine = r })
	_, tok := mustToken(t, "cut-"+uuid.NewString()[:8], false)
	conv := mustConversationID(t, a, tok)
	done := make(chan int, 1)
	go func() {
		resp, _ := a.do("POST", "/api/v1/conversations/"+conv+"/messages", tok, map[string]string{"content": "long one"})
		done <- resp.StatusCode
	}()
	<-r.started
	a.s.StopTurns()
	select {
	case status := <-done:
		if status < 500 {
			t.Errorf("cut turn answered %d, want a 5xx", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the turn was not cut by StopTurns")
	}
}
