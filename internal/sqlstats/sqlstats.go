// Package sqlstats counts what a process asks of PostgreSQL: statements,
// round trips and the time spent waiting on them. It is a pgx tracer, put
// on the pool of a server run with profiling on (OPSBOT_PPROF_ADDR), so the
// load tool can report statements and round trips per turn beside the CPU
// profile.
package sqlstats

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Stats are cumulative counts since the counter was made.
type Stats struct {
	// Queries are statements sent one at a time (BEGIN and COMMIT
	// included): each is one round trip.
	Queries int64 `json:"queries"`
	// Batches are pgx batches: each is one round trip, however many
	// statements it carries.
	Batches int64 `json:"batches"`
	// BatchQueries are the statements sent in batches.
	BatchQueries int64 `json:"batch_queries"`
	// RoundTrips is Queries + Batches.
	RoundTrips int64 `json:"round_trips"`
	// Statements is Queries + BatchQueries.
	Statements int64 `json:"statements"`
	// QuerySeconds is the time spent waiting on queries and batches.
	QuerySeconds float64 `json:"query_seconds"`
}

// Counter is a pgx.QueryTracer and pgx.BatchTracer. Safe for concurrent
// use.
type Counter struct {
	queries, batches, batchQueries, nanos atomic.Int64
}

// New returns a counter at zero.
func New() *Counter { return &Counter{} }

type startKey struct{}

func begin(ctx context.Context) context.Context {
	return context.WithValue(ctx, startKey{}, time.Now())
}

func (c *Counter) since(ctx context.Context) {
	if t, ok := ctx.Value(startKey{}).(time.Time); ok {
		c.nanos.Add(int64(time.Since(t)))
	}
}

// TraceQueryStart implements pgx.QueryTracer.
func (c *Counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return begin(ctx)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (c *Counter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	c.queries.Add(1)
	c.since(ctx)
}

// TraceBatchStart implements pgx.BatchTracer.
func (c *Counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return begin(ctx)
}

// TraceBatchQuery implements pgx.BatchTracer.
func (c *Counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.batchQueries.Add(1)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (c *Counter) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	c.batches.Add(1)
	c.since(ctx)
}

// Stats returns the counts so far.
func (c *Counter) Stats() Stats {
	s := Stats{Queries: c.queries.Load(), Batches: c.batches.Load(), BatchQueries: c.batchQueries.Load(),
		QuerySeconds: time.Duration(c.nanos.Load()).Seconds()}
	s.RoundTrips = s.Queries + s.Batches
	s.Statements = s.Queries + s.BatchQueries
	return s
}
