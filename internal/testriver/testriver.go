// Package testriver runs River clients in tests: started on a test's
// database with fast polling, stopped at cleanup, plus the small helpers
// tests of periodic and queued jobs share.
package testriver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// RetryNow retries failed jobs at once, so tests need not wait out River's
// backoff.
type RetryNow struct{}

// NextRetry is now.
func (RetryNow) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// Config is a River configuration for tests: two workers on the default
// queue, fast fetching, immediate retries. Callers may change it before
// New.
func Config(workers *river.Workers, periodic []*river.PeriodicJob) *river.Config {
	return &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		PeriodicJobs:      periodic,
		RetryPolicy:       RetryNow{},
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		TestOnly:          true,
	}
}

// New builds a client on db without starting it.
func New(tb testing.TB, db *pgxpool.Pool, cfg *river.Config) *river.Client[pgx.Tx] {
	tb.Helper()
	c, err := river.NewClient(riverpgxv5.New(db), cfg)
	if err != nil {
		tb.Fatalf("river client: %v", err)
	}
	return c
}

// Start builds and starts a client ("an instance"); it is stopped at
// cleanup, letting running jobs finish.
func Start(tb testing.TB, db *pgxpool.Pool, cfg *river.Config) *river.Client[pgx.Tx] {
	tb.Helper()
	c := New(tb, db, cfg)
	if err := c.Start(context.Background()); err != nil {
		tb.Fatalf("start river client: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			tb.Errorf("stop river client: %v", err)
		}
	})
	return c
}

// Soon is a schedule that fires once, a second after it is first consulted
// (by the elected leader's enqueuer), however long the election took.
type Soon struct {
	mu sync.Mutex
	at time.Time
}

// Next is a second after the first call, then a century later.
func (s *Soon) Next(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at.IsZero() {
		s.at = t.Add(time.Second)
	}
	if t.Before(s.at) {
		return s.at
	}
	return s.at.AddDate(100, 0, 0)
}

// WaitFor polls cond until it holds or 30 s pass.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// JobCount counts the jobs of kind in state ("" for any state).
func JobCount(tb testing.TB, db *pgxpool.Pool, kind, state string) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(context.Background(),
		`SELECT count(*) FROM river_job WHERE kind = $1 AND ($2 = '' OR state::text = $2)`, kind, state).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
