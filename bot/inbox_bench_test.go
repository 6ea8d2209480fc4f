package bot

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/pgbench"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
)

// BenchmarkInboxAccept measures what a chat surface waits for before it
// may ack a delivery: Inbox.Accept, one transaction recording the event and
// enqueueing its turn job (no worker runs, so only the accept is timed). It
// reports p50 and p99 beside a single-client pgbench -N transaction on the
// same server in the same run, and their ratio.
func BenchmarkInboxAccept(b *testing.B) {
	ctx := context.Background()
	db := testdb.New(b)
	client := testriver.New(b, db, &river.Config{TestOnly: true}) // insert-only: nothing works the jobs
	traced, sql := testdb.Traced(b, db)
	inbox := NewInbox(traced, client)
	var user uuid.UUID
	if err := db.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('bench') RETURNING id`).Scan(&user); err != nil {
		b.Fatal(err)
	}
	durs := make([]time.Duration, 0, b.N)
	before := sql.Stats()
	for b.Loop() {
		ev := "Ev" + uuid.NewString()
		t0 := time.Now()
		isNew, err := inbox.Accept(ctx, ev, TurnArgs{Platform: "slack", UserID: user, Source: "slack",
			Text:   "pod api-7 keeps restarting after the deploy, what should I check?",
			Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: ev}})
		durs = append(durs, time.Since(t0))
		if err != nil || !isNew {
			b.Fatalf("Accept: %v, %v", isNew, err)
		}
	}
	b.StopTimer()
	after := sql.Stats()
	b.ReportMetric(float64(after.Statements-before.Statements)/float64(len(durs)), "stmts/accept")
	b.ReportMetric(float64(after.RoundTrips-before.RoundTrips)/float64(len(durs)), "roundtrips/accept")
	slices.Sort(durs)
	pct := func(p float64) time.Duration { return durs[min(len(durs)-1, int(p*float64(len(durs))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	base, err := pgbench.Run(ctx, "-N", 1, 5*time.Second)
	if err != nil {
		b.Logf("no baseline: %v", err)
		return
	}
	b.Logf("%s; accept p50 = %.2f pgbench -N transactions, p99 = %.2f", base,
		float64(pct(0.50))/float64(base.Latency), float64(pct(0.99))/float64(base.Latency))
	b.ReportMetric(float64(base.Latency.Microseconds())/1000, "pgbench-N-ms")
	b.ReportMetric(float64(pct(0.50))/float64(base.Latency), "p50/pgbench-N")
}
