package bot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
)

// spendRow is a ledger row as the spend tests read it.
type spendRow struct {
	conv, msg          bool // conversation_id, message_id set
	prompt, completion int
	cost               int64
	model, outcome     string
	estimated, priced  bool
	source             string
	cached             int
}

func spendRows(tb testing.TB, user uuid.UUID) []spendRow {
	tb.Helper()
	rows, err := testPool.Query(context.Background(), `SELECT conversation_id IS NOT NULL, message_id IS NOT NULL,
		prompt_tokens, completion_tokens, cost_micro_usd, model, outcome, estimated, priced, source, cached_tokens
		FROM usage_events WHERE user_id = $1 ORDER BY id`, user)
	if err != nil {
		tb.Fatalf("read ledger: %v", err)
	}
	defer rows.Close()
	var out []spendRow
	for rows.Next() {
		var r spendRow
		if err := rows.Scan(&r.conv, &r.msg, &r.prompt, &r.completion, &r.cost, &r.model, &r.outcome, &r.estimated,
			&r.priced, &r.source, &r.cached); err != nil {
			tb.Fatalf("scan ledger: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read ledger: %v", err)
	}
	return out
}

// A model call whose turn cannot be stored is still on the ledger, by
// itself, with the reason; the budget's reservation is settled with it.
func TestRespondRecordsUnstoredCalls(t *testing.T) {
	ctx := context.Background()
	t.Run("the conversation is deleted while the model answers", func(t *testing.T) {
		// 1000 x 0.15 + 500 x 0.60 = 450 micro-USD.
		llm := &fakeLLM{text: "Gone.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}
		b := &fakeBudget{}
		e := New(Config{DB: testPool, LLM: llm, Budget: b})
		user := mustUser(t)
		conv := mustConversation(t, user)
		e.afterModel = func(ctx context.Context) {
			if err := conversations.NewStore(testPool).Delete(ctx, user, conv); err != nil {
				t.Errorf("delete conversation: %v", err)
			}
		}
		_, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "api", Key: "api:" + uuid.NewString()}, nil)
		if !errors.Is(err, conversations.ErrNotFound) {
			t.Fatalf("Respond: %v, want conversations.ErrNotFound", err)
		}
		want := []spendRow{{prompt: 1000, completion: 500, cost: 450, model: "gpt-4o-mini", outcome: "unstored", priced: true, source: "api"}}
		if got := spendRows(t, user); !slices.Equal(got, want) {
			t.Errorf("ledger = %+v, want %+v", got, want)
		}
		if b.settled != 1 || b.cancel != 0 {
			t.Errorf("budget settled %d, cancelled %d; want 1, 0", b.settled, b.cancel)
		}
	})
	t.Run("another delivery stored the turn first", func(t *testing.T) {
		llm := &fakeLLM{text: "Late.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 100, CompletionTokens: 20}}
		e := New(Config{DB: testPool, LLM: llm})
		user := mustUser(t)
		conv := mustConversation(t, user)
		key := "slack:Ev" + uuid.NewString()
		var first conversations.Message
		e.afterModel = func(ctx context.Context) {
			// A holder whose claim had lapsed stores the turn meanwhile.
			s := conversations.NewStore(testPool)
			for _, m := range []conversations.NewMessage{
				{TurnKey: key, ConversationID: conv, AuthorID: &user, Role: conversations.RoleUser, Content: "hi"},
				{TurnKey: key, ConversationID: conv, Role: conversations.RoleAssistant, Content: "Early.", Metadata: []byte(`{"model":"gpt-4o-mini"}`)},
			} {
				var err error
				if first, err = s.AppendMessage(ctx, m); err != nil {
					t.Errorf("store the other delivery: %v", err)
				}
			}
		}
		rep, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "slack", Key: key}, nil)
		if err != nil || !rep.Replayed || rep.Text != "Early." || rep.AssistantMessage.ID != first.ID {
			t.Fatalf("Respond: %q replayed %v, %v; want the other delivery's reply", rep.Text, rep.Replayed, err)
		}
		// 100 x 0.15 + 20 x 0.60 = 27 micro-USD.
		want := []spendRow{{prompt: 100, completion: 20, cost: 27, model: "gpt-4o-mini", outcome: "duplicate", priced: true, source: "slack"}}
		if got := spendRows(t, user); !slices.Equal(got, want) {
			t.Errorf("ledger = %+v, want %+v", got, want)
		}
	})
	t.Run("cut off mid-answer", func(t *testing.T) {
		// The request is the system prompt "sys" and the question "hi?":
		// 3 + (4 + 1) + (4 + 1) = 13 prompt tokens by the local estimate;
		// the 11 bytes "Restart the" that came are 3 completion tokens.
		// 13 x 0.15 + 3 x 0.60 = 3.75, rounded half up to 4 micro-USD.
		llm := &fakeLLM{model: "gpt-4o-mini", partial: "Restart the", err: &ModelError{Kind: ModelUnavailable, Err: errors.New("stream ended")}}
		b := &fakeBudget{}
		e := New(Config{DB: testPool, LLM: llm, Budget: b, SystemPrompt: "sys"})
		user := mustUser(t)
		conv := mustConversation(t, user)
		var streamed string
		_, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi?", Source: "console"}, func(d string) { streamed += d })
		var me *ModelError
		if !errors.As(err, &me) || streamed != "Restart the" {
			t.Fatalf("Respond: %v (streamed %q), want the model error after the partial answer", err, streamed)
		}
		want := []spendRow{{prompt: 13, completion: 3, cost: 4, model: "gpt-4o-mini", outcome: "interrupted", estimated: true, priced: true, source: "console"}}
		if got := spendRows(t, user); !slices.Equal(got, want) {
			t.Errorf("ledger = %+v, want %+v", got, want)
		}
		if messageRows(t, conv) != 0 || b.settled != 1 || b.cancel != 0 {
			t.Errorf("messages %d, budget settled %d, cancelled %d; want 0, 1, 0", messageRows(t, conv), b.settled, b.cancel)
		}
	})
	t.Run("a failure before any words is not billed", func(t *testing.T) {
		llm := &fakeLLM{model: "gpt-4o-mini", err: &ModelError{Kind: ModelTimeout, Err: errors.New("silent")}}
		e := New(Config{DB: testPool, LLM: llm})
		user := mustUser(t)
		_, err := e.Respond(ctx, Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "hi?", Source: "api"}, nil)
		var me *ModelError
		if !errors.As(err, &me) {
			t.Fatalf("Respond: %v, want a model error", err)
		}
		if n := ledgerRows(t, user); n != 0 {
			t.Errorf("ledger rows = %d, want 0", n)
		}
	})
}

