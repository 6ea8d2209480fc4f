package scratchdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/internal/scratchdb"
	"github.com/apacops/opsbot/internal/testdb"
)

// Create makes a database beside the admin one, with the prefix; Drop
// removes it even with a connection open; a URL that is not postgres://
// is refused.
func TestCreateDrop(t *testing.T) {
	ctx := context.Background()
	admin := testdb.AdminURL()
	dbURL, err := scratchdb.Create(ctx, admin, "opsbot_scratch_")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the new database: %v", err)
	}
	defer conn.Close(ctx)
	var name string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil || !strings.HasPrefix(name, "opsbot_scratch_") {
		t.Errorf("database %q (%v), want opsbot_scratch_…", name, err)
	}
	if err := scratchdb.Drop(ctx, admin, dbURL); err != nil {
		t.Fatalf("drop with a connection open: %v", err)
	}
	if _, err := pgx.Connect(ctx, dbURL); err == nil {
		t.Errorf("connected to the dropped database")
	}
	if _, err := scratchdb.Create(ctx, "host=127.0.0.1 dbname=postgres", "x_"); err == nil {
		t.Errorf("a keyword/value connection string: no error, want a postgres:// URL")
	}
}
