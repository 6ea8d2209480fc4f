package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

func TestRespondStoresOneTurn(t *testing.T) {
	ctx := context.Background()
	llm := &fakeLLM{text: "Restart it.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 100, CompletionTokens: 20}}
	e := New(Config{DB: testPool, LLM: llm, Model: "gpt-4o-mini"})
	user := mustUser(t)
	conv := mustConversation(t, user)
	rep, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "How?", Source: "api", Key: "api:1-" + uuid.NewString()}, nil)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	// 100 x 0.15 + 20 x 0.60 = 27 micro-USD.
	wantUsage := Usage{Model: "gpt-4o-mini", PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, CostMicroUSD: 27, PriceVersion: usage.BuiltinVersion}
	if rep.Usage != wantUsage {
		t.Errorf("usage = %+v, want %+v", rep.Usage, wantUsage)
	}
	if rep.Text != "Restart it." || rep.UserMessage.Content != "How?" || rep.AssistantMessage.Content != "Restart it." {
		t.Errorf("reply = %q, messages %q / %q", rep.Text, rep.UserMessage.Content, rep.AssistantMessage.Content)
	}
	if rep.UserMessage.AuthorID == nil || *rep.UserMessage.AuthorID != user || rep.AssistantMessage.AuthorID != nil {
		t.Errorf("authors = %v / %v, want the user / none", rep.UserMessage.AuthorID, rep.AssistantMessage.AuthorID)
	}
	if rep.UserMessage.Seq >= rep.AssistantMessage.Seq {
		t.Errorf("user message seq %d not before assistant %d", rep.UserMessage.Seq, rep.AssistantMessage.Seq)
	}
	var meta map[string]any
	if err := json.Unmarshal(rep.AssistantMessage.Metadata, &meta); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, k := range []string{"model", "finish_reason", "latency_ms", "estimated", "price_version", "citations"} {
		if _, ok := meta[k]; !ok {
			t.Errorf("metadata %s lacks %q", rep.AssistantMessage.Metadata, k)
		}
	}
	if meta["model"] != "gpt-4o-mini" || meta["estimated"] != false || meta["finish_reason"] != "stop" {
		t.Errorf("metadata = %v", meta)
	}
	if n := messageRows(t, conv); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
	var cost int64
	var model, source string
	if err := testPool.QueryRow(ctx, `SELECT cost_micro_usd, model, source FROM usage_events WHERE message_id = $1`,
		rep.AssistantMessage.ID).Scan(&cost, &model, &source); err != nil {
		t.Fatalf("ledger row: %v", err)
	}
	if cost != 27 || model != "gpt-4o-mini" || source != "api" {
		t.Errorf("ledger = %d %s %s, want 27 gpt-4o-mini api", cost, model, source)
	}
	if len(llm.calls()) != 1 {
		t.Errorf("model calls = %d, want 1", len(llm.calls()))
	}
	req := llm.calls()[0]
	if req.Messages[0].Role != ChatSystem || req.Messages[len(req.Messages)-1].Content != "How?" {
		t.Errorf("request = %+v, want system first and the question last", req.Messages)
	}
}

func TestRespondSameKeyIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	llm := &fakeLLM{text: "Once.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 2}}
	e := New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	conv := mustConversation(t, user)
	turn := Turn{UserID: user, ConversationID: conv, Text: "Again?", Source: "api", Key: "api:" + uuid.NewString()}
	first, err := e.Respond(ctx, turn, nil)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	var streamed string
	second, err := e.Respond(ctx, turn, func(s string) { streamed += s })
	if err != nil {
		t.Fatalf("second: %v", err)
	}
	if !second.Replayed || first.Replayed {
		t.Errorf("replayed = %v, %v; want false, true", first.Replayed, second.Replayed)
	}
	if second.AssistantMessage.ID != first.AssistantMessage.ID || second.UserMessage.ID != first.UserMessage.ID {
		t.Errorf("replay returned other messages")
	}
	if second.Usage != first.Usage || second.Text != first.Text || streamed != first.Text {
		t.Errorf("replay = %+v %q (streamed %q), want %+v %q", second.Usage, second.Text, streamed, first.Usage, first.Text)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	if n := ledgerRows(t, user); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
	if n := messageRows(t, conv); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
}

func TestRespondRefusesBadInputBeforeTheModel(t *testing.T) {
	llm := &fakeLLM{text: "never"}
	e := New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	conv := mustConversation(t, user)
	other := mustConversation(t, mustUser(t))
	tests := []struct {
		name  string
		turn  Turn
		check func(error) bool
	}{
		{"over 16 KiB", Turn{UserID: user, ConversationID: conv, Text: strings.Repeat("a", 16*1024+1), Source: "api"},
			func(err error) bool { var tl *conversations.TooLargeError; return errors.As(err, &tl) }},
		{"exactly 16 KiB is fine for validation but the model is not called here", Turn{UserID: user, ConversationID: other, Text: strings.Repeat("a", 16*1024), Source: "api"},
			func(err error) bool { return errors.Is(err, conversations.ErrNotFound) }},
		{"empty", Turn{UserID: user, ConversationID: conv, Text: "  \n", Source: "api"},
			func(err error) bool {
				var ve *conversations.ValidationError
				return errors.As(err, &ve) && ve.Field == "content"
			}},
		{"someone else's conversation", Turn{UserID: user, ConversationID: other, Text: "hi", Source: "api"},
			func(err error) bool { return errors.Is(err, conversations.ErrNotFound) }},
		{"no user", Turn{ConversationID: conv, Text: "hi", Source: "api"},
			func(err error) bool {
				var ve *conversations.ValidationError
				return errors.As(err, &ve) && ve.Field == "user"
			}},
		{"NUL character", Turn{UserID: user, ConversationID: conv, Text: "a\x00b", Source: "api"},
			func(err error) bool {
				var ve *conversations.ValidationError
				return errors.As(err, &ve) && ve.Field == "content"
			}},
		{"unknown source", Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "email"},
			func(err error) bool {
				var ve *conversations.ValidationError
				return errors.As(err, &ve) && ve.Field == "source"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Respond(context.Background(), tt.turn, nil)
			if !tt.check(err) {
				t.Errorf("error = %v (%T), not the expected kind", err, err)
			}
			if msg := UserMessage(err); msg == "" {
				t.Errorf("UserMessage is empty")
			}
		})
	}
	if n := len(llm.calls()); n != 0 {
		t.Errorf("model calls = %d, want 0", n)
	}
	if n := messageRows(t, conv) + messageRows(t, other); n != 0 {
		t.Errorf("messages = %d, want 0", n)
	}
}

func TestRespondRedactsSecrets(t *testing.T) {
	const secret = "AKIAIOSFODNN7EXAMPLE"
	text := "deploy fails with key " + secret + " and postgres://app:hunter22@db/app"
	for _, raw := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "OPSBOT_STORE_RAW"}[raw], func(t *testing.T) {
			llm := &fakeLLM{text: "Rotate it.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}}
			e := New(Config{DB: testPool, LLM: llm, StoreRaw: raw})
			user := mustUser(t)
			conv := mustConversation(t, user)
			rep, err := e.Respond(context.Background(), Turn{UserID: user, ConversationID: conv, Text: text, Source: "api"}, nil)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			// A second turn sends the first as history: redacted either way.
			if _, err := e.Respond(context.Background(), Turn{UserID: user, ConversationID: conv, Text: "and now?", Source: "api"}, nil); err != nil {
				t.Fatalf("Respond: %v", err)
			}
			for i, req := range llm.calls() {
				for _, m := range req.Messages {
					if strings.Contains(m.Content, secret) || strings.Contains(m.Content, "hunter22") {
						t.Errorf("call %d sent a secret to the model: %q", i, m.Content)
					}
				}
			}
			storedRaw := strings.Contains(rep.UserMessage.Content, secret)
			if storedRaw != raw {
				t.Errorf("stored %q; raw stored = %v, want %v", rep.UserMessage.Content, storedRaw, raw)
			}
		})
	}
}

