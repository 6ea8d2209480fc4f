// Package migrations holds the numbered, forward-only SQL migrations of opsbot
// and applies them, together with River's own schema, under one advisory lock
// so that many replicas may start at once.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// versionTable is where tern records the applied version.
const versionTable = "schema_version"

// lockKey serialises migrations across replicas ("opsbot" in ASCII).
const lockKey int64 = 0x6f7073626f74

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// Latest is the number of the newest embedded migration.
func Latest() (int32, error) {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return 0, fmt.Errorf("find migrations: %w", err)
	}
	return int32(len(names)), nil
}

// Migrate applies every pending opsbot and River migration. It is idempotent
// and safe to run from several processes at once: all of them wait on one
// session advisory lock held on a single dedicated connection, which is
// released before the connection goes back to the pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A background context: the unlock must happen even when ctx is done,
		// or the lock would travel with the pooled connection.
		if _, uerr := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockKey); uerr != nil {
			conn.Conn().Close(context.Background())
			err = errors.Join(err, fmt.Errorf("release migration lock: %w", uerr))
		}
	}()

	m, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return fmt.Errorf("new migrator: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}

	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("new river migrator: %w", err)
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("apply river migrations: %w", err)
	}
	return nil
}

// Current reports whether the database has every embedded migration, for
// readiness checks. A schema newer than this binary counts as current:
// migrations are forward-only and safe for the code before them, and during a
// rolling deploy the migration Job runs before the old replicas are replaced;
// they must stay ready (and able to restart) meanwhile.
func Current(ctx context.Context, pool *pgxpool.Pool) error {
	latest, err := Latest()
	if err != nil {
		return err
	}
	var v int32
	err = pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v < latest {
		return fmt.Errorf("schema version %d, want %d", v, latest)
	}
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("new river migrator: %w", err)
	}
	res, err := rm.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("validate river schema: %w", err)
	}
	if !res.OK {
		return fmt.Errorf("river schema not current: %v", res.Messages)
	}
	return nil
}
