package usage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/migrations"
)

// The summary benchmarks run over a ledger of OPSBOT_BENCH_USAGE_ROWS rows
// (default 10 million) from OPSBOT_BENCH_USAGE_USERS users (default 500)
// spread over the year before benchEnd. A quick run:
//
//	OPSBOT_BENCH_USAGE_ROWS=200000 go test -run '^$' -bench Summar ./usage/
//
// The ledger is loaded with one INSERT ... SELECT generate_series with the
// rollup trigger disabled, then the rollups are rebuilt in bulk
// (RebuildRollups); in production the trigger maintains them.

var benchEnd = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

type benchLedger struct {
	db    *pgxpool.Pool
	users []uuid.UUID
	rows  int
	err   error
}

var (
	benchOnce sync.Once
	benchData benchLedger
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// mustBenchLedger opens the benchmark database, building it on first use.
// It is kept between runs (its name carries the row and user counts), as
// loading 10 million rows takes minutes; drop it with
// DROP DATABASE opsbot_bench_usage_<rows>_<users>.
func mustBenchLedger(b *testing.B) *benchLedger {
	b.Helper()
	benchOnce.Do(func() {
		ctx := context.Background()
		rows := envInt("OPSBOT_BENCH_USAGE_ROWS", 10_000_000)
		nUsers := envInt("OPSBOT_BENCH_USAGE_USERS", 500)
		benchData.rows = rows
		name := fmt.Sprintf("opsbot_bench_usage_%d_%d", rows, nUsers)
		db, fresh, err := openBenchDB(ctx, name)
		if err != nil {
			benchData.err = err
			return
		}
		benchData.db = db
		if fresh {
			start := time.Now()
			if err := loadBenchLedger(ctx, db, rows, nUsers); err != nil {
				benchData.err = err
				return
			}
			b.Logf("loaded %d ledger rows for %d users in %s", rows, nUsers, time.Since(start).Round(time.Second))
		}
		benchData.users, benchData.err = benchUsers(ctx, db)
	})
	if benchData.err != nil {
		b.Fatalf("benchmark ledger: %v", benchData.err)
	}
	return &benchData
}

// openBenchDB connects to the named database, creating and migrating it
// when it does not exist or its load never finished (fresh is then true).
func openBenchDB(ctx context.Context, name string) (*pgxpool.Pool, bool, error) {
	admin, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		return nil, false, err
	}
	defer admin.Close(ctx)
	u, err := url.Parse(testdb.AdminURL())
	if err != nil {
		return nil, false, err
	}
	u.Path = "/" + name
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return nil, false, err
	}
	if exists {
		db, err := pgxpool.New(ctx, u.String())
		if err != nil {
			return nil, false, err
		}
		var done bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_tables WHERE tablename = 'bench_loaded')`).Scan(&done); err == nil && done {
			return db, false, nil
		}
		db.Close()
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return nil, false, err
		}
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, false, err
	}
	db, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return nil, false, err
	}
	if err := migrations.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, false, err
	}
	return db, true, nil
}

func loadBenchLedger(ctx context.Context, db *pgxpool.Pool, rows, nUsers int) error {
	for _, q := range []string{
		`INSERT INTO users (handle) SELECT 'bench-' || g FROM generate_series(1, ` + strconv.Itoa(nUsers) + `) g`,
		`ALTER TABLE usage_events DISABLE TRIGGER usage_events_rollup`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			return err
		}
	}
	_, err := db.Exec(ctx, `
		INSERT INTO usage_events (user_id, source, model, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd, occurred_at)
		SELECT u.ids[1 + (g % array_length(u.ids, 1))],
		       (ARRAY['slack', 'teams', 'api'])[1 + (g / 7) % 3],
		       (ARRAY['gpt-4o-mini', 'gpt-4o', 'gpt-4.1'])[1 + (g / 3) % 3],
		       200 + g % 3000, 20 + g % 800, g % 500, 50 + g % 9000,
		       $1::timestamptz - (random() * interval '365 days')
		FROM generate_series(1, $2::int) g, (SELECT array_agg(id ORDER BY handle) AS ids FROM users) u`,
		benchEnd, rows)
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `ALTER TABLE usage_events ENABLE TRIGGER usage_events_rollup`); err != nil {
		return err
	}
	if err := RebuildRollups(ctx, db); err != nil {
		return err
	}
	for _, q := range []string{`VACUUM ANALYZE`, `CREATE TABLE bench_loaded ()`} {
		if _, err := db.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func benchUsers(ctx context.Context, db *pgxpool.Pool) ([]uuid.UUID, error) {
	rows, err := db.Query(ctx, `SELECT id FROM users ORDER BY handle`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// reportLatency records each iteration's time and reports p50 and p95 in ms.
func reportLatency(b *testing.B, run func(i int) error) {
	b.Helper()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if err := run(i); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(durs)
	pct := func(p float64) float64 {
		return float64(durs[min(len(durs)-1, int(float64(len(durs))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}

// BenchmarkSummarizeUser30Days: one user's 30-day summary (daily in their
// zone, by model, conversations). Target p95 < 20 ms at 10M ledger rows.
func BenchmarkSummarizeUser30Days(b *testing.B) {
	l := mustBenchLedger(b)
	rp := NewReports(l.db)
	zones := []string{"Asia/Kolkata", "Asia/Kathmandu", "Australia/Sydney", "Asia/Singapore"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		locs[i], _ = time.LoadLocation(z)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	reportLatency(b, func(i int) error {
		loc := locs[i%len(locs)]
		r, err := LastDays(benchEnd.Add(-time.Hour), loc, 30)
		if err != nil {
			return err
		}
		s, err := rp.Summarize(ctx, l.users[rng.IntN(len(l.users))], r)
		if err == nil && len(s.Daily) != 30 {
			b.Fatalf("got %d days", len(s.Daily))
		}
		return err
	})
}

// BenchmarkSummarizeOrgByUser30Days: the admin's org-wide 30 days by user.
// Target p95 < 100 ms at 10M ledger rows.
func BenchmarkSummarizeOrgByUser30Days(b *testing.B) {
	l := mustBenchLedger(b)
	rp := NewReports(l.db)
	loc, _ := time.LoadLocation("Asia/Singapore")
	ctx := context.Background()
	reportLatency(b, func(i int) error {
		r, err := LastDays(benchEnd.Add(-time.Duration(i%48)*time.Hour), loc, 30)
		if err != nil {
			return err
		}
		rep, err := rp.SummarizeOrg(ctx, r, GroupByUser)
		if err == nil && len(rep.Rows) == 0 {
			b.Fatal("no rows")
		}
		return err
	})
}

// BenchmarkSummarizeOrgByDay30Days: the dashboard's daily chart.
func BenchmarkSummarizeOrgByDay30Days(b *testing.B) {
	l := mustBenchLedger(b)
	rp := NewReports(l.db)
	loc, _ := time.LoadLocation("Asia/Kolkata")
	ctx := context.Background()
	reportLatency(b, func(i int) error {
		r, err := LastDays(benchEnd.Add(-time.Duration(i%48)*time.Hour), loc, 30)
		if err != nil {
			return err
		}
		_, err = rp.SummarizeOrg(ctx, r, GroupByDay)
		return err
	})
}

// BenchmarkRecordWithRollup is the write cost the trigger adds: one ledger
// row per turn, each in its own statement, as the engine writes them.
func BenchmarkRecordWithRollup(b *testing.B) {
	l := mustBenchLedger(b)
	ctx := context.Background()
	reportLatency(b, func(i int) error {
		return Record(ctx, l.db, Event{UserID: l.users[i%len(l.users)], Source: "api", Model: "gpt-4o",
			PromptTokens: 1000, CompletionTokens: 100, CostMicroUSD: 3500, OccurredAt: benchEnd.AddDate(1, 0, 0).Add(time.Duration(i) * time.Second)})
	})
}
