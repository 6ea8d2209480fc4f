// Package testdb gives tests a fresh, migrated database on the real
// PostgreSQL server, dropped when the test (or test package) ends.
package testdb

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/scratchdb"
	"github.com/apacops/opsbot/internal/sqlstats"
	"github.com/apacops/opsbot/migrations"
)

// DefaultAdminURL is the local server CI and developer machines run.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the server tests create their databases on:
// OPSBOT_TEST_DATABASE_URL, else the local default.
func AdminURL() string {
	if u := os.Getenv("OPSBOT_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// New creates a fresh database, applies every migration and returns a pool on
// it. The pool is closed and the database dropped in tb.Cleanup.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, _ := NewWithURL(tb)
	return pool
}

// NewWithURL is New that also returns the database's connection URL, for
// tests that start processes or second pools of their own.
func NewWithURL(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	dbURL, err := Create(context.Background())
	if err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		if err := Drop(context.Background(), dbURL); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("connect to test database: %v", err)
	}
	tb.Cleanup(pool.Close)
	if err := migrations.Migrate(context.Background(), pool); err != nil {
		tb.Fatalf("migrate test database: %v", err)
	}
	return pool, dbURL
}

// Create makes an empty database with a unique name and returns its URL.
// TestMain functions use it directly; tests use New.
func Create(ctx context.Context) (string, error) {
	return scratchdb.Create(ctx, AdminURL(), "opsbot_test_")
}

// Drop removes a database made by Create, disconnecting any stragglers.
func Drop(ctx context.Context, dbURL string) error {
	return scratchdb.Drop(ctx, AdminURL(), dbURL)
}

// RunMain is for TestMain: it gives the package one fresh migrated database
// in *pool, runs the tests and drops the database. It returns the exit code.
func RunMain(m *testing.M, pool **pgxpool.Pool) int {
	ctx := context.Background()
	dbURL, err := Create(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: %v\n", err)
		return 1
	}
	defer func() {
		if err := Drop(ctx, dbURL); err != nil {
			fmt.Fprintf(os.Stderr, "testdb: drop: %v\n", err)
		}
	}()
	p, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: connect: %v\n", err)
		return 1
	}
	defer p.Close()
	if err := migrations.Migrate(ctx, p); err != nil {
		fmt.Fprintf(os.Stderr, "testdb: migrate: %v\n", err)
		return 1
	}
	*pool = p
	return m.Run()
}

// Traced is a second pool on pool's database whose statements and round
// trips c counts, for benchmarks that report them per operation. It is
// closed in tb.Cleanup.
func Traced(tb testing.TB, pool *pgxpool.Pool) (traced *pgxpool.Pool, c *sqlstats.Counter) {
	tb.Helper()
	cfg := pool.Config().Copy()
	c = sqlstats.New()
	cfg.ConnConfig.Tracer = c
	traced, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("traced pool: %v", err)
	}
	tb.Cleanup(traced.Close)
	return traced, c
}
