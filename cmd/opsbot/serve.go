package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/sqlstats"
	"github.com/apacops/opsbot/migrations"
	"github.com/apacops/opsbot/redact"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// Shutdown on SIGTERM, in order: /readyz answers 503 at once, the listener
// closes (no new work), and in-flight requests, API turns and their SSE
// streams included, get httpGrace: the model's deadline plus time to store
// the answer, so a turn that started before the signal ends as it would
// have. Turns still running then are cut (httpapi.Server.StopTurns: the
// engine records what their model calls cost) and get turnCutWait to
// return. Meanwhile River's running jobs get riverStopGrace, then are
// cancelled and handed back to the queue for another replica. The pod's
// terminationGracePeriodSeconds covers shutdownBudget (manifests_test.go).

// turnStoreMargin is what an API turn needs besides its model call: the
// store transaction and the response, with room for a slow database.
const turnStoreMargin = 10 * time.Second

// turnCutWait is how long turns cut at the end of the grace get to record
// their spend and return.
const turnCutWait = 5 * time.Second

// httpGrace is how long in-flight requests get after SIGTERM.
func httpGrace(c Config) time.Duration { return c.Engine.CallTimeout + turnStoreMargin }

// shutdownBudget is the longest a SIGTERM'd serve takes to exit: HTTP and
// River drain at the same time.
func shutdownBudget(c Config) time.Duration {
	return max(httpGrace(c)+turnCutWait, riverStopGrace+riverCancelWait)
}

