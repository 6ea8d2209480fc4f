package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apacops/opsbot/users"
)

func TestTokenCreateAndRevoke(t *testing.T) {
	ctx := context.Background()
	code, out, errOut := runCmd(t, "", "token", "create", "--user", "cli-admin", "--admin", "--name", "laptop")
	if code != 0 {
		t.Fatalf("create: exit %d, stderr %s", code, errOut)
	}
	secret := lastLine(out)
	store := users.NewStore(testPool, "Asia/Singapore")
	u, err := store.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("authenticate printed token: %v", err)
	}
	if u.Handle != "cli-admin" || !u.IsAdmin() {
		t.Errorf("user: got %s role %s, want cli-admin admin", u.Handle, u.Role)
	}

	// Only a hash is stored: the secret appears nowhere in the table.
	var leaks int
	if err := testPool.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%' OR name LIKE '%' || $1 || '%'`, secret).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Errorf("token secret found in api_tokens")
	}

	id := strings.Fields(out)[1]
	if code, _, errOut := runCmd(t, "", "token", "revoke", id); code != 0 {
		t.Fatalf("revoke: exit %d, %s", code, errOut)
	}
	if _, err := store.Authenticate(ctx, secret); !errors.Is(err, users.ErrUnauthorized) {
		t.Errorf("after revoke: got %v, want ErrUnauthorized", err)
	}
	if code, _, _ := runCmd(t, "", "token", "revoke", "not-a-uuid"); code != 2 {
		t.Errorf("revoke bad id: got %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "", "token", "revoke", "6d1c0a43-8e9f-4c33-9c9f-3b8a3c1d2e4f"); code != 1 {
		t.Errorf("revoke unknown id: got %d, want 1", code)
	}
}
