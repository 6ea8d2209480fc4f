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
	user := mustUser(t, "ledger-"+uuid.NewString()[:8])
	at := time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)
	e := Event{UserID: user, Source: "api", Model: "gpt-4o-mini", PromptTokens: 1000, CachedTokens: 400,
		CompletionTokens: 500, CostMicroUSD: 420, PriceVersion: BuiltinVersion, Estimated: true, OccurredAt: at}
	if err := Record(ctx, testPool, e); err != nil {
		t.Fatalf("Record: %v", err)
	}
	var got Event
	var conv, msg *uuid.UUID
	err := testPool.QueryRow(ctx, `SELECT user_id, conversation_id, message_id, source, model, prompt_tokens,
		completion_tokens, cached_tokens, cost_micro_usd, price_version, estimated, occurred_at
		FROM usage_events WHERE user_id = $1`, user).Scan(&got.UserID, &conv, &msg, &got.Source, &got.Model,
		&got.PromptTokens, &got.CompletionTokens, &got.CachedTokens, &got.CostMicroUSD, &got.PriceVersion,
		&got.Estimated, &got.OccurredAt)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	got.OccurredAt = got.OccurredAt.UTC()
	if got != e {
		t.Errorf("stored %+v, want %+v", got, e)
	}
	if conv != nil || msg != nil {
		t.Errorf("conversation, message = %v, %v; want NULL, NULL", conv, msg)
	}

	for name, bad := range map[string]Event{
		"no user":  {Model: "m", Source: "api"},
		"no model": {UserID: user, Source: "api"},
	} {
		if err := Record(ctx, testPool, bad); err == nil {
			t.Errorf("%s: Record succeeded, want an error", name)
		}
	}
}
