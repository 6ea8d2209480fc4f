package users_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/users"
)

var pool *pgxpool.Pool

func TestMain(m *testing.M) {
	os.Exit(testdb.RunMain(m, &pool))
}

func TestEnsureRaisesButNeverLowersRole(t *testing.T) {
	ctx := context.Background()
	s := users.NewStore(pool, "Asia/Manila")
	maria := "maria-" + uuid.NewString()[:8] // new on every run (-count=N)
	u, err := s.Ensure(ctx, maria, users.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	if u.TimeZone != "Asia/Manila" || u.Role != users.RoleUser {
		t.Errorf("new user: got zone %s role %s", u.TimeZone, u.Role)
	}
	if u, _ = s.Ensure(ctx, maria, users.RoleAdmin); u.Role != users.RoleAdmin {
		t.Errorf("raise: got %s, want admin", u.Role)
	}
	if u, _ = s.Ensure(ctx, maria, users.RoleUser); u.Role != users.RoleAdmin {
		t.Errorf("ensure as user lowered the role to %s", u.Role)
	}
	for _, bad := range []struct{ handle, role string }{{"", users.RoleUser}, {"x", "root"}} {
		if _, err := s.Ensure(ctx, bad.handle, bad.role); !errors.Is(err, users.ErrInvalid) {
			t.Errorf("Ensure(%q, %q): got %v, want ErrInvalid", bad.handle, bad.role, err)
		}
	}
}

// The first message from a new Slack user may arrive on several replicas at
// once: they must all agree on one user.
func TestResolveIdentityConcurrentFirstContact(t *testing.T) {
	ctx := context.Background()
	s := users.NewStore(pool, "Asia/Singapore")
	ext := "U" + strings.ToUpper(uuid.NewString()[:8]) // new on every run (-count=N)
	id := users.Identity{Platform: "slack", Tenant: "T0001", ExternalID: ext, DisplayName: "Wei Ling"}
	const n = 8
	got := make([]users.User, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u, err := s.ResolveIdentity(ctx, id)
			if err != nil {
				t.Errorf("resolve: %v", err)
			}
			got[i] = u
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if got[i].ID != got[0].ID {
			t.Fatalf("two users for one identity: %s and %s", got[0].ID, got[i].ID)
		}
	}
	if got[0].DisplayName != "Wei Ling" || got[0].Handle != "slack:T0001:"+ext {
		t.Errorf("user: got %+v", got[0])
	}
	other, err := s.ResolveIdentity(ctx, users.Identity{Platform: "teams", Tenant: "T0001", ExternalID: ext})
	if err != nil || other.ID == got[0].ID {
		t.Errorf("a Teams identity with the same ids must be a different person: %v %v", other.ID, err)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	s := users.NewStore(pool, "")
	u, err := s.Ensure(ctx, "token-owner", users.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.CreateToken(ctx, u.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.ID != u.ID {
		t.Fatalf("authenticate: got %v %v", got.ID, err)
	}
	var lastUsed *string
	if err := pool.QueryRow(ctx, `SELECT last_used_at::text FROM api_tokens WHERE id = $1`, tok.ID).Scan(&lastUsed); err != nil || lastUsed == nil {
		t.Errorf("last_used_at not set: %v", err)
	}
	for _, bad := range []string{"", secret + "x", secret[:len(secret)-1], "Bearer " + secret} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, users.ErrUnauthorized) {
			t.Errorf("Authenticate(%q): got %v, want ErrUnauthorized", bad, err)
		}
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, users.ErrUnauthorized) {
		t.Errorf("revoked token: got %v, want ErrUnauthorized", err)
	}
}

// A chat profile's name can change after first contact; the user follows it.
func TestSetDisplayName(t *testing.T) {
	ctx := context.Background()
	s := users.NewStore(pool, "Asia/Singapore")
	u, err := s.Ensure(ctx, "rename-"+uuid.NewString()[:8], users.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisplayName(ctx, u.ID, "  Siti Rahman "); err != nil {
		t.Fatalf("SetDisplayName: %v", err)
	}
	if got, err := s.Get(ctx, u.ID); err != nil || got.DisplayName != "Siti Rahman" {
		t.Errorf("display name: got %q (%v), want %q", got.DisplayName, err, "Siti Rahman")
	}
	if err := s.SetDisplayName(ctx, u.ID, " "); !errors.Is(err, users.ErrInvalid) {
		t.Errorf("blank name: got %v, want ErrInvalid", err)
	}
	if err := s.SetDisplayName(ctx, uuid.New(), "Nobody"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("unknown user: got %v, want ErrNotFound", err)
	}
}

func TestSetTimeZoneRefusesUnknownAndLocal(t *testing.T) {
	ctx := context.Background()
	s := users.NewStore(pool, "Asia/Singapore")
	u, err := s.Ensure(ctx, "zone-"+uuid.NewString()[:8], users.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, zone := range []string{"", "Local", "Mars/Olympus"} {
		if err := s.SetTimeZone(ctx, u.ID, zone); !errors.Is(err, users.ErrInvalid) {
			t.Errorf("SetTimeZone(%q) = %v, want ErrInvalid", zone, err)
		}
	}
	if err := s.SetTimeZone(ctx, u.ID, "Asia/Kathmandu"); err != nil {
		t.Errorf("SetTimeZone(Asia/Kathmandu) = %v", err)
	}
}
