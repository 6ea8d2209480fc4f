package main

import (
	"context"
	"fmt"

	"github.com/apacops/opsbot/migrations"
)

func runMigrate(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("migrate takes no arguments")
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Migrate(ctx, pool); err != nil {
		return err
	}
	v, err := migrations.Latest()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database at migration %d\n", v)
	return nil
}
