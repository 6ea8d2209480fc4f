package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/users"
)

func runToken(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("token create --user HANDLE [--admin] [--name N] | token revoke ID")
	}
	switch args[0] {
	case "create":
		return tokenCreate(ctx, e, args[1:])
	case "revoke":
		return tokenRevoke(ctx, e, args[1:])
	}
	return usageError(fmt.Sprintf("unknown token command %q", args[0]))
}

func tokenCreate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	handle := fs.String("user", "", "handle of the user the token is for (created if new)")
	admin := fs.Bool("admin", false, "give the user the admin role")
	name := fs.String("name", "", "a name to recognise the token by")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *handle == "" || fs.NArg() > 0 {
		return usageError("token create needs --user HANDLE and no other arguments")
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := users.NewStore(pool, e.cfg.TimeZone)
	role := users.RoleUser
	if *admin {
		role = users.RoleAdmin
	}
	u, err := store.Ensure(ctx, *handle, role)
	if err != nil {
		return err
	}
	t, secret, err := store.CreateToken(ctx, u.ID, *name)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "token %s for %s (role %s); shown once, store it now:\n", t.ID, u.Handle, u.Role)
	fmt.Fprintln(e.stdout, secret)
	return nil
}

func tokenRevoke(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return usageError("token revoke takes one token ID")
	}
	id, err := uuid.Parse(args[0])
	if err != nil {
		return usageError("token revoke: ID must be a UUID")
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := users.NewStore(pool, e.cfg.TimeZone).RevokeToken(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "token %s revoked\n", id)
	return nil
}
