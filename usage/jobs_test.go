package usage

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
)

func TestParseSchedule(t *testing.T) {
	sgt, _ := time.LoadLocation("Asia/Singapore")
	from := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC) // 10:00 SGT, a Tuesday
	tests := []struct {
		spec     string
		wantNext time.Time // zero: disabled
		wantErr  bool
	}{
		{"", time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC), false}, // default 09:00 SGT tomorrow
		{"CRON_TZ=Asia/Kolkata 0 9 * * *", time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC), false},
		{"CRON_TZ=Asia/Kathmandu 0 9 * * *", time.Date(2026, 11, 24, 3, 15, 0, 0, time.UTC), false},
		{"0 9 * * 1-5", time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), false}, // no zone: UTC
		{"off", time.Time{}, false},
		{" OFF ", time.Time{}, false},
		{"CRON_TZ=UTC", time.Time{}, true}, // panics inside robfig/cron unguarded
		{"TZ=UTC", time.Time{}, true},
		{"CRON_TZ=Mars/Olympus 0 9 * * *", time.Time{}, true},
		{"0 9 * *", time.Time{}, true},
		{"@daily", time.Time{}, true},
		{"61 9 * * *", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec, DefaultDigestSchedule, sgt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if tt.wantNext.IsZero() {
				if s != nil {
					t.Errorf("got a schedule, want disabled")
				}
				return
			}
			if got := s.Next(from); !got.Equal(tt.wantNext) {
				t.Errorf("next after %v: got %v, want %v", from, got.UTC(), tt.wantNext)
			}
		})
	}
	if err := (JobsConfig{DigestSchedule: "CRON_TZ=UTC"}).Validate(); err == nil || !strings.Contains(err.Error(), "OPSBOT_DIGEST_SCHEDULE") {
		t.Errorf("Validate: got %v, want an error naming OPSBOT_DIGEST_SCHEDULE", err)
	}
	if err := (JobsConfig{RetentionDays: -1}).Validate(); err == nil {
		t.Error("Validate with negative retention: got nil, want an error")
	}
}

func TestPeriodicJobsConfig(t *testing.T) {
	j := &Jobs{Config: JobsConfig{AutoArchiveDays: 30}}
	jobs, err := j.PeriodicJobs()
	if err != nil || len(jobs) != 2 {
		t.Errorf("digest + archive: got %d jobs, %v; want 2", len(jobs), err)
	}
	j.Config = JobsConfig{DigestSchedule: "off", ArchiveSchedule: "off", RetentionDays: 90}
	if jobs, _ = j.PeriodicJobs(); len(jobs) != 1 {
		t.Errorf("retention only: got %d jobs, want 1", len(jobs))
	}
}

// mustConversation creates a conversation whose last activity was at.
func mustConversation(tb testing.TB, db *pgxpool.Pool, owner uuid.UUID, at time.Time) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := db.QueryRow(context.Background(), `
		INSERT INTO conversations (owner_id, title, source, created_at, updated_at, last_message_at)
		VALUES ($1, 'old', 'api', $2, $2, $2) RETURNING id`, owner, at).Scan(&id)
	if err != nil {
		tb.Fatalf("create conversation: %v", err)
	}
	return id
}

func TestArchiveIdle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	owner := mustUser(t, "archive-"+uuid.NewString()[:8])
	idle := mustConversation(t, testPool, owner, now.Add(-31*24*time.Hour))
	recent := mustConversation(t, testPool, owner, now.Add(-29*24*time.Hour))
	j := &Jobs{DB: testPool, Now: func() time.Time { return now }}

	n, err := ArchiveIdle(ctx, j, 30)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("archived %d, want at least the idle one", n)
	}
	store := conversations.NewStore(testPool)
	if c, _ := store.Get(ctx, owner, idle); c.ArchivedAt == nil {
		t.Errorf("idle conversation not archived")
	}
	if c, _ := store.Get(ctx, owner, recent); c.ArchivedAt != nil {
		t.Errorf("recent conversation archived")
	}
	msgs, err := store.Recent(ctx, idle, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Role != "system" || msgs[0].Content != AutoArchiveNotice(30) {
		t.Errorf("got messages %+v, want the one auto-archive notice", msgs)
	}
	// Undo: unarchive, and the notice counts as activity, so it stays open.
	if _, err := store.Unarchive(ctx, owner, idle); err != nil {
		t.Fatal(err)
	}
	if _, err := ArchiveIdle(ctx, j, 30); err != nil {
		t.Fatal(err)
	}
	if c, _ := store.Get(ctx, owner, idle); c.ArchivedAt != nil {
		t.Errorf("unarchived conversation archived again at once")
	}
}