func runServe(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("serve takes no arguments")
	}
	// With profiling on, the pool counts statements and round trips too
	// (/debug/sql beside the profiles).
	var sql *sqlstats.Counter
	var tracer pgx.QueryTracer
	if e.cfg.PprofAddr != "" {
		sql = sqlstats.New()
		tracer = sql
	}
	pool, err := connectTraced(ctx, e.cfg, tracer)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Current(ctx, pool); err != nil {
		return fmt.Errorf("database not ready (run opsbot migrate): %w", err)
	}

	// The redactor is built now rather than by the first turn (a tenth of a
	// second), and the scratch memory of building it (gitleaks' rule set
	// compiles to some 30 MB that is garbage at once) is handed back to the
	// operating system instead of staying in the process's RSS.
	redact.Default()
	debug.FreeOSMemory()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(usage.NewQueueCollector(pool))
	budgets := newBudgets(e.cfg.Usage, pool)
	// One runbook index serves the engine, the gap report and the retention purge.
	runbooks, err := newRunbookIndex(ctx, e.cfg, pool, e.log)
	if err != nil {
		return err
	}
	engine, err := newEngine(e.cfg.Engine, pool,
		engineDeps{runbooks: runbooks, budgets: budgets, metrics: bot.NewMetrics(reg)}, e.log)
	if err != nil {
		return err
	}

	userStore := users.NewStore(pool, e.cfg.TimeZone)
	cmds := commands.New(commands.Config{DB: pool, Users: userStore, Gaps: runbooks, Log: e.log})

	// Chat surfaces (surfaces.go): their repliers are known before the turn
	// worker is built.
	teamsTokens := newTeamsTokens(e.cfg.Teams) // one app token for the Teams surface and reports
	surfaces, err := chatSurfaces(e.cfg, surfaceDeps{pool: pool, users: userStore, commands: cmds, log: e.log, registerer: reg,
		teamsTokens: teamsTokens})
	if err != nil {
		return err
	}
	repliers := map[string]bot.Replier{}
	for _, s := range surfaces {
		repliers[s.platform] = s.replier
	}

	// Durable work (river.go): every worker and periodic job is registered
	// before newRiver builds the client.
	workers := river.NewWorkers()
	var periodic []*river.PeriodicJob
	river.AddWorker(workers, bot.NewTurnWorker(engine, cmds, repliers, e.log))
	river.AddWorker(workers, bot.NewInboxPurgeWorker(pool, nil))
	periodic = append(periodic, bot.InboxPurgeJob())
	// Reports (usage digest; the runbook gap report takes the same notifier).
	notifier := newNotifier(e.cfg.Usage, teamsTokens, e.log)
	usageJobs := newUsageJobs(e.cfg.Usage, pool, notifier, e.log)
	// Runbook gap questions are copies of messages: they follow the retention.
	housekeeping := &conversations.Housekeeping{DB: pool, Config: e.cfg.Housekeeping, Log: e.log,
		Copies: []conversations.CopyPurger{runbooks}}
	for _, jobs := range []interface {
		AddWorkers(*river.Workers) error
		PeriodicJobs() ([]*river.PeriodicJob, error)
	}{usageJobs, housekeeping} {
		if err := jobs.AddWorkers(workers); err != nil {
			return err
		}
		pj, err := jobs.PeriodicJobs()
		if err != nil {
			return err
		}
		periodic = append(periodic, pj...)
	}
	gapJobs, err := gapReportJobs(e.cfg, runbooks, notifier, workers)
	if err != nil {
		return err
	}
	periodic = append(periodic, gapJobs...)
	jobs, err := newRiver(pool, workers, e.cfg.Workers, periodic, rescueAfter(e.cfg), e.log)
	if err != nil {
		return err
	}

	// The surfaces accept events through the inbox on the River client:
	// webhooks beside the API, long-lived connections beside the server.
	inbox := bot.NewInbox(pool, jobs)
	var mounts []httpapi.Mount
	for _, s := range surfaces {
		mounts = append(mounts, s.mounts(inbox)...)
	}
	api := httpapi.New(httpapi.Deps{
		Mounts:     mounts,
		Log:        e.log,
		DB:         pool,
		Users:      userStore,
		Metrics:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Registerer: reg,
		Budgets:    budgets,
		Engine:     engine,
		// The model's deadline (OPSBOT_MODEL_TIMEOUT) plus time to store,
		// as for turns from chat (bot.TurnWorker.Timeout).
		TurnTimeout: bot.TurnTimeout(e.cfg.Engine.CallTimeout),
	})

	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", e.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Handlers must not be cancelled by Shutdown: in-flight turns finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// River's jobs are not cancelled by ctx: on SIGTERM they drain (stopRiver)
	// side by side with HTTP, so the whole shutdown takes at most
	// shutdownBudget. Inserting jobs (InsertTx) still works while River
	// stops.
	if err := jobs.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return fmt.Errorf("start river: %w", err)
	}
	done, stop := context.WithCancel(ctx)
	riverStopped := make(chan struct{})
	go func() {
		defer close(riverStopped)
		<-done.Done()
		stopRiver(jobs, e.log)
	}()
	var connections sync.WaitGroup
	if e.cfg.PprofAddr != "" {
		connections.Go(func() {
			if err := servePprof(done, e.cfg.PprofAddr, sql, e.log); err != nil {
				e.log.Error("profiling endpoint", "error", err)
			}
		})
	}
	for _, s := range surfaces {
		if s.run == nil {
			continue
		}
		connections.Go(func() {
			if err := s.run(done, inbox); err != nil && done.Err() == nil {
				e.log.Error("chat connection ended", "platform", s.platform, "error", err)
			}
		})
	}
	e.log.Info("opsbot serving", "addr", ln.Addr().String())
	err = serveUntilDone(ctx, e, api, srv, ln)
	stop() // also when serving failed before any signal
	connections.Wait()
	<-riverStopped
	return err
}

// serveUntilDone serves until ctx ends (SIGTERM), then drains: see the
// shutdown order above.
func serveUntilDone(ctx context.Context, e *env, api *httpapi.Server, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	api.Drain()
	grace := httpGrace(e.cfg)
	e.log.Info("shutting down, draining in-flight requests", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		e.log.Warn("requests still running after the grace period; cutting their turns", "error", err)
		api.StopTurns()
		cctx, ccancel := context.WithTimeout(context.Background(), turnCutWait)
		defer ccancel()
		if err := srv.Shutdown(cctx); err != nil {
			srv.Close()
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	e.log.Info("stopped")
	return nil
}