func TestRespondWithoutModel(t *testing.T) {
	hits := []knowledge.Result{
		{Document: "Database failover", Section: "Promote the replica", Path: "db/failover.md", Score: 0.9,
			Snippet: "Run pg_ctl promote", Content: "Run `pg_ctl promote` on the replica.\nThen repoint the app."},
		{Document: "Database failover", Section: "Check lag", Path: "db/failover.md", Score: 0.5,
			Snippet: "Check lag", Content: "Check replication lag first."},
	}
	tests := []struct {
		name      string
		retriever *fakeRetriever
		wantText  []string
		wantCites int
		wantGaps  int
	}{
		{"quotes runbooks", &fakeRetriever{hits: hits}, []string{"No language model is configured", "[1] Database failover — Promote the replica", "> Run `pg_ctl promote`", "[2]"}, 2, 0},
		{"nothing matched", &fakeRetriever{}, []string{NoModelMessage}, 0, 1},
		{"no runbooks at all", nil, []string{NoModelMessage}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DB: testPool}
			if tt.retriever != nil {
				cfg.Retriever = tt.retriever
			}
			e := New(cfg)
			user := mustUser(t)
			conv := mustConversation(t, user)
			var streamed string
			rep, err := e.Respond(context.Background(), Turn{UserID: user, ConversationID: conv, Text: "how to fail over the db", Source: "console"},
				func(s string) { streamed += s })
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(rep.Text, w) {
					t.Errorf("answer %q lacks %q", rep.Text, w)
				}
			}
			if streamed != rep.Text {
				t.Errorf("streamed %q, want the answer", streamed)
			}
			if len(rep.Citations) != tt.wantCites {
				t.Errorf("citations = %d, want %d", len(rep.Citations), tt.wantCites)
			}
			if rep.Usage.Model != ModelNone || rep.Usage.CostMicroUSD != 0 || rep.Usage.TotalTokens != 0 {
				t.Errorf("usage = %+v, want model none at zero cost", rep.Usage)
			}
			if n := ledgerRows(t, user); n != 1 {
				t.Errorf("ledger rows = %d, want 1", n)
			}
			if tt.retriever != nil && len(tt.retriever.gaps) != tt.wantGaps {
				t.Errorf("gaps = %d, want %d", len(tt.retriever.gaps), tt.wantGaps)
			}
		})
	}
}

func TestRespondCitesRunbooksToTheModel(t *testing.T) {
	r := &fakeRetriever{hits: []knowledge.Result{{Document: "Disk full", Section: "Free space", Path: "disk.md", Score: 1,
		Snippet: "Delete old logs", Content: "Delete logs older than 7 days in /var/log/app."}}}
	llm := &fakeLLM{text: "Delete old logs [1].", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 5}}
	e := New(Config{DB: testPool, LLM: llm, Retriever: r})
	user := mustUser(t)
	rep, err := e.Respond(context.Background(), Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "disk full", Source: "api"}, nil)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	msgs := llm.calls()[0].Messages
	if len(msgs) != 3 || msgs[1].Role != ChatSystem || !strings.Contains(msgs[1].Content, "[1] Disk full — Free space (disk.md)") ||
		!strings.Contains(msgs[1].Content, "older than 7 days") {
		t.Errorf("request = %+v, want the runbook excerpt as a second system message", msgs)
	}
	want := []Citation{{Document: "Disk full", Section: "Free space", Path: "disk.md", Score: 1, Snippet: "Delete old logs"}}
	if len(rep.Citations) != 1 || rep.Citations[0] != want[0] {
		t.Errorf("citations = %+v, want %+v", rep.Citations, want)
	}
	var meta messageMeta
	if err := json.Unmarshal(rep.AssistantMessage.Metadata, &meta); err != nil || len(meta.Citations) != 1 || meta.Citations[0] != want[0] {
		t.Errorf("stored citations = %+v (%v), want %+v", meta.Citations, err, want)
	}
	if len(r.gaps) != 0 {
		t.Errorf("gaps = %v, want none", r.gaps)
	}
}

