package bot

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/sqlstats"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// BenchmarkEngineTurn measures the engine's own cost per turn with an
// instant in-process model: validation, redaction, the idempotency lookup,
// history, retrieval, context fitting and the one-transaction store of two
// messages and a ledger row. It reports p50 and p99 per turn; the target is
// p50 < 3 ms. Compare turns/s with `pgbench -N` on the same machine (each
// turn is about a dozen statements, a pgbench -N transaction five).
func BenchmarkEngineTurn(b *testing.B) {
	db, sql := testdb.Traced(b, testPool)
	ix := knowledge.New(db, time.Now)
	if _, err := ix.Sync(context.Background(), "../docs/runbooks", nil); err != nil {
		b.Logf("no runbooks indexed: %v", err)
	}
	for _, bc := range []struct {
		name      string
		retriever Retriever
	}{
		{"no-runbooks", nil},
		{"with-runbook-search", ix},
	} {
		b.Run(bc.name, func(b *testing.B) {
			llm := &fakeLLM{text: "Restart the pod, then check the logs for OOM kills.", model: "gpt-4o-mini",
				usage: &ProviderUsage{PromptTokens: 400, CompletionTokens: 40}}
			cfg := Config{DB: db, LLM: llm, Retriever: bc.retriever}
			e := New(cfg)
			user := mustUser(b)
			ctx := context.Background()
			var conv uuid.UUID
			durs := make([]time.Duration, 0, b.N)
			var before sqlstats.Stats
			i := 0
			for b.Loop() {
				if i%20 == 0 { // a conversation of 20 turns, then a new one
					b.StopTimer()
					conv = mustConversation(b, user)
					llm.reqs = llm.reqs[:0]
					if i == 0 {
						before = sql.Stats()
					}
					b.StartTimer()
				}
				t0 := time.Now()
				_, err := e.Respond(ctx, Turn{UserID: user, ConversationID: conv, Source: "api",
					Text: "pod api-7 keeps restarting after deploy " + strconv.Itoa(i) + ", what should I check?",
					Key:  "bench:" + uuid.NewString()}, nil)
				durs = append(durs, time.Since(t0))
				if err != nil {
					b.Fatalf("Respond: %v", err)
				}
				i++
			}
			after := sql.Stats()
			slices.Sort(durs)
			b.ReportMetric(float64(after.Statements-before.Statements)/float64(len(durs)), "stmts/turn")
			b.ReportMetric(float64(after.RoundTrips-before.RoundTrips)/float64(len(durs)), "roundtrips/turn")
			pct := func(p float64) float64 {
				return float64(durs[min(len(durs)-1, int(p*float64(len(durs))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