func TestPurgeMessages(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	owner := mustUser(t, "purge-"+uuid.NewString()[:8])
	conv := mustConversation(t, testPool, owner, now)
	var oldMsg, newMsg uuid.UUID
	for _, m := range []struct {
		at  time.Time
		dst *uuid.UUID
	}{{now.Add(-91 * 24 * time.Hour), &oldMsg}, {now.Add(-89 * 24 * time.Hour), &newMsg}} {
		if err := testPool.QueryRow(ctx, `INSERT INTO messages (conversation_id, role, content, created_at)
			VALUES ($1, 'assistant', 'x', $2) RETURNING id`, conv, m.at).Scan(m.dst); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testPool.Exec(ctx, `UPDATE conversations SET message_count = 2 WHERE id = $1`, conv); err != nil {
		t.Fatal(err)
	}
	if err := Record(ctx, testPool, Event{UserID: owner, ConversationID: conv, MessageID: oldMsg, Source: "api",
		Model: "gpt-4o", CostMicroUSD: 777, OccurredAt: now.Add(-91 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	n, err := PurgeMessages(ctx, &Jobs{DB: testPool, Now: func() time.Time { return now }}, 90)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("deleted %d, want at least 1", n)
	}
	var left []uuid.UUID
	rows, _ := testPool.Query(ctx, `SELECT id FROM messages WHERE conversation_id = $1`, conv)
	for rows.Next() {
		var id uuid.UUID
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if rows.Err() != nil || len(left) != 1 || left[0] != newMsg {
		t.Errorf("messages left %v, want only %v", left, newMsg)
	}
	var count int
	var msgID *uuid.UUID
	var cost int64
	if err := testPool.QueryRow(ctx, `SELECT c.message_count, u.message_id, u.cost_micro_usd
		FROM conversations c JOIN usage_events u ON u.conversation_id = c.id WHERE c.id = $1`, conv).Scan(&count, &msgID, &cost); err != nil {
		t.Fatalf("ledger row gone? %v", err)
	}
	if count != 1 || msgID != nil || cost != 777 {
		t.Errorf("got message_count %d, ledger message %v cost %d; want 1, NULL, 777 (ledger kept)", count, msgID, cost)
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

// soon is a schedule that fires once, a second after it is first consulted
// (by the elected leader's enqueuer), however long the election took.
type soon struct {
	mu sync.Mutex
	at time.Time
}

func (s *soon) Next(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at.IsZero() {
		s.at = t.Add(time.Second)
	}
	if t.Before(s.at) {
		return s.at
	}
	return s.at.AddDate(100, 0, 0)
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
	client, err := river.NewClient(riverpgxv5.New(db), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		PeriodicJobs:      periodic,
		FetchPollInterval: 100 * time.Millisecond,
		TestOnly:          true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(ctx); err != nil {
			tb.Errorf("stop river client: %v", err)
		}
	})
	return client
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jobCount(tb testing.TB, db *pgxpool.Pool, kind, state string) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = $1 AND ($2 = '' OR state::text = $2)`, kind, state).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestPeriodicJobsOnceAcrossInstances runs two River clients on one
// database, both configured with the same periodic jobs due at one instant:
// each job is enqueued and worked exactly once, and a first failed delivery
// is retried.
func TestPeriodicJobsOnceAcrossInstances(t *testing.T) {
	db := testdb.New(t)
	notifier := &countingNotifier{fail: 1}
	j := &Jobs{DB: db, Notifier: notifier, Config: JobsConfig{AutoArchiveDays: 30, RetentionDays: 365}}
	due := &soon{}
	s := schedules{digest: due, archive: due, retention: due}
	startClient(t, db, j, j.periodicJobs(s), nil)
	startClient(t, db, j, j.periodicJobs(s), nil)

	kinds := []string{DigestArgs{}.Kind(), ArchiveIdleArgs{}.Kind(), RetentionArgs{}.Kind()}
	waitFor(t, "all three jobs completed", func() bool {
		for _, k := range kinds {
			if jobCount(t, db, k, "completed") != 1 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // room for a duplicate to show up, if there were one
	for _, k := range kinds {
		if n := jobCount(t, db, k, ""); n != 1 {
			t.Errorf("%s: got %d jobs, want 1 across both instances", k, n)
		}
	}
	if got := notifier.count(); got != 1 {
		t.Errorf("digests delivered: got %d, want 1", got)
	}
	var attempts int
	if err := db.QueryRow(context.Background(), `SELECT attempt FROM river_job WHERE kind = $1`, kinds[0]).Scan(&attempts); err != nil {
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
	waitFor(t, "the digest delivered", func() bool { return notifier.count() == 1 })
	waitFor(t, "the panic recorded", func() bool { return jobCount(t, db, "test_panic", "retryable") == 1 })
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
	waitFor(t, "a second digest after the panic", func() bool { return notifier.count() == 2 })
}

func TestNotifiersTriesAll(t *testing.T) {
	down, up := &countingNotifier{fail: 1}, &countingNotifier{}
	err := Notifiers{down, up}.Notify(context.Background(), "digest")
	if err == nil || !strings.Contains(err.Error(), "chat is down") {
		t.Errorf("got %v, want the failure reported", err)
	}
	if up.count() != 1 {
		t.Errorf("the working notifier got %d reports, want 1", up.count())
	}
}

// TestLogNotifierKeepsTextOutOfInfo: with no chat channel the reports go to
// the log, but what people asked (quoted by the gap report) only at debug
// level.
func TestLogNotifierKeepsTextOutOfInfo(t *testing.T) {
	report := "Questions our runbooks could not answer, 2026-11-16 09:00 to 2026-11-23 09:00 SGT\n" +
		"1 questions, 1 distinct:\n 1. \"how do I rotate the vault token for payments-prod\" — asked 1×\n"
	for _, tt := range []struct {
		level    slog.Level
		wantBody bool
	}{{slog.LevelInfo, false}, {slog.LevelDebug, true}} {
		var buf strings.Builder
		n := LogNotifier{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))}
		if err := n.Notify(context.Background(), report); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "Questions our runbooks could not answer") || !strings.Contains(buf.String(), "lines=3") {
			t.Errorf("%s log %q: want the report's first line and its length", tt.level, buf.String())
		}
		if got := strings.Contains(buf.String(), "vault token"); got != tt.wantBody {
			t.Errorf("%s log %q: question logged %v, want %v", tt.level, buf.String(), got, tt.wantBody)
		}
	}
}

// recordingPurger is a CopyPurger that remembers the cutoff it was given.
type recordingPurger struct{ cutoff time.Time }

func (p *recordingPurger) PurgeQuestionsBefore(_ context.Context, cutoff time.Time) (int64, error) {
	p.cutoff = cutoff
	return 3, nil
}

// The retention purge also empties the other stores of people's words, with
// the same cutoff as the messages.
func TestRetentionPurgesCopies(t *testing.T) {
	now := time.Date(2026, 11, 20, 3, 30, 0, 0, time.UTC)
	p := &recordingPurger{}
	w := &RetentionWorker{jobs: &Jobs{DB: testPool, Now: func() time.Time { return now }, Copies: []CopyPurger{p}}}
	if err := w.Work(context.Background(), &river.Job[RetentionArgs]{Args: RetentionArgs{Days: 30}}); err != nil {
		t.Fatalf("work: %v", err)
	}
	if want := now.Add(-30 * 24 * time.Hour); !p.cutoff.Equal(want) {
		t.Errorf("copies purged before %v, want %v", p.cutoff, want)
	}
}