func TestRespondBudget(t *testing.T) {
	ctx := context.Background()
	t.Run("exceeded: no model call, nothing stored", func(t *testing.T) {
		llm := &fakeLLM{text: "x"}
		b := &fakeBudget{refuse: &usage.BudgetExceededError{Scope: "user", LimitMicroUSD: 5_000_000, SpentMicroUSD: 5_000_100}}
		e := New(Config{DB: testPool, LLM: llm, Budget: b})
		user := mustUser(t)
		conv := mustConversation(t, user)
		_, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "api"}, nil)
		var be *usage.BudgetExceededError
		if !errors.As(err, &be) {
			t.Fatalf("error = %v, want *usage.BudgetExceededError", err)
		}
		if !strings.Contains(UserMessage(err), "$5.00") {
			t.Errorf("UserMessage = %q, want it to name the $5.00 limit", UserMessage(err))
		}
		if len(llm.calls()) != 0 || messageRows(t, conv) != 0 || ledgerRows(t, user) != 0 || b.cancel != 0 {
			t.Errorf("calls %d, messages %d, ledger %d, cancels %d; want all 0", len(llm.calls()), messageRows(t, conv), ledgerRows(t, user), b.cancel)
		}
	})
	t.Run("warning becomes the notice; settled once", func(t *testing.T) {
		llm := &fakeLLM{text: "ok", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}}
		b := &fakeBudget{warning: "80% of your monthly budget is used"}
		e := New(Config{DB: testPool, LLM: llm, Budget: b})
		user := mustUser(t)
		rep, err := e.Respond(ctx, Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "hi", Source: "api"}, nil)
		if err != nil {
			t.Fatalf("Respond: %v", err)
		}
		if rep.Notice != b.warning || b.settled != 1 || b.cancel != 0 {
			t.Errorf("notice %q, settled %d, cancelled %d; want the warning, 1, 0", rep.Notice, b.settled, b.cancel)
		}
	})
	t.Run("model failure cancels the admission", func(t *testing.T) {
		llm := &fakeLLM{err: &ModelError{Kind: ModelUnavailable, Status: 503, Err: errors.New("down")}}
		b := &fakeBudget{}
		e := New(Config{DB: testPool, LLM: llm, Budget: b})
		user := mustUser(t)
		conv := mustConversation(t, user)
		_, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "api"}, nil)
		var me *ModelError
		if !errors.As(err, &me) {
			t.Fatalf("error = %v, want *ModelError", err)
		}
		if b.settled != 0 || b.cancel != 1 || messageRows(t, conv) != 0 || ledgerRows(t, user) != 0 {
			t.Errorf("settled %d, cancelled %d, messages %d, ledger %d; want 0, 1, 0, 0", b.settled, b.cancel, messageRows(t, conv), ledgerRows(t, user))
		}
	})
}

func TestRespondThreadConversation(t *testing.T) {
	ctx := context.Background()
	llm := &fakeLLM{text: "noted", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}}
	e := New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	key := &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: uuid.NewString()}
	first, err := e.Respond(ctx, Turn{UserID: user, Thread: key, Text: "db-2 is slow since the deploy\nmore detail", Source: "slack"}, nil)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	second, err := e.Respond(ctx, Turn{UserID: user, Thread: key, Text: "still slow", Source: "slack"}, nil)
	if err != nil {
		t.Fatalf("second: %v", err)
	}
	if first.AssistantMessage.ConversationID != second.AssistantMessage.ConversationID {
		t.Errorf("two conversations for one thread")
	}
	c, err := conversations.NewStore(testPool).Lookup(ctx, first.AssistantMessage.ConversationID)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if c.Title != "db-2 is slow since the deploy" || c.Source != "slack" || c.Thread == nil || *c.Thread != *key {
		t.Errorf("conversation = %+v, want titled from the first line, slack, with the thread key", c)
	}
	msgs := llm.calls()[1].Messages
	if len(msgs) != 4 || msgs[1].Content != "db-2 is slow since the deploy\nmore detail" || msgs[2].Role != ChatAssistant {
		t.Errorf("second request = %+v, want system, the first exchange, the new message", msgs)
	}
}

