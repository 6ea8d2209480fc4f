package usage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
)

func TestJobsConfig(t *testing.T) {
	if err := (JobsConfig{DigestSchedule: "CRON_TZ=UTC"}).Validate(); err == nil || !strings.Contains(err.Error(), "OPSBOT_DIGEST_SCHEDULE") {
		t.Errorf("Validate: got %v, want an error naming OPSBOT_DIGEST_SCHEDULE", err)
	}
	j := &Jobs{}
	if jobs, err := j.PeriodicJobs(); err != nil || len(jobs) != 1 {
		t.Errorf("default: got %d jobs, %v; want the digest", len(jobs), err)
	}
	j.Config.DigestSchedule = "off"
	if jobs, err := j.PeriodicJobs(); err != nil || len(jobs) != 0 {
		t.Errorf("off: got %d jobs, %v; want none", len(jobs), err)
	}
}

func TestBuildDigest(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t) // an org of its own
	rp := NewReports(db)
	mk := func(handle string) uuid.UUID {
		var id uuid.UUID
		if err := db.QueryRow(ctx, `INSERT INTO users (handle) VALUES ($1) RETURNING id`, handle).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ana, ben := mk("ana"), mk("ben")
	manila, _ := time.LoadLocation("Asia/Manila")
	for _, e := range []Event{
		{UserID: ana, Model: "gpt-4o", PromptTokens: 1000, CompletionTokens: 234, CostMicroUSD: 2_000_000, OccurredAt: time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)}, // 00:00 24 Nov Manila
		{UserID: ben, Model: "gpt-4o-mini", PromptTokens: 1000, CostMicroUSD: 1_000_000, OccurredAt: time.Date(2026, 11, 24, 15, 59, 59, 0, time.UTC)},
		{UserID: ben, Model: "gpt-4o-mini", CostMicroUSD: 2_000_000, OccurredAt: time.Date(2026, 11, 23, 15, 59, 59, 0, time.UTC)}, // 23 Nov
	} {
		e.Source = "slack"
		if err := Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, `INSERT INTO budgets (user_id, monthly_limit_micro_usd) VALUES (NULL, 100000000)`); err != nil {
		t.Fatal(err)
	}
	text, err := BuildDigest(ctx, rp, db, manila, Date{2026, 11, 24})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Tue 24 Nov 2026 (Asia/Manila)",
		"Cost $3.00 · 2,234 tokens · 2 replies · 2 users (day before: $2.00, +50%)",
		"Top users: ana $2.00, ben $1.00",
		"Top models: gpt-4o $2.00, gpt-4o-mini $1.00",
		"Month to date: $5.00 of the $100.00 team budget (5%)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("digest:\n%s\nwant it to contain %q", text, want)
		}
	}
}

// countingNotifier counts deliveries; fail makes the first n fail.
type countingNotifier struct {
	mu    sync.Mutex
	texts []string
	fail  int
}

func (n *countingNotifier) Notify(_ context.Context, text string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail > 0 {
		n.fail--
		return errors.New("chat is down")
	}
	n.texts = append(n.texts, text)
	return nil
}

func (n *countingNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.texts)
}

// startClient starts a River client ("an instance") with the usage workers
// and the given periodic jobs; it is stopped at cleanup.
func startClient(tb testing.TB, db *pgxpool.Pool, j *Jobs, periodic []*river.PeriodicJob, extra func(*river.Workers)) *river.Client[pgx.Tx] {
	tb.Helper()
	workers := river.NewWorkers()
	if err := j.AddWorkers(workers); err != nil {
		tb.Fatal(err)
	}
	if extra != nil {
		extra(workers)
	}
	cfg := testriver.Config(workers, periodic)
	cfg.RetryPolicy = nil // River's own backoff: the panic test looks for a job waiting to retry
	return testriver.Start(tb, db, cfg)
}

// TestPeriodicJobsOnceAcrossInstances runs two River clients on one
// database, both configured with the digest due at one instant: it is
// enqueued and worked exactly once, and a first failed delivery is retried.
func TestPeriodicJobsOnceAcrossInstances(t *testing.T) {
	db := testdb.New(t)
	notifier := &countingNotifier{fail: 1}
	j := &Jobs{DB: db, Notifier: notifier}
	due := &testriver.Soon{}
	startClient(t, db, j, j.periodicJobs(due), nil)
	startClient(t, db, j, j.periodicJobs(due), nil)

	kind := DigestArgs{}.Kind()
	testriver.WaitFor(t, "the digest job completed", func() bool { return testriver.JobCount(t, db, kind, "completed") == 1 })
	time.Sleep(2 * time.Second) // room for a duplicate to show up, if there were one
	if n := testriver.JobCount(t, db, kind, ""); n != 1 {
		t.Errorf("%s: got %d jobs, want 1 across both instances", kind, n)
	}
	if got := notifier.count(); got != 1 {
		t.Errorf("digests delivered: got %d, want 1", got)
	}
	var attempts int
	if err := db.QueryRow(context.Background(), `SELECT attempt FROM river_job WHERE kind = $1`, kind).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 {
		t.Errorf("digest attempts: got %d, want 2 (the first delivery failed and was retried)", attempts)
	}
}

// panicArgs is a job whose worker always panics.
type panicArgs struct{}

func (panicArgs) Kind() string { return "test_panic" }

type panicWorker struct {
	river.WorkerDefaults[panicArgs]
	runs *atomic.Int32
}

func (w *panicWorker) Work(context.Context, *river.Job[panicArgs]) error {
	w.runs.Add(1)
	panic("boom")
}

// TestPanickingJobDoesNotStopOthers: a job that panics is recorded and
// scheduled for retry, and the other jobs still run.
func TestPanickingJobDoesNotStopOthers(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	notifier := &countingNotifier{}
	j := &Jobs{DB: db, Notifier: notifier, Config: JobsConfig{}}
	var runs atomic.Int32
	client := startClient(t, db, j, nil, func(w *river.Workers) { river.AddWorker(w, &panicWorker{runs: &runs}) })
	if _, err := client.Insert(ctx, panicArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Insert(ctx, DigestArgs{Date: "2026-11-24"}, nil); err != nil {
		t.Fatal(err)
	}
	testriver.WaitFor(t, "the digest delivered", func() bool { return notifier.count() == 1 })
	testriver.WaitFor(t, "the panic recorded", func() bool { return testriver.JobCount(t, db, "test_panic", "retryable") == 1 })
	var errText string
	if err := db.QueryRow(ctx, `SELECT errors[1]->>'error' FROM river_job WHERE kind = 'test_panic'`).Scan(&errText); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "boom") {
		t.Errorf("recorded error %q, want the panic value", errText)
	}
	if runs.Load() < 1 {
		t.Errorf("panic worker ran %d times, want at least 1", runs.Load())
	}
	// The client is still working: a later job runs too.
	if _, err := client.Insert(ctx, DigestArgs{Date: "2026-11-23"}, nil); err != nil {
		t.Fatal(err)
	}
	testriver.WaitFor(t, "a second digest after the panic", func() bool { return notifier.count() == 2 })
}
