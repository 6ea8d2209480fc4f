package bot

import (
	"context"
	"errors"
	"testing"

	"github.com/apacops/opsbot/usage"
)

// The engine with the real budget keeper: spend settles in the turn's
// transaction, the warning reaches the reply, and a spent budget stops the
// next turn before the model.
func TestRespondWithRealBudgets(t *testing.T) {
	ctx := context.Background()
	budgets := usage.NewBudgets(testPool, usage.BudgetOptions{TurnEstimate: 1})
	user := mustUser(t)
	limit := int64(500)
	if err := budgets.Set(ctx, []usage.BudgetChange{{UserID: user, Limit: &limit}}); err != nil {
		t.Fatalf("set budget: %v", err)
	}
	// Each turn: 1000 x 0.15 + 500 x 0.60 = 450 micro-USD.
	llm := &fakeLLM{text: "ok", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}
	e := New(Config{DB: testPool, LLM: llm, Model: "gpt-4o-mini", Budget: budgets})
	conv := mustConversation(t, user)
	turn := func() (Reply, error) {
		return e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Text: "hi", Source: "api"}, nil)
	}
	first, err := turn()
	if err != nil || first.Notice != "" {
		t.Fatalf("first turn: %v, notice %q; want an answer without a notice", err, first.Notice)
	}
	second, err := turn() // 450 of 500 spent: admitted, with the 80% warning
	if err != nil || second.Notice == "" {
		t.Fatalf("second turn: %v, notice %q; want an answer with a warning", err, second.Notice)
	}
	_, err = turn() // 900 of 500 spent: refused
	var be *usage.BudgetExceededError
	if !errors.As(err, &be) || be.LimitMicroUSD != 500 || be.SpentMicroUSD < 900 {
		t.Fatalf("third turn: %v, want *usage.BudgetExceededError for the 500 limit", err)
	}
	if n := len(llm.calls()); n != 2 {
		t.Errorf("model calls = %d, want 2", n)
	}
	if n := ledgerRows(t, user); n != 2 {
		t.Errorf("ledger rows = %d, want 2", n)
	}
}
