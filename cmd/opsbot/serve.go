package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/migrations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// shutdownGrace is how long in-flight requests get after SIGTERM.
const shutdownGrace = 25 * time.Second

func runServe(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("serve takes no arguments")
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Current(ctx, pool); err != nil {
		return fmt.Errorf("database not ready (run opsbot migrate): %w", err)
	}

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

	// Durable work (river.go). Other packages add workers and periodic jobs
	// here, before newRiver. Chat adapters, which need the client (jobs) to
	// enqueue turns with bot.Enqueue, are built after newRiver and put their
	// bot.Replier in repliers under their platform name before jobs.Start.
	repliers := map[string]bot.Replier{}
	workers := river.NewWorkers()
	var periodic []*river.PeriodicJob
	river.AddWorker(workers, bot.NewTurnWorker(engine, repliers, e.log))
	// Reports (usage digest; the runbook gap report takes the same notifier).
	notifier := newNotifier(e.cfg.Usage, e.log)
	usageJobs := newUsageJobs(e.cfg.Usage, pool, notifier, e.log)
	// Runbook gap questions are copies of messages: they follow the retention.
	usageJobs.Copies = append(usageJobs.Copies, runbooks)
	if err := usageJobs.AddWorkers(workers); err != nil {
		return err
	}
	usagePeriodic, err := usageJobs.PeriodicJobs()
	if err != nil {
		return err
	}
	periodic = append(periodic, usagePeriodic...)
	gapJobs, err := gapReportJobs(e.cfg, runbooks, notifier, workers)
	if err != nil {
		return err
	}
	periodic = append(periodic, gapJobs...)
	jobs, err := newRiver(pool, workers, periodic, e.log)
	if err != nil {
		return err
	}

	api := httpapi.New(httpapi.Deps{
		Log:     e.log,
		DB:      pool,
		Users:   users.NewStore(pool, e.cfg.TimeZone),
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Budgets: budgets,
		Engine:  engine,
		// The model's deadline (OPSBOT_MODEL_TIMEOUT) plus time to store,
		// as for turns from chat (bot.TurnWorker.Timeout).
		TurnTimeout: e.cfg.Engine.CallTimeout + time.Minute,
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
	// shutdownBudget, which the pod's grace period must cover. Inserting jobs
	// (InsertTx) still works while River stops.
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
	e.log.Info("opsbot serving", "addr", ln.Addr().String())
	err = serveUntilDone(ctx, e, srv, ln)
	stop() // also when serving failed before any signal
	<-riverStopped
	return err
}

// shutdownBudget is the longest a SIGTERM'd serve takes to exit: HTTP and
// River drain at the same time.
const shutdownBudget = max(shutdownGrace, riverStopGrace+riverCancelWait)

// serveUntilDone serves until ctx ends (SIGTERM), then lets in-flight
// requests finish within shutdownGrace.
func serveUntilDone(ctx context.Context, e *env, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	e.log.Info("shutting down, draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	e.log.Info("stopped")
	return nil
}
