package usage

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/testdb"
)

// rollupDump is every rollup row as text, for comparison.
func rollupDump(q func(string) []string) map[string][]string {
	return map[string][]string{
		"user_15m": q(`SELECT concat_ws(' ', user_id, bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd) FROM usage_rollup_user_15m ORDER BY 1`),
		"user_day": q(`SELECT concat_ws(' ', user_id, day, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd) FROM usage_rollup_user_day ORDER BY 1`),
		"org_15m":  q(`SELECT concat_ws(' ', bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd) FROM usage_rollup_org_15m ORDER BY 1`),
	}
}

// TestRebuildMatchesTrigger: the rollups the trigger kept row by row equal
// the ones rebuilt from the ledger in bulk.
func TestRebuildMatchesTrigger(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	var users []uuid.UUID
	for _, h := range []string{"r1", "r2"} {
		var id uuid.UUID
		if err := db.QueryRow(ctx, `INSERT INTO users (handle) VALUES ($1) RETURNING id`, h).Scan(&id); err != nil {
			t.Fatal(err)
		}
		users = append(users, id)
	}
	base := time.Date(2026, 3, 31, 23, 50, 0, 0, time.UTC)
	for i := range 40 {
		e := Event{UserID: users[i%2], Source: []string{"api", "slack", "embedding"}[i%3], Model: []string{"gpt-4o", "gpt-4o-mini", "o3"}[i%3],
			PromptTokens: i * 10, CompletionTokens: i, CachedTokens: i % 4, CostMicroUSD: int64(i * 7), OccurredAt: base.Add(time.Duration(i*7) * time.Minute)}
		if err := Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	q := func(sql string) []string {
		rows, err := db.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	before := rollupDump(q)
	if len(before["user_15m"]) < 10 || len(before["user_day"]) != 4 {
		t.Fatalf("trigger rollups look wrong: %d 15-minute rows, %d day rows", len(before["user_15m"]), len(before["user_day"]))
	}
	if err := RebuildRollups(ctx, db); err != nil {
		t.Fatal(err)
	}
	after := rollupDump(q)
	for k := range before {
		if len(before[k]) != len(after[k]) {
			t.Fatalf("%s: %d rows by trigger, %d rebuilt", k, len(before[k]), len(after[k]))
		}
		for i := range before[k] {
			if before[k][i] != after[k][i] {
				t.Errorf("%s row %d: trigger %q, rebuilt %q", k, i, before[k][i], after[k][i])
			}
		}
	}
}
