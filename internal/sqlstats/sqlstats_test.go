package sqlstats_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/internal/sqlstats"
	"github.com/apacops/opsbot/internal/testdb"
)

func TestCountsStatementsAndRoundTrips(t *testing.T) {
	ctx := context.Background()
	_, url := testdb.NewWithURL(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	c := sqlstats.New()
	cfg.Tracer = c
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// One statement alone, one transaction of one statement (BEGIN, the
	// statement, COMMIT: three), one batch of two statements.
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "select 2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.Queue("select 3")
	b.Queue("select 4")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}

	got := c.Stats()
	want := sqlstats.Stats{Queries: 4, Batches: 1, BatchQueries: 2, RoundTrips: 5, Statements: 6}
	got.QuerySeconds, want.QuerySeconds = 0, 0
	if got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
	if c.Stats().QuerySeconds <= 0 {
		t.Fatal("no time recorded")
	}
}
