package testdb

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cut is a database fault for tests, made deterministic: it holds a lock
// that makes every writer of one table wait, and once a writer waits (its
// transaction open, midway), it ends every other connection to the
// database — as pg_terminate_backend by an operator, a failover or a
// restart would — then lets go of the lock.
type Cut struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

// CutOnWrite takes a SHARE lock on table in the database at dbURL: readers
// pass, writers wait. Call Wait, or Close to let go without cutting.
func CutOnWrite(ctx context.Context, dbURL, table string) (*Cut, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("cut: connect: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN SHARE MODE")
	}
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("cut: lock %s: %w", table, err)
	}
	return &Cut{conn: conn, tx: tx}, nil
}

// Wait waits until writers connections wait on the lock, terminates every
// other client connection to the database, waits until they are gone and
// lets go of the lock. It returns how many connections it ended.
func (c *Cut) Wait(ctx context.Context, writers int) (int, error) {
	defer c.Close()
	for {
		var waiting int
		err := c.fresh(ctx)
		if err == nil {
			err = c.tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`).Scan(&waiting)
		}
		if err != nil {
			return 0, fmt.Errorf("cut: look for waiting writers: %w", err)
		}
		if waiting >= writers {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cut: %d writers did not come: %w", writers, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	// Materialized, so that the planner cannot run pg_terminate_backend
	// before the filter that spares this connection.
	rows, err := c.tx.Query(ctx, `WITH victims AS MATERIALIZED (
			SELECT pid FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND backend_type = 'client backend')
		SELECT pid FROM victims WHERE pg_terminate_backend(pid)`)
	if err != nil {
		return 0, fmt.Errorf("cut: terminate: %w", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, fmt.Errorf("cut: terminate: %w", err)
	}
	for {
		var left int
		err := c.fresh(ctx)
		if err == nil {
			err = c.tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&left)
		}
		if err != nil {
			return 0, fmt.Errorf("cut: wait for the ended connections: %w", err)
		}
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cut: connections still there: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := c.tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("cut: let go of the lock: %w", err)
	}
	return len(pids), nil
}

// fresh drops the transaction's snapshot of pg_stat_activity, which would
// otherwise answer every poll as the first one.
func (c *Cut) fresh(ctx context.Context) error {
	_, err := c.tx.Exec(ctx, `SELECT pg_stat_clear_snapshot()`)
	return err
}

// Close lets go of the lock (when Wait has not) and the connection.
func (c *Cut) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.tx.Rollback(ctx)
	_ = c.conn.Close(ctx)
}