func TestFitContextDropsOldestFirst(t *testing.T) {
	system := []ChatMessage{{Role: ChatSystem, Content: "sys"}}
	var history []conversations.Message
	for i, text := range []string{"one one one one", "two two two two", "three three three", "four four four four"} {
		role := conversations.RoleUser
		if i%2 == 1 {
			role = conversations.RoleAssistant
		}
		history = append(history, conversations.Message{Role: role, Content: text})
	}
	base := EstimateMessages([]ChatMessage{system[0], {Role: ChatUser, Content: "new"}})
	per := tokensPerMessage + EstimateTokens("four four four four")
	tests := []struct {
		budget      int
		wantHistory []string
		wantDropped int
	}{
		{budget: 10_000, wantHistory: []string{"one one one one", "two two two two", "three three three", "four four four four"}},
		{budget: base + 2*per, wantHistory: []string{"three three three", "four four four four"}, wantDropped: 2},
		{budget: base + per, wantHistory: []string{"four four four four"}, wantDropped: 3},
		{budget: 1, wantHistory: nil, wantDropped: 4}, // system and the new message are kept regardless
	}
	for _, tt := range tests {
		got, dropped := fitContext(system, history, "new", tt.budget, false)
		if got[0].Content != "sys" || got[len(got)-1].Content != "new" {
			t.Errorf("budget %d: %+v does not keep the system prompt and the new message", tt.budget, got)
			continue
		}
		var hist []string
		for _, m := range got[1 : len(got)-1] {
			hist = append(hist, m.Content)
		}
		if strings.Join(hist, "|") != strings.Join(tt.wantHistory, "|") || dropped != tt.wantDropped {
			t.Errorf("budget %d: history %q dropped %d, want %q dropped %d", tt.budget, hist, dropped, tt.wantHistory, tt.wantDropped)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	tests := map[string]int{"": 0, "abcd": 1, "abcde": 2, "héllo": 1 + 1, "服务重启": 4, strings.Repeat("x", 400): 100}
	for in, want := range tests {
		if got := EstimateTokens(in); got != want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", in, got, want)
		}
	}
	if got := EstimateMessages([]ChatMessage{{Content: "abcd"}, {Content: "abcd"}}); got != 3+2*(4+1) {
		t.Errorf("EstimateMessages = %d, want 13", got)
	}
}

func TestTruncateTokens(t *testing.T) {
	s := strings.Repeat("word ", 200) // 250 tokens
	got := truncateTokens(s, 50)
	if n := EstimateTokens(got); n > 50 || n < 45 || !strings.HasSuffix(got, " …") {
		t.Errorf("truncateTokens to 50 gave %d tokens: %q", n, got)
	}
	if got := truncateTokens("short", 50); got != "short" {
		t.Errorf("truncateTokens(short) = %q", got)
	}
	if got := truncateTokens("服务重启服务重启", 5); !strings.HasSuffix(got, " …") || !strings.HasPrefix(got, "服务重") {
		t.Errorf("truncateTokens(cjk) = %q, want it cut on a rune boundary", got)
	}
}

func TestUserMessageNamesTheProblem(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&ModelError{Kind: ModelTimeout}, "did not answer in time"},
		{&ModelError{Kind: ModelRateLimited, Status: 429}, "rate-limiting"},
		{&ModelError{Kind: ModelUnavailable, Status: 503}, "unavailable"},
		{&ModelError{Kind: ModelRejected, Status: 401}, "HTTP 401"},
		{&conversations.TooLargeError{Field: "content", Limit: 16384}, "16 KiB"},
		{fmt.Errorf("admit: %w", &usage.BudgetExceededError{Scope: usage.ScopeUser, LimitMicroUSD: 5_000_000, SpentMicroUSD: 5_000_100,
			ResetsAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}), "monthly budget of $5.00 is used up"},
		{errors.New("boom"), "went wrong"},
	}
	for _, tt := range tests {
		got := UserMessage(tt.err)
		if !strings.Contains(got, tt.want) {
			t.Errorf("UserMessage(%v) = %q, want it to contain %q", tt.err, got, tt.want)
		}
		if strings.Count(got, "Sorry") > 1 || strings.Contains(got, "..") {
			t.Errorf("UserMessage(%v) = %q, reads badly", tt.err, got)
		}
	}
}

