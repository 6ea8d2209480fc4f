package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/usage"
)

// heldLLM answers once release is closed, counting its calls.
type heldLLM struct {
	calls   atomic.Int32
	release chan struct{}
}

func (f *heldLLM) Complete(ctx context.Context, req bot.Request, onDelta func(string)) (bot.Completion, error) {
	f.calls.Add(1)
	select {
	case <-f.release:
	case <-ctx.Done():
		return bot.Completion{}, ctx.Err()
	}
	return bot.Completion{Text: "Once.", FinishReason: "stop", Model: "gpt-4o-mini",
		Usage: &bot.ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}, nil
}

// countingResponder counts the turns that reached the engine.
type countingResponder struct {
	Responder
	entered atomic.Int32
}

func (c *countingResponder) Respond(ctx context.Context, t bot.Turn, onDelta func(string)) (bot.Reply, error) {
	c.entered.Add(1)
	return c.Responder.Respond(ctx, t, onDelta)
}

// Ten POSTs with one Idempotency-Key at once: one model call, one stored
// reply and one ledger row, and ten identical answers.
func TestSendMessageConcurrentIdempotencyKey(t *testing.T) {
	llm := &heldLLM{release: make(chan struct{})}
	cr := &countingResponder{Responder: bot.New(bot.Config{DB: testPool, LLM: llm})}
	a := newTestAPI(t, func(d *Deps) { d.Engine = cr })
	u, tok := mustToken(t, "tenfold-"+uuid.NewString()[:8], false)
	conv := mustConversationID(t, a, tok)

	const n = 10
	var wg sync.WaitGroup
	bodies := make([]string, n)
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/conversations/"+conv+"/messages", strings.NewReader(`{"content":"restart?"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Idempotency-Key", "ten-at-once")
			resp, err := a.srv.Client().Do(req)
			if err != nil {
				t.Errorf("POST %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			bodies[i], statuses[i] = string(b), resp.StatusCode
		})
	}
	// The model answers only once all ten are in the engine and the first
	// is in the model: the other nine are then waiting or (were the claim
	// broken) calling the model too.
	deadline := time.Now().Add(20 * time.Second)
	for (cr.entered.Load() < n || llm.calls.Load() < 1) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(llm.release)
	wg.Wait()

	if got := llm.calls.Load(); got != 1 {
		t.Errorf("model calls = %d, want 1", got)
	}
	for i := range n {
		if statuses[i] != http.StatusCreated || bodies[i] != bodies[0] {
			t.Errorf("answer %d: %d %s; want 201 and the same body as answer 0: %s", i, statuses[i], bodies[i], bodies[0])
		}
	}
	if n := countTable(t, `SELECT count(*) FROM usage_events WHERE user_id = $1`, u.ID); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
	if n := countTable(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
}

// hookLLM runs during while the model is answering, then answers.
type hookLLM struct {
	during func()
}

func (f *hookLLM) Complete(ctx context.Context, req bot.Request, onDelta func(string)) (bot.Completion, error) {
	f.during()
	return bot.Completion{Text: "Too late.", FinishReason: "stop", Model: "gpt-4o-mini",
		Usage: &bot.ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}, nil
}

