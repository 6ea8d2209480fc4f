package openai

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/usage"
)

var testPool *pgxpool.Pool

func TestMain(m *testing.M) { os.Exit(testdb.RunMain(m, &testPool)) }

// sleeps records the waits between retries instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func mustClient(tb testing.TB, cfg Config, sl *sleeps) *Client {
	tb.Helper()
	cfg.sleep = sl.sleep
	cfg.jitter = func() float64 { return 0.5 }
	c, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

type fixture struct {
	user   uuid.UUID
	conv   uuid.UUID
	engine *bot.Engine
}

func mustFixture(tb testing.TB, llm bot.LLM, timeout time.Duration) fixture {
	tb.Helper()
	ctx := context.Background()
	var user uuid.UUID
	if err := testPool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ($1) RETURNING id`,
		"acc-"+uuid.NewString()).Scan(&user); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	c, err := conversations.NewStore(testPool).Create(ctx, conversations.NewConversation{OwnerID: user, Source: conversations.SourceAPI})
	if err != nil {
		tb.Fatalf("create conversation: %v", err)
	}
	e := bot.New(bot.Config{DB: testPool, LLM: llm, Model: DefaultModel, CallTimeout: timeout,
		Now: func() time.Time { return time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC) }})
	return fixture{user: user, conv: c.ID, engine: e}
}

type ledgerRow struct {
	Model                      string
	Prompt, Completion, Cached int
	Cost                       int64
	PriceVersion               string
	Estimated                  bool
	MessageID                  *uuid.UUID
}

func ledger(tb testing.TB, user uuid.UUID) []ledgerRow {
	tb.Helper()
	rows, err := testPool.Query(context.Background(), `SELECT model, prompt_tokens, completion_tokens, cached_tokens,
		cost_micro_usd, price_version, estimated, message_id FROM usage_events WHERE user_id = $1 ORDER BY id`, user)
	if err != nil {
		tb.Fatalf("read ledger: %v", err)
	}
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		if err := rows.Scan(&r.Model, &r.Prompt, &r.Completion, &r.Cached, &r.Cost, &r.PriceVersion, &r.Estimated, &r.MessageID); err != nil {
			tb.Fatalf("scan ledger: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func stored(tb testing.TB, conv uuid.UUID) []conversations.Message {
	tb.Helper()
	ms, err := conversations.NewStore(testPool).Recent(context.Background(), conv, 100)
	if err != nil {
		tb.Fatalf("read messages: %v", err)
	}
	return ms
}

// TestAcceptanceAnswers drives the engine through the real go-openai client
// against the fake server and checks what is stored, to the micro-dollar.
func TestAcceptanceAnswers(t *testing.T) {
	prices := usage.BuiltinPrices()
	tests := []struct {
		name     string
		stream   bool
		reply    modelfake.Reply
		wantText string
		// want is the ledger row; for estimated rows the token counts are
		// computed from the request the fake saw.
		want ledgerRow
	}{
		{
			name:     "not streamed to the caller, with cached prompt tokens",
			reply:    modelfake.Reply{Model: "gpt-4o-mini-2024-07-18", Chunks: []string{"Restart the payments pod."}, Usage: &modelfake.Usage{Prompt: 1200, Cached: 200, Completion: 300}},
			wantText: "Restart the payments pod.",
			// 1000 x 0.15 + 200 x 0.075 + 300 x 0.60 = 150 + 15 + 180.
			want: ledgerRow{Model: "gpt-4o-mini-2024-07-18", Prompt: 1200, Cached: 200, Completion: 300, Cost: 345, PriceVersion: usage.BuiltinVersion},
		},
		{
			name:     "streaming with the usage chunk",
			stream:   true,
			reply:    modelfake.Reply{Model: "gpt-4o-mini-2024-07-18", Chunks: []string{"Drain ", "the node, ", "then reboot."}, Usage: &modelfake.Usage{Prompt: 50, Completion: 10}},
			wantText: "Drain the node, then reboot.",
			// 50 x 0.15 + 10 x 0.60 = 13.5, rounded half up.
			want: ledgerRow{Model: "gpt-4o-mini-2024-07-18", Prompt: 50, Completion: 10, Cost: 14, PriceVersion: usage.BuiltinVersion},
		},
		{
			name:     "streaming without the usage chunk is estimated",
			stream:   true,
			reply:    modelfake.Reply{Model: "gpt-4o", Chunks: []string{"Check ", "disk space on db-2."}},
			wantText: "Check disk space on db-2.",
			want:     ledgerRow{Model: "gpt-4o", Estimated: true, PriceVersion: usage.BuiltinVersion},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := modelfake.ForTest(t, tt.reply)
			var sl sleeps
			fx := mustFixture(t, mustClient(t, Config{APIKey: "sk-test", BaseURL: f.BaseURL()}, &sl), 10*time.Second)
			var deltas []string
			var onDelta func(string)
			if tt.stream {
				onDelta = func(s string) { deltas = append(deltas, s) }
			}
			rep, err := fx.engine.Respond(context.Background(), bot.Turn{UserID: fx.user, ConversationID: fx.conv,
				Text: "How do I fix it?", Source: conversations.SourceAPI, Key: "api:" + uuid.NewString()}, onDelta)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if rep.Text != tt.wantText {
				t.Errorf("reply = %q, want %q", rep.Text, tt.wantText)
			}
			if tt.stream && strings.Join(deltas, "") != tt.wantText {
				t.Errorf("deltas = %q, want them to join to %q", deltas, tt.wantText)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1", len(reqs))
			}
			// Always streamed from the provider, so a silent model is told
			// from a slow one whether or not the caller takes the pieces.
			if !reqs[0].Stream {
				t.Errorf("stream = false, want true")
			}
			so, _ := reqs[0].Body["stream_options"].(map[string]any)
			if so["include_usage"] != true {
				t.Errorf("stream_options = %v, want include_usage true", reqs[0].Body["stream_options"])
			}
			want := tt.want
			if want.Estimated {
				var msgs []bot.ChatMessage
				for _, m := range reqs[0].Messages {
					msgs = append(msgs, bot.ChatMessage{Role: m["role"].(string), Content: m["content"].(string)})
				}
				want.Prompt = bot.EstimateMessages(msgs)
				want.Completion = bot.EstimateTokens(tt.wantText)
				want.Cost, _ = prices.Cost(want.Model, usage.Tokens{Prompt: want.Prompt, Completion: want.Completion})
				if want.Prompt == 0 || want.Completion == 0 || want.Cost == 0 {
					t.Fatalf("estimate gave zero: %+v", want)
				}
			}
			rows := ledger(t, fx.user)
			if len(rows) != 1 {
				t.Fatalf("ledger rows = %d, want 1", len(rows))
			}
			got := rows[0]
			if got.MessageID == nil || *got.MessageID != rep.AssistantMessage.ID {
				t.Errorf("ledger message_id = %v, want %s", got.MessageID, rep.AssistantMessage.ID)
			}
			got.MessageID = nil
			if got != want {
				t.Errorf("ledger row = %+v, want %+v", got, want)
			}
			ms := stored(t, fx.conv)
			if len(ms) != 2 {
				t.Fatalf("stored messages = %d, want 2", len(ms))
			}
			if ms[0].Role != "user" || ms[0].Content != "How do I fix it?" || ms[1].Role != "assistant" || ms[1].Content != tt.wantText {
				t.Errorf("stored = [%s %q, %s %q]", ms[0].Role, ms[0].Content, ms[1].Role, ms[1].Content)
			}
			a := ms[1]
			if a.PromptTokens != want.Prompt || a.CompletionTokens != want.Completion || a.TotalTokens != want.Prompt+want.Completion || a.CostMicroUSD != want.Cost {
				t.Errorf("assistant tokens/cost = %d/%d/%d/%d, want %d/%d/%d/%d", a.PromptTokens, a.CompletionTokens, a.TotalTokens,
					a.CostMicroUSD, want.Prompt, want.Completion, want.Prompt+want.Completion, want.Cost)
			}
			if !strings.Contains(string(a.Metadata), `"model": "`+want.Model+`"`) && !strings.Contains(string(a.Metadata), `"model":"`+want.Model+`"`) {
				t.Errorf("metadata %s does not name model %s", a.Metadata, want.Model)
			}
		})
	}
}

// TestAcceptanceFailures: 429 with Retry-After and 500 are retried; a
// provider that stays down, or hangs past the deadline, becomes a
// *bot.ModelError with nothing stored.
func TestAcceptanceFailures(t *testing.T) {
	ok := modelfake.Reply{Model: "gpt-4o-mini", Chunks: []string{"Fine now."}, Usage: &modelfake.Usage{Prompt: 100, Completion: 20}}
	tests := []struct {
		name      string
		replies   []modelfake.Reply
		retries   int
		timeout   time.Duration
		wantErr   string // ModelError kind; "" means success
		wantReqs  int
		wantSleep []time.Duration
	}{
		{name: "429 with Retry-After, then success",
			replies:  []modelfake.Reply{{Status: 429, Header: map[string]string{"Retry-After": "2"}}, ok},
			wantReqs: 2, wantSleep: []time.Duration{2 * time.Second}},
		{name: "429 with retry-after-ms",
			replies:  []modelfake.Reply{{Status: 429, Header: map[string]string{"Retry-After-Ms": "1500"}}, ok},
			wantReqs: 2, wantSleep: []time.Duration{1500 * time.Millisecond}},
		{name: "500 twice, then success with jittered backoff",
			replies:  []modelfake.Reply{{Status: 500}, {Status: 500}, ok},
			wantReqs: 3, wantSleep: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{name: "429 until the retries run out",
			replies: []modelfake.Reply{{Status: 429, Header: map[string]string{"Retry-After": "1"}}},
			retries: 2, wantErr: bot.ModelRateLimited, wantReqs: 3,
			wantSleep: []time.Duration{time.Second, time.Second}},
		{name: "500 until the retries run out",
			replies: []modelfake.Reply{{Status: 500}},
			retries: 1, wantErr: bot.ModelUnavailable, wantReqs: 2, wantSleep: []time.Duration{250 * time.Millisecond}},
		{name: "401 is not retried",
			replies: []modelfake.Reply{{Status: 401}},
			wantErr: bot.ModelRejected, wantReqs: 1},
		{name: "hang past the deadline",
			replies: []modelfake.Reply{{Hang: true}},
			timeout: 300 * time.Millisecond, wantErr: bot.ModelTimeout, wantReqs: 1},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			name := tt.name + map[bool]string{false: " (whole answer)", true: " (streamed)"}[stream]
			t.Run(name, func(t *testing.T) {
				f := modelfake.ForTest(t, tt.replies...)
				var sl sleeps
				retries := tt.retries
				if retries == 0 {
					retries = 3
				}
				client := mustClient(t, Config{APIKey: "sk-test", BaseURL: f.BaseURL(), MaxRetries: retries}, &sl)
				timeout := tt.timeout
				if timeout == 0 {
					timeout = time.Minute
				}
				fx := mustFixture(t, client, timeout)
				var onDelta func(string)
				if stream {
					onDelta = func(string) {}
				}
				rep, err := fx.engine.Respond(context.Background(), bot.Turn{UserID: fx.user, ConversationID: fx.conv,
					Text: "Is it up?", Source: conversations.SourceAPI, Key: "api:" + uuid.NewString()}, onDelta)
				if got := len(f.Requests()); got != tt.wantReqs {
					t.Errorf("requests = %d, want %d", got, tt.wantReqs)
				}
				if got := sl.all(); !equalDurations(got, tt.wantSleep) {
					t.Errorf("waits = %v, want %v", got, tt.wantSleep)
				}
				rows, msgs := ledger(t, fx.user), stored(t, fx.conv)
				if tt.wantErr == "" {
					if err != nil {
						t.Fatalf("Respond: %v", err)
					}
					if rep.Text != "Fine now." || len(rows) != 1 || len(msgs) != 2 || rows[0].Cost != 27 {
						t.Errorf("reply %q, ledger %+v, %d messages; want the answer, one row costing 27, 2 messages", rep.Text, rows, len(msgs))
					}
					return
				}
				var me *bot.ModelError
				if !errors.As(err, &me) || me.Kind != tt.wantErr {
					t.Fatalf("error = %v, want a *bot.ModelError of kind %s", err, tt.wantErr)
				}
				if len(rows) != 0 || len(msgs) != 0 {
					t.Errorf("after a failure: %d ledger rows, %d messages; want none", len(rows), len(msgs))
				}
				if msg := bot.UserMessage(err); msg == "" || strings.Contains(msg, "went wrong") {
					t.Errorf("UserMessage = %q, want a model-specific explanation", msg)
				}
			})
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A stream cut after its first delta is not retried (the reader has seen
// part of an answer, and it was billed); the turn fails, nothing is stored,
// and the call is on the ledger as interrupted, with estimated usage.
func TestAcceptanceStreamCutMidAnswer(t *testing.T) {
	for _, streamed := range []bool{true, false} {
		t.Run(map[bool]string{true: "streamed", false: "not streamed to the caller"}[streamed], func(t *testing.T) {
			f := modelfake.ForTest(t, modelfake.Reply{Model: "gpt-4o-mini", Chunks: []string{"Half an ", "answer"}, CutAfterFirst: true})
			var sl sleeps
			fx := mustFixture(t, mustClient(t, Config{APIKey: "k", BaseURL: f.BaseURL()}, &sl), time.Minute)
			var onDelta func(string)
			if streamed {
				onDelta = func(string) {}
			}
			_, err := fx.engine.Respond(context.Background(), bot.Turn{UserID: fx.user, ConversationID: fx.conv,
				Text: "go", Source: conversations.SourceAPI}, onDelta)
			var me *bot.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("error = %v, want a *bot.ModelError", err)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1 (no retry after output)", len(reqs))
			}
			if msgs := stored(t, fx.conv); len(msgs) != 0 {
				t.Errorf("%d messages stored, want none", len(msgs))
			}
			var msgs []bot.ChatMessage
			for _, m := range reqs[0].Messages {
				msgs = append(msgs, bot.ChatMessage{Role: m["role"].(string), Content: m["content"].(string)})
			}
			// "Half an " came: 8 bytes of ASCII, 2 tokens.
			want := ledgerRow{Model: "gpt-4o-mini", Prompt: bot.EstimateMessages(msgs), Completion: 2, PriceVersion: usage.BuiltinVersion, Estimated: true}
			want.Cost, _ = usage.BuiltinPrices().Cost("gpt-4o-mini", usage.Tokens{Prompt: want.Prompt, Completion: 2})
			var outcome string
			if err := testPool.QueryRow(context.Background(), `SELECT outcome FROM usage_events WHERE user_id = $1`, fx.user).Scan(&outcome); err != nil || outcome != "interrupted" {
				t.Errorf("outcome = %q (%v), want interrupted", outcome, err)
			}
			if rows := ledger(t, fx.user); len(rows) != 1 || rows[0] != want {
				t.Errorf("ledger = %+v, want [%+v]", rows, want)
			}
		})
	}
}

// A model that sends nothing is reported once the silence limit (twice the
// first-token timeout) is spent, long before OPSBOT_MODEL_TIMEOUT, with
// nothing stored or billed.
func TestAcceptanceSilentModelIsReported(t *testing.T) {
	const ft = 200 * time.Millisecond
	f := modelfake.ForTest(t, modelfake.Reply{Hang: true})
	var sl sleeps
	fx := mustFixture(t, mustClient(t, Config{APIKey: "k", BaseURL: f.BaseURL(), FirstTokenTimeout: ft, BaseBackoff: 10 * time.Millisecond}, &sl), time.Minute)
	start := time.Now()
	_, err := fx.engine.Respond(context.Background(), bot.Turn{UserID: fx.user, ConversationID: fx.conv,
		Text: "anyone there?", Source: conversations.SourceAPI, Key: "api:" + uuid.NewString()}, func(string) {})
	took := time.Since(start)
	var me *bot.ModelError
	if !errors.As(err, &me) || me.Kind != bot.ModelTimeout {
		t.Fatalf("error = %v, want a timeout *bot.ModelError", err)
	}
	if msg := bot.UserMessage(err); !strings.Contains(msg, "did not answer in time") {
		t.Errorf("UserMessage = %q, want the timeout explanation", msg)
	}
	if took > 2*ft+time.Second {
		t.Errorf("reported after %v, want about %v (the model timeout is a minute)", took, 2*ft)
	}
	if n := len(f.Requests()); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
	if rows, msgs := ledger(t, fx.user), stored(t, fx.conv); len(rows) != 0 || len(msgs) != 0 {
		t.Errorf("%d ledger rows, %d messages; want none", len(rows), len(msgs))
	}
}

// A caller that goes away mid-answer (its context cancelled after words
// came) leaves the call on the ledger as interrupted, with the words that
// came estimated, and nothing stored.
func TestAcceptanceCallerGoneMidAnswer(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Model: "gpt-4o-mini", Chunks: []string{"Drain it", " and then"}, ChunkDelay: 100 * time.Millisecond})
	var sl sleeps
	fx := mustFixture(t, mustClient(t, Config{APIKey: "k", BaseURL: f.BaseURL()}, &sl), time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := fx.engine.Respond(ctx, bot.Turn{UserID: fx.user, ConversationID: fx.conv, Text: "go", Source: conversations.SourceAPI},
		func(string) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if msgs := stored(t, fx.conv); len(msgs) != 0 {
		t.Errorf("%d messages stored, want none", len(msgs))
	}
	var outcome string
	var completion int
	if err := testPool.QueryRow(context.Background(), `SELECT outcome, completion_tokens FROM usage_events WHERE user_id = $1`,
		fx.user).Scan(&outcome, &completion); err != nil || outcome != "interrupted" || completion != 2 {
		// "Drain it" came: 8 bytes of ASCII, 2 tokens.
		t.Errorf("ledger = %q, %d completion tokens (%v); want one interrupted row with 2", outcome, completion, err)
	}
}
