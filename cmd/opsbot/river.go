package main

// River in opsbot: one client per process, on the same Postgres pool, runs
// every durable job — chat turns (bot.TurnWorker), usage digests,
// auto-archive, retention and the runbook-gap report. River elects one leader
// among the replicas and runs periodic jobs only there.
//
// To add work, in serve.go before newRiver is called:
//
//	river.AddWorker(workers, myWorker)              // a job kind this process runs
//	periodic = append(periodic, river.NewPeriodicJob(schedule, ctor, opts))
//
// newRiver only builds the client; serve.go starts it after the HTTP
// listener is up and, on SIGTERM, stops it (letting running jobs finish)
// while HTTP drains. A client built with no workers, or one that is
// stopping, can still insert jobs (InsertTx), which is what commands that
// only enqueue and HTTP handlers still draining need.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/apacops/opsbot/bot"
)

// riverMaxWorkers is how many jobs one process runs at once unless
// OPSBOT_WORKERS says otherwise. Turns spend their time waiting on the
// model, so this is well above the core count; a chat turn waiting holds a
// goroutine and an HTTP connection to the model, not a database
// connection. maxWorkers bounds the setting.
const (
	riverMaxWorkers = 32
	maxWorkers      = 10000
)

// A chat turn waits for River to fetch its job: at most every
// riverFetchCooldown, and every riverFetchPoll when an insert's
// notification was throttled away. River's defaults (100 ms, 1 s) put
// 100 ms on the median Slack or Teams answer and a second on the slowest
// (measured with make bench); a fetch is one cheap query, so these cost a
// replica ten idle queries a second.
const (
	riverFetchCooldown = 10 * time.Millisecond
	riverFetchPoll     = 100 * time.Millisecond
)

// riverStopGrace is how long running jobs get to finish on shutdown before
// they are cancelled (and retried by another replica); riverCancelWait is how
// long the cancelled ones get to return.
const (
	riverStopGrace  = 20 * time.Second
	riverCancelWait = 5 * time.Second
)

// Jobs whose process died. A job left running by a replica that was
// killed (SIGKILL, the OOM killer, a lost node) stays "running" until the
// elected leader's rescuer (it looks every 30 s) finds it older than
// RescueStuckJobsAfter and past its own timeout, and runs it again.
// River's default, an hour, would leave a person whose turn was in flight
// there without an answer for an hour. A job that is merely slow must not
// be rescued while it runs, though, so the rescue waits for the longest a
// job may legitimately run — a turn's timeout (bot.TurnTimeout: the model's
// deadline, then a minute to store and post) or riverJobTimeout for the
// other jobs — plus rescueMargin, in which a job cancelled at its timeout
// returns and River records it. With the default 90 s model deadline a
// dead replica's turns are run again after 3 to 3.5 minutes.
// OPSBOT_RESCUE_AFTER sets RescueStuckJobsAfter instead: River still never
// rescues a turn before its own timeout, so a shorter value hastens the
// other jobs, whose timeout it caps (River requires that), and turns only
// down to their timeout.
const (
	riverJobTimeout = time.Minute
	rescueMargin    = 30 * time.Second
)

// rescueAfter is RescueStuckJobsAfter; see above.
func rescueAfter(c Config) time.Duration {
	if c.RescueAfter > 0 {
		return c.RescueAfter
	}
	return max(bot.TurnTimeout(c.Engine.CallTimeout), riverJobTimeout) + rescueMargin
}

// newRiver builds the River client. workers may be nil for an insert-only
// client, else n of them run at once; periodic jobs run on the elected
// leader only. rescue is rescueAfter (0: River's defaults, for a client
// that runs no turns).
func newRiver(pool *pgxpool.Pool, workers *river.Workers, n int, periodic []*river.PeriodicJob, rescue time.Duration,
	log *slog.Logger) (*river.Client[pgx.Tx], error) {
	cfg := &river.Config{
		Logger:       log,
		PeriodicJobs: periodic,
	}
	if rescue > 0 {
		cfg.JobTimeout = min(riverJobTimeout, rescue)
		cfg.RescueStuckJobsAfter = rescue
	}
	if workers != nil {
		cfg.FetchCooldown, cfg.FetchPollInterval = riverFetchCooldown, riverFetchPoll
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}}
	}
	c, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return c, nil
}

// stopRiver lets running jobs finish for riverStopGrace, then cancels the
// rest; River puts cancelled jobs back in the queue.
func stopRiver(c *river.Client[pgx.Tx], log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), riverStopGrace)
	defer cancel()
	if err := c.Stop(ctx); err == nil {
		return
	}
	log.Warn("jobs still running after the grace period; cancelling them")
	cctx, ccancel := context.WithTimeout(context.Background(), riverCancelWait)
	defer ccancel()
	if err := c.StopAndCancel(cctx); err != nil {
		log.Error("stop river", "error", err)
	}
}
