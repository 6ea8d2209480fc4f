package usage

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
)

var testPool *pgxpool.Pool

func TestMain(m *testing.M) { os.Exit(testdb.RunMain(m, &testPool)) }

func mustUser(tb testing.TB, handle string) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	if err := testPool.QueryRow(context.Background(),
		`INSERT INTO users (handle) VALUES ($1) RETURNING id`, handle).Scan(&id); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return id
}

func TestRecord(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)
	tests := []struct {
		name        string
		e           Event
		wantOutcome string
		wantPriced  bool
	}{
		{"stored by default", Event{Source: "api", Model: "gpt-4o-mini", PromptTokens: 1000, CachedTokens: 400,
			CompletionTokens: 500, CostMicroUSD: 420, PriceVersion: BuiltinVersion, Estimated: true, OccurredAt: at}, "stored", true},
		{"unstored on an unpriced model", Event{Source: "slack", Model: "llama3.1:8b", PromptTokens: 10, CompletionTokens: 5,
			PriceVersion: BuiltinVersion, Outcome: OutcomeUnstored, Unpriced: true, OccurredAt: at}, "unstored", false},
		{"interrupted", Event{Source: "api", Model: "gpt-4o", PromptTokens: 7, CompletionTokens: 3, CostMicroUSD: 48,
			Estimated: true, Outcome: OutcomeInterrupted, OccurredAt: at}, "interrupted", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := mustUser(t, "ledger-"+uuid.NewString()[:8])
			e := tt.e
			e.UserID = user
			if err := Record(ctx, testPool, e); err != nil {
				t.Fatalf("Record: %v", err)
			}
			var got Event
			var conv, msg *uuid.UUID
			var outcome string
			var priced bool
			err := testPool.QueryRow(ctx, `SELECT user_id, conversation_id, message_id, source, model, prompt_tokens,
				completion_tokens, cached_tokens, cost_micro_usd, price_version, estimated, occurred_at, outcome, priced
				FROM usage_events WHERE user_id = $1`, user).Scan(&got.UserID, &conv, &msg, &got.Source, &got.Model,
				&got.PromptTokens, &got.CompletionTokens, &got.CachedTokens, &got.CostMicroUSD, &got.PriceVersion,
				&got.Estimated, &got.OccurredAt, &outcome, &priced)
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			got.OccurredAt = got.OccurredAt.UTC()
			got.Outcome, got.Unpriced = e.Outcome, e.Unpriced // checked as columns below
			if got != e {
				t.Errorf("stored %+v, want %+v", got, e)
			}
			if outcome != tt.wantOutcome || priced != tt.wantPriced {
				t.Errorf("outcome, priced = %q, %v; want %q, %v", outcome, priced, tt.wantOutcome, tt.wantPriced)
			}
			if conv != nil || msg != nil {
				t.Errorf("conversation, message = %v, %v; want NULL, NULL", conv, msg)
			}
		})
	}

	user := mustUser(t, "ledger-"+uuid.NewString()[:8])
	for name, bad := range map[string]Event{
		"no user":                         {Model: "m", Source: "api"},
		"no model":                        {UserID: user, Source: "api"},
		"unknown outcome":                 {UserID: user, Model: "m", Source: "api", Outcome: "lost"},
		"an unstored call with a message": {UserID: user, Model: "m", Source: "api", Outcome: OutcomeUnstored, MessageID: uuid.New()},
	} {
		if err := Record(ctx, testPool, bad); err == nil {
			t.Errorf("%s: Record succeeded, want an error", name)
		}
	}
}