// While a budget applies to the user or the org, a turn on a model with no
// price is refused before the model is called; with no budget it is
// answered and recorded at cost 0, flagged unpriced.
func TestRespondUnpricedModel(t *testing.T) {
	ctx := context.Background()
	budgets := usage.NewBudgets(testPool, usage.BudgetOptions{})
	limit := int64(5_000_000)
	tests := []struct {
		name      string
		budget    func(user uuid.UUID) []usage.BudgetChange
		wantRefus bool
	}{
		{"user budget", func(u uuid.UUID) []usage.BudgetChange { return []usage.BudgetChange{{UserID: u, Limit: &limit}} }, true},
		{"org budget", func(uuid.UUID) []usage.BudgetChange { return []usage.BudgetChange{{UserID: uuid.Nil, Limit: &limit}} }, true},
		{"no budget", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := mustUser(t)
			if tt.budget != nil {
				if err := budgets.Set(ctx, tt.budget(user)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _, _ = testPool.Exec(context.Background(), `DELETE FROM budgets WHERE user_id IS NULL`) })
			}
			llm := &fakeLLM{text: "Local answer.", model: "llama3.1:8b", usage: &ProviderUsage{PromptTokens: 300, CompletionTokens: 40}}
			e := New(Config{DB: testPool, LLM: llm, Model: "llama3.1:8b", Budget: budgets})
			conv := mustConversation(t, user)
			rep, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "api"}, nil)
			if !tt.wantRefus {
				if err != nil || rep.Text != "Local answer." || rep.Usage.CostMicroUSD != 0 {
					t.Fatalf("Respond: %q cost %d, %v; want the answer at cost 0", rep.Text, rep.Usage.CostMicroUSD, err)
				}
				want := []spendRow{{conv: true, msg: true, prompt: 300, completion: 40, model: "llama3.1:8b", outcome: "stored", source: "api"}}
				if got := spendRows(t, user); !slices.Equal(got, want) {
					t.Errorf("ledger = %+v, want %+v (priced false)", got, want)
				}
				return
			}
			var ue *usage.UnpricedModelError
			if !errors.As(err, &ue) {
				t.Fatalf("Respond: %v, want *usage.UnpricedModelError", err)
			}
			msg := UserMessage(err)
			if !strings.Contains(msg, `"llama3.1:8b"`) || !strings.Contains(msg, "OPSBOT_PRICES_FILE") {
				t.Errorf("UserMessage = %q, want it to name the model and OPSBOT_PRICES_FILE", msg)
			}
			if n := len(llm.calls()); n != 0 {
				t.Errorf("model calls = %d, want 0", n)
			}
			if n := ledgerRows(t, user) + messageRows(t, conv) +
				countRows(t, `SELECT count(*) FROM budget_reservations WHERE user_id = $1`, user); n != 0 {
				t.Errorf("ledger rows + messages + reservations = %d, want 0", n)
			}
		})
	}
}