// A turn that names no conversation starts one in the transaction that
// stores it: a failed turn leaves no empty conversation behind.
func TestRespondNewConversationOnlyWhenStored(t *testing.T) {
	ctx := context.Background()
	user := mustUser(t)
	conversationsOf := func() int {
		return countRows(t, `SELECT count(*) FROM conversations WHERE owner_id = $1`, user)
	}
	down := &fakeLLM{err: &ModelError{Kind: ModelUnavailable, Status: 503, Err: errors.New("down")}}
	_, err := New(Config{DB: testPool, LLM: down}).Respond(ctx,
		Turn{UserID: user, Text: "disk full on db-1", Source: "console", Key: "console:" + uuid.NewString()}, nil)
	var me *ModelError
	if !errors.As(err, &me) {
		t.Fatalf("Respond with the model down: got %v, want a *ModelError", err)
	}
	if n := conversationsOf(); n != 0 {
		t.Errorf("conversations after a failed turn = %d, want 0", n)
	}

	up := &fakeLLM{text: "Free space.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 2}}
	rep, err := New(Config{DB: testPool, LLM: up}).Respond(ctx,
		Turn{UserID: user, Text: "disk full on db-1", Source: "console", Key: "console:" + uuid.NewString()}, nil)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	conv := rep.AssistantMessage.ConversationID
	if conv == uuid.Nil || rep.UserMessage.ConversationID != conv {
		t.Fatalf("messages in conversations %s / %s, want one new conversation", rep.UserMessage.ConversationID, conv)
	}
	if n := conversationsOf(); n != 1 {
		t.Errorf("conversations = %d, want 1", n)
	}
	c, err := conversations.NewStore(testPool).Get(ctx, user, conv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Title != "disk full on db-1" || c.Source != "console" || c.MessageCount != 2 {
		t.Errorf("conversation = %+v, want title from the question, source console, 2 messages", c)
	}
	var ledgerConv uuid.UUID
	if err := testPool.QueryRow(ctx, `SELECT conversation_id FROM usage_events WHERE message_id = $1`, rep.AssistantMessage.ID).Scan(&ledgerConv); err != nil || ledgerConv != conv {
		t.Errorf("ledger conversation = %s (%v), want %s", ledgerConv, err, conv)
	}
}

// Every failure kind is sorted once: whether the person is told now (Final)
// and what the HTTP API maps it to (Kind).
func TestClassify(t *testing.T) {
	tests := []struct {
		err   error
		kind  string
		final bool
	}{
		{&conversations.ValidationError{Field: "content", Reason: "must not be empty"}, FailInvalid, true},
		{fmt.Errorf("wrapped: %w", &conversations.TooLargeError{Field: "content", Limit: 16384}), FailTooLarge, true},
		{fmt.Errorf("get: %w", conversations.ErrNotFound), FailNotFound, true},
		{&usage.BudgetExceededError{Scope: usage.ScopeUser, LimitMicroUSD: 5_000_000}, FailBudget, true},
		{&usage.UnpricedModelError{Model: "llama3"}, FailUnpriced, true},
		{&ModelError{Kind: ModelTimeout}, FailModelDown, true},
		{&ModelError{Kind: ModelRateLimited, RetryAfter: 7 * time.Second}, FailModelDown, true},
		{&ModelError{Kind: ModelUnavailable, Status: 503}, FailModelDown, true},
		{&ModelError{Kind: ModelRejected, Status: 401}, FailModelRefused, true},
		{&ModelError{Kind: ModelBadAnswer}, FailModelRefused, true},
		{errors.New("connection reset by peer"), FailInternal, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			f := Classify(tt.err)
			if f.Kind != tt.kind || f.Final != tt.final || f.Message == "" {
				t.Errorf("got %+v, want kind %s, final %v and a message", f, tt.kind, tt.final)
			}
		})
	}
	if f := Classify(&ModelError{Kind: ModelRateLimited, RetryAfter: 7 * time.Second}); f.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter = %v, want the provider's 7s", f.RetryAfter)
	}
}

// A message in the thread of an archived conversation reopens it: someone
// is talking in it again, and it must not stay hidden from list.
func TestThreadTurnReopensArchivedConversation(t *testing.T) {
	ctx := context.Background()
	llm := &fakeLLM{text: "Back on it.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}}
	e := New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	thread := &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: uuid.NewString()}
	first, err := e.Respond(ctx, Turn{UserID: user, Thread: thread, Text: "disk full on web-3", Source: "slack"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := first.AssistantMessage.ConversationID
	s := conversations.NewStore(testPool)
	if _, err := s.Archive(ctx, user, conv); err != nil {
		t.Fatal(err)
	}
	again, err := e.Respond(ctx, Turn{UserID: user, Thread: thread, Text: "it filled up again", Source: "slack"}, nil)
	if err != nil || again.AssistantMessage.ConversationID != conv {
		t.Fatalf("second turn in %v (%v), want the same conversation %v", again.AssistantMessage.ConversationID, err, conv)
	}
	if c, err := s.Get(ctx, user, conv); err != nil || c.IsArchived() {
		t.Errorf("conversation archived %v (%v), want reopened", c.IsArchived(), err)
	}
}
