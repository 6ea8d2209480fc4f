// Command seedserver serves opsbot's HTTP API on 127.0.0.1 over a fresh
// database seeded with 30 days of usage, for the dashboard's browser test.
// It prints one JSON line ({"url", "token", "user_token", "start", "end", "tz"},
// token an admin's and user_token a plain user's) when it is
// ready and runs until stdin closes or it is signalled; the database is
// dropped on the way out.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/migrations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

const zone = "Asia/Singapore"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seedserver:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { // the test closing our stdin also ends us
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	dbURL, err := testdb.Create(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = testdb.Drop(context.Background(), dbURL) }()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Migrate(ctx, pool); err != nil {
		return err
	}
	loc, _ := time.LoadLocation(zone)
	now := time.Now()
	rng, err := usage.LastDays(now, loc, 30)
	if err != nil {
		return err
	}
	store := users.NewStore(pool, zone)
	admin, err := store.Ensure(ctx, "ops-admin", users.RoleAdmin)
	if err != nil {
		return err
	}
	_, token, err := store.CreateToken(ctx, admin.ID, "browser test")
	if err != nil {
		return err
	}
	if err := seed(ctx, pool, store, rng, now); err != nil {
		return err
	}
	ana, err := store.GetByHandle(ctx, "ana.santos")
	if err != nil {
		return err
	}
	// A token of a user who is not an admin: the dashboard must show the 403.
	_, userToken, err := store.CreateToken(ctx, ana.ID, "browser test, not an admin")
	if err != nil {
		return err
	}
	budgets := usage.NewBudgets(pool, usage.BudgetOptions{Location: loc})
	team := int64(40_000_000)
	anaLimit := int64(5_000_000)
	if err := budgets.Set(ctx, []usage.BudgetChange{{Limit: &team}, {UserID: ana.ID, Limit: &anaLimit}}); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: httpapi.New(httpapi.Deps{Log: log, DB: pool, Users: store, Budgets: budgets}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	ready, _ := json.Marshal(map[string]string{"url": "http://" + ln.Addr().String(), "token": token, "user_token": userToken,
		"start": rng.First.String(), "end": rng.Last.String(), "tz": zone})
	fmt.Println(string(ready))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// seed writes a month of plausible usage for a few people through the
// ledger (so the rollup trigger does its production work).
func seed(ctx context.Context, pool *pgxpool.Pool, store *users.Store, rng usage.Range, now time.Time) error {
	handles := []string{"ana.santos", "budi.wijaya", "chen.wei", "dev.patel"}
	ids := make([]users.User, len(handles))
	for i, h := range handles {
		u, err := store.Ensure(ctx, h, users.RoleUser)
		if err != nil {
			return err
		}
		ids[i] = u
	}
	models := []string{"gpt-4o-mini", "gpt-4o", "gpt-4.1"}
	sources := []string{"slack", "teams", "api"}
	for d, day := range rng.Dates() {
		for u := range ids {
			turns := (d*7+u*3)%5 + 1
			for k := range turns {
				at := day.Midnight(rng.Loc).Add(time.Duration(8+(k*3+u)%10)*time.Hour + time.Duration(k*7)*time.Minute)
				if at.After(now) {
					at = now.Add(-time.Duration(k+1) * time.Minute)
				}
				m := (d + u + k) % len(models)
				e := usage.Event{UserID: ids[u].ID, Source: sources[(u+k)%len(sources)], Model: models[m],
					PromptTokens: 800 + (d*131+u*71+k*37)%2400, CompletionTokens: 90 + (d*17+u*29+k*11)%600,
					CostMicroUSD: int64([]int{900, 9000, 6500}[m] + (d*379+u*211+k*97)%4000), OccurredAt: at}
				if err := usage.Record(ctx, pool, e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
