package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/apacops/opsbot/adapters/openai"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/periodic"
	"github.com/apacops/opsbot/users"
)

func runRunbooks(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("runbooks sync DIR | runbooks gaps [--days 7]")
	}
	switch args[0] {
	case "sync":
		return runbooksSync(ctx, e, args[1:])
	case "gaps":
		return runbooksGaps(ctx, e, args[1:])
	}
	return usageError(fmt.Sprintf("unknown runbooks command %q", args[0]))
}

// runbooksSync indexes a directory of runbooks and prints what it did.
func runbooksSync(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("runbooks sync", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("runbooks sync needs exactly one directory")
	}
	dir := fs.Arg(0)
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	ix, err := newRunbookIndex(ctx, e.cfg, pool, e.log)
	if err != nil {
		return err
	}

	progress, finish := syncProgress(e.stdout)
	st, err := ix.Sync(ctx, dir, progress)
	finish()
	if err != nil {
		return err
	}
	printSyncStats(e.stdout, dir, st)
	return nil
}

// syncProgress reports Sync's progress as a bar on a terminal and as one line
// per file otherwise (CI logs, make run). finish ends the bar.
func syncProgress(w io.Writer) (progress func(done, total int, path string), finish func()) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int, path string) {
				if bar == nil {
					bar = progressbar.NewOptions(total,
						progressbar.OptionSetWriter(w),
						progressbar.OptionSetDescription("indexing runbooks"),
						progressbar.OptionShowCount(),
						progressbar.OptionSetWidth(30),
						progressbar.OptionClearOnFinish())
				}
				_ = bar.Set(done)
			}, func() {
				if bar != nil {
					_ = bar.Finish()
				}
			}
	}
	return func(done, total int, path string) {
		if done > 0 {
			fmt.Fprintf(w, "[%d/%d] %s\n", done, total, path)
		}
	}, func() {}
}

func printSyncStats(w io.Writer, dir string, st knowledge.SyncStats) {
	fmt.Fprintf(w, "runbooks in %s: %d indexed (%d sections), %d unchanged, %d removed, %d skipped\n",
		dir, len(st.Indexed), st.Sections, st.Unchanged, len(st.Removed), len(st.Skipped))
	for _, p := range st.Indexed {
		fmt.Fprintf(w, "  indexed  %s\n", p)
	}
	for _, p := range st.Removed {
		fmt.Fprintf(w, "  removed  %s\n", p)
	}
	for _, s := range st.Skipped {
		fmt.Fprintf(w, "  skipped  %s: %s\n", s.Path, s.Reason)
	}
	switch {
	case st.EmbedFailed != "":
		fmt.Fprintf(w, "embeddings: %d sections embedded, the others are not yet (%s); they are searched by words until the next sync\n",
			st.Embedded, st.EmbedFailed)
	case st.Embedded > 0:
		fmt.Fprintf(w, "embeddings: %d sections embedded\n", st.Embedded)
	}
}

// runbookServiceHandle is the user that sync-time embedding calls are
// charged to on the usage ledger: no person asked for them, and the
// ledger's rows and rollups all name a user. Chat identities are
// "slack:…"/"teams:…", so no person gets this handle by chatting.
const runbookServiceHandle = "system:runbooks"

// newRunbookIndex is the runbook index every command uses: lexical, or
// hybrid when an embeddings model is configured (cfg.Engine.Embeddings),
// its calls priced from the price table and charged to the asking user or
// to runbookServiceHandle.
func newRunbookIndex(ctx context.Context, cfg Config, pool *pgxpool.Pool, log *slog.Logger) (*knowledge.Index, error) {
	opts := []knowledge.Option{knowledge.WithLogger(log)}
	if cfg.Engine.Embeddings {
		emb, err := openai.NewEmbedder(cfg.Engine.LLM)
		if err != nil {
			return nil, err
		}
		service, err := users.NewStore(pool, cfg.TimeZone).Ensure(ctx, runbookServiceHandle, users.RoleUser)
		if err != nil {
			return nil, fmt.Errorf("runbook index service user: %w", err)
		}
		opts = append(opts, knowledge.WithEmbeddings(knowledge.Embeddings{Embedder: emb, Model: emb.Model(),
			Prices: cfg.Engine.Prices, ServiceUser: service.ID}))
		log.Info("hybrid runbook search", "embeddings", emb.String())
	}
	return knowledge.New(pool, time.Now, opts...), nil
}

// runbooksGaps prints the questions the runbooks could not answer.
func runbooksGaps(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("runbooks gaps", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	days := fs.Int("days", 7, "how many days back to look (1-366)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("runbooks gaps takes no arguments besides --days")
	}
	if *days < 1 || *days > 366 {
		return usageError(fmt.Sprintf("--days %d: want 1 to 366", *days))
	}
	loc, err := time.LoadLocation(e.cfg.TimeZone)
	if err != nil {
		return fmt.Errorf("load time zone %q: %w", e.cfg.TimeZone, err)
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	ix := knowledge.New(pool, time.Now)
	rep, err := ix.Gaps(ctx, time.Now().Add(-time.Duration(*days)*24*time.Hour))
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, rep.Text(loc))
	return nil
}

// gapReportJobs registers the weekly "questions the runbooks could not
// answer" worker on workers and returns its periodic job on
// OPSBOT_GAPS_SCHEDULE (none when the schedule is off). The report goes
// through n, the notifier the usage digest uses.
func gapReportJobs(cfg Config, ix *knowledge.Index, n periodic.Notifier, workers *river.Workers) ([]*river.PeriodicJob, error) {
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("load time zone %q: %w", cfg.TimeZone, err)
	}
	if err := river.AddWorkerSafely(workers, &knowledge.GapReportWorker{Index: ix, Notifier: n, Location: loc}); err != nil {
		return nil, fmt.Errorf("add runbook gap report worker: %w", err)
	}
	sched, err := knowledge.ParseSchedule(cfg.GapsSchedule)
	if err != nil {
		return nil, fmt.Errorf("OPSBOT_GAPS_SCHEDULE: %w", err)
	}
	if sched == nil {
		return nil, nil
	}
	return []*river.PeriodicJob{knowledge.GapReportJob(sched)}, nil
}
