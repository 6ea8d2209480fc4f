package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/migrations"
)

// Replicas starting together all run migrate; then a later deploy runs it
// again. Every run must succeed and leave one current schema.
func TestMigrateConcurrentlyAndTwice(t *testing.T) {
	ctx := context.Background()
	url, err := testdb.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdb.Drop(context.Background(), url); err != nil {
			t.Errorf("drop: %v", err)
		}
	})

	const replicas = 4
	pools := make([]*pgxpool.Pool, replicas)
	for i := range pools {
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		pools[i] = p
	}
	if err := migrations.Current(ctx, pools[0]); err == nil {
		t.Fatal("Current on an empty database: got nil, want an error")
	}

	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i, p := range pools {
		wg.Go(func() { errs[i] = migrations.Migrate(ctx, p) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if err := migrations.Migrate(ctx, pools[0]); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if err := migrations.Current(ctx, pools[1]); err != nil {
		t.Fatalf("Current after migrate: %v", err)
	}
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	var v int32
	if err := pools[0].QueryRow(ctx, "SELECT version FROM schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != latest || latest < 1 {
		t.Errorf("schema version: got %d, want %d", v, latest)
	}
	// The advisory lock must not travel with pooled connections. pg_locks
	// is server-wide: count only this database's locks, not those of other
	// test packages running at the same time.
	var held int
	if err := pools[0].QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("advisory locks still held: %d", held)
	}
}

// A replica of the previous release stays ready once the next release's
// migrations have run; one whose migrations are missing is not.
func TestCurrentAcceptsNewerSchema(t *testing.T) {
	ctx := context.Background()
	pool := testdb.New(t)
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		version int32
		wantErr bool
	}{
		{"current", latest, false},
		{"newer (next release migrated)", latest + 1, false},
		{"older (migrate not run)", latest - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pool.Exec(ctx, "UPDATE schema_version SET version = $1", tt.version); err != nil {
				t.Fatal(err)
			}
			if err := migrations.Current(ctx, pool); (err != nil) != tt.wantErr {
				t.Errorf("Current at version %d: got %v, want error %v", tt.version, err, tt.wantErr)
			}
		})
	}
}