// A turn whose store fails after the model answered (its conversation was
// deleted meanwhile) leaves its ledger row, and that row counts in the
// caller's usage, the admin usage, the budget figures and the budget's
// refusal.
func TestUnstoredCallCountsEverywhere(t *testing.T) {
	var conv string
	llm := &hookLLM{}
	a, db, mk := newOrgAPI(t, func(d *Deps) {
		d.Budgets = usage.NewBudgets(d.DB, usage.BudgetOptions{})
		d.Engine = bot.New(bot.Config{DB: d.DB, LLM: llm, Model: "gpt-4o-mini", Budget: d.Budgets})
	})
	llm.during = func() {
		if _, err := db.Exec(context.Background(), `DELETE FROM conversations WHERE id = $1`, conv); err != nil {
			t.Errorf("delete conversation: %v", err)
		}
	}
	_, admin := mk("spend-admin", true)
	u, tok := mk("spender", false)
	conv = mustConversationID(t, a, tok)

	// 1000 x 0.15 + 500 x 0.60 = 450 micro-USD, paid though not stored.
	resp, body := a.do("POST", "/api/v1/conversations/"+conv+"/messages", tok, map[string]string{"content": "hi"})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("send: %d %s, want 404 (the conversation went away)", resp.StatusCode, body)
	}
	var outcome string
	if err := db.QueryRow(context.Background(), `SELECT outcome FROM usage_events WHERE user_id = $1 AND conversation_id IS NULL`,
		u.ID).Scan(&outcome); err != nil || outcome != "unstored" {
		t.Errorf("ledger outcome = %q (%v), want one unstored row", outcome, err)
	}

	var mine tokenUsageJSON
	a.mustDo("GET", "/api/v1/tokens/usage?days=1", tok, nil, http.StatusOK, &mine)
	if got := mine.Totals; got.CostMicroUSD != 450 || got.PromptTokens != 1000 || got.CompletionTokens != 500 || got.Conversations != 0 {
		t.Errorf("/tokens/usage totals = %+v, want 450 micro-USD, 1000 + 500 tokens, 0 conversations", got)
	}
	var org adminUsageJSON
	a.mustDo("GET", "/api/v1/admin/usage?group_by=user&days=1", admin, nil, http.StatusOK, &org)
	if len(org.Rows) != 1 || org.Rows[0].Label != "spender" || org.Rows[0].CostMicroUSD != 450 || org.Totals.CostMicroUSD != 450 {
		t.Errorf("/admin/usage = %+v, want spender's 450 micro-USD", org)
	}

	var budgets budgetsJSON
	a.mustDo("PUT", "/api/v1/admin/budgets", admin, `{"users":[{"user":"spender","limit_usd":"0.00045"}]}`, http.StatusOK, &budgets)
	if len(budgets.Users) != 1 || budgets.Users[0].SpentMicroUSD != 450 {
		t.Errorf("budgets = %+v, want spender at 450 micro-USD spent", budgets.Users)
	}
	conv = mustConversationID(t, a, tok)
	resp, body = a.do("POST", "/api/v1/conversations/"+conv+"/messages", tok, map[string]string{"content": "again"})
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("send over the budget: %d %s, want 402", resp.StatusCode, body)
	}
}

// While a budget applies, a turn on a model with no price is refused with
// 503 and a detail naming the model and OPSBOT_PRICES_FILE; the model is
// not called.
func TestSendMessageUnpricedModelUnderBudget(t *testing.T) {
	llm := &heldLLM{release: make(chan struct{})}
	close(llm.release)
	budgets := usage.NewBudgets(testPool, usage.BudgetOptions{})
	a := newSendAPI(t, bot.Config{LLM: llm, Model: "qwen2.5:7b", Budget: budgets})
	u, tok := mustToken(t, "unpriced-"+uuid.NewString()[:8], false)
	limit := int64(1_000_000)
	if err := budgets.Set(context.Background(), []usage.BudgetChange{{UserID: u.ID, Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	conv := mustConversationID(t, a, tok)
	resp, body := a.do("POST", "/api/v1/conversations/"+conv+"/messages", tok, map[string]string{"content": "hi"})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d %s, want 503", resp.StatusCode, body)
	}
	p := problemOf(t, resp, body)
	if !strings.Contains(p.Detail, `"qwen2.5:7b"`) || !strings.Contains(p.Detail, "OPSBOT_PRICES_FILE") {
		t.Errorf("detail = %q, want it to name the model and OPSBOT_PRICES_FILE", p.Detail)
	}
	if n := llm.calls.Load(); n != 0 {
		t.Errorf("model calls = %d, want 0", n)
	}
}
