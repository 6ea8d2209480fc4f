package conversations_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/users"
)

// pool is this package's fresh database, made in TestMain.
var pool *pgxpool.Pool

func TestMain(m *testing.M) {
	os.Exit(testdb.RunMain(m, &pool))
}

func mustUser(tb testing.TB, handle string) users.User {
	tb.Helper()
	u, err := users.NewStore(pool, "Asia/Singapore").Ensure(context.Background(), handle, users.RoleUser)
	if err != nil {
		tb.Fatalf("ensure user %s: %v", handle, err)
	}
	return u
}

func TestCreateGetOwnership(t *testing.T) {
	ctx := context.Background()
	s := conversations.NewStore(pool)
	alice, bob := mustUser(t, "alice-own"), mustUser(t, "bob-own")
	c, err := s.Create(ctx, conversations.NewConversation{OwnerID: alice.ID, Source: conversations.SourceAPI})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if c.Title != conversations.DefaultTitle {
		t.Errorf("title: got %q, want %q", c.Title, conversations.DefaultTitle)
	}
	if _, err := s.Get(ctx, bob.ID, c.ID); !errors.Is(err, conversations.ErrNotFound) {
		t.Errorf("bob get alice's: got %v, want ErrNotFound", err)
	}
	got, err := s.Get(ctx, alice.ID, c.ID)
	if err != nil || got.ID != c.ID {
		t.Errorf("alice get: got %v %v", got.ID, err)
	}
}
