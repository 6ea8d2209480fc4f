package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
)

// recordingReplier counts posts and can fail the first ones.
type recordingReplier struct {
	mu    sync.Mutex
	posts []Reply
	fail  int // fail this many posts first
}

func (r *recordingReplier) Reply(ctx context.Context, t Turn, rep Reply) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return "", errors.New("slack is down")
	}
	r.posts = append(r.posts, rep)
	return "1764028800.000100", nil
}

func (r *recordingReplier) all() []Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Reply(nil), r.posts...)
}

// retryNow retries failed jobs at once, so tests need not wait out River's
// backoff.
type retryNow struct{}

func (retryNow) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

func newTestRiver(tb testing.TB, w *TurnWorker) *river.Client[pgx.Tx] {
	tb.Helper()
	return newTestRiverOn(tb, testPool, w)
}

func newTestRiverOn(tb testing.TB, pool *pgxpool.Pool, w *TurnWorker) *river.Client[pgx.Tx] {
	tb.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		RetryPolicy:       retryNow{},
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		TestOnly:          true,
	})
	if err != nil {
		tb.Fatalf("river client: %v", err)
	}
	return c
}

func mustEnqueue(tb testing.TB, c *river.Client[pgx.Tx], eventKey string, args TurnArgs) bool {
	tb.Helper()
	return mustEnqueueOn(tb, testPool, c, eventKey, args)
}

func mustEnqueueOn(tb testing.TB, pool *pgxpool.Pool, c *river.Client[pgx.Tx], eventKey string, args TurnArgs) bool {
	tb.Helper()
	if args.Platform == "" {
		args.Platform = "slack"
	}
	isNew, err := NewInbox(pool, c).Accept(context.Background(), eventKey, args)
	if err != nil {
		tb.Fatalf("Accept: %v", err)
	}
	return isNew
}

func turnJobs(tb testing.TB, key string) int {
	return countRows(tb, `SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'key' = $2`, TurnKind, key)
}

func TestAcceptOncePerEvent(t *testing.T) {
	e := New(Config{DB: testPool})
	c := newTestRiver(t, NewTurnWorker(e, nil, nil, nil))
	user := mustUser(t)
	ev := "Ev" + uuid.NewString()
	args := TurnArgs{UserID: user, Text: "token xoxb-2222222222-3333333333333-AbCdEfGhIjKlMnOpQrStUvWx", Source: "slack",
		Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: ev}}
	if !mustEnqueue(t, c, ev, args) {
		t.Fatalf("first delivery not enqueued")
	}
	if mustEnqueue(t, c, ev, args) {
		t.Errorf("retried delivery enqueued again")
	}
	if n := turnJobs(t, "slack:"+ev); n != 1 {
		t.Errorf("jobs = %d, want 1", n)
	}
	var text string
	if err := testPool.QueryRow(context.Background(), `SELECT args->>'text' FROM river_job WHERE args->>'key' = $1`, "slack:"+ev).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if text != "token [REDACTED:slack-token]" {
		t.Errorf("job text = %q, want it redacted", text)
	}
	// A NUL in the text is made storable rather than failing every
	// delivery.
	evNul := "Ev" + uuid.NewString()
	nul := args
	nul.Text = "nul \x00 byte"
	if !mustEnqueue(t, c, evNul, nul) {
		t.Errorf("a text with a NUL was not accepted")
	}
	// A transaction that fails leaves neither the dedupe row nor the job:
	// here the job cannot be inserted (a NUL in its routing data is not
	// valid jsonb), so the redelivery must find nothing recorded.
	ev2 := "Ev" + uuid.NewString()
	bad := args
	bad.Meta = map[string]string{"service_url": "\x00"}
	if _, err := NewInbox(testPool, c).Accept(context.Background(), ev2, bad); err == nil {
		t.Fatalf("Accept of an unstorable job succeeded")
	}
	if n := countRows(t, `SELECT count(*) FROM inbound_events WHERE event_key = $1`, ev2) + turnJobs(t, "slack:"+ev2); n != 0 {
		t.Errorf("rolled-back accept left %d rows", n)
	}
}

// workOnce runs the worker on a job value, as River would on a retry.
func workOnce(w *TurnWorker, args TurnArgs, attempt int) error {
	return w.Work(context.Background(), &river.Job[TurnArgs]{
		JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: TurnMaxAttempts}, Args: args})
}

func TestTurnWorkerRetriesNeverDuplicate(t *testing.T) {
	llm := &fakeLLM{text: "Scaled up.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 3}}
	rp := &recordingReplier{fail: 1}
	w := NewTurnWorker(New(Config{DB: testPool, LLM: llm}), nil, map[string]Replier{"slack": rp}, nil)
	user := mustUser(t)
	args := TurnArgs{Platform: "slack", UserID: user, Text: "scale it", Source: "slack", Key: "slack:Ev" + uuid.NewString(),
		Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: uuid.NewString()}}

	// Attempt 1: the reply is stored but posting fails, so River retries.
	if err := workOnce(w, args, 1); err == nil {
		t.Fatalf("attempt 1 succeeded though posting failed")
	}
	// Attempt 2 posts the stored reply without calling the model again;
	// attempt 3 (a duplicate run) finds it posted and does nothing.
	for attempt := 2; attempt <= 3; attempt++ {
		if err := workOnce(w, args, attempt); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	if posts := rp.all(); len(posts) != 1 || posts[0].Text != "Scaled up." || posts[0].Attempt != 2 {
		t.Errorf("posts = %+v, want the reply once, by attempt 2", posts)
	}
	if n := ledgerRows(t, user); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
	var pmid string
	if err := testPool.QueryRow(context.Background(), `SELECT platform_message_id FROM messages WHERE turn_key = $1 AND role = 'assistant'`,
		args.Key).Scan(&pmid); err != nil || pmid != "1764028800.000100" {
		t.Errorf("platform_message_id = %q (%v), want the posted ts", pmid, err)
	}
}

func TestTurnWorkerTellsTheUserWhenTheModelIsDown(t *testing.T) {
	llm := &fakeLLM{err: &ModelError{Kind: ModelRateLimited, Status: 429, Err: errors.New("slow down")}}
	rp := &recordingReplier{}
	w := NewTurnWorker(New(Config{DB: testPool, LLM: llm}), nil, map[string]Replier{"slack": rp}, nil)
	user := mustUser(t)
	args := TurnArgs{Platform: "slack", UserID: user, Text: "hi", Source: "slack", Key: "slack:Ev" + uuid.NewString(),
		Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: uuid.NewString()}}
	if err := workOnce(w, args, 1); err != nil {
		t.Fatalf("Work: %v (a model outage is answered, not retried by River)", err)
	}
	posts := rp.all()
	if len(posts) != 1 || posts[0].Stored() || posts[0].Text != UserMessage(llm.err) {
		t.Errorf("posts = %+v, want one unstored notice %q", posts, UserMessage(llm.err))
	}
	if n := ledgerRows(t, user); n != 0 {
		t.Errorf("ledger rows = %d, want 0", n)
	}
}

// TestTurnSurvivesWorkerKill stops the River client between the model's
// answer and the transaction that stores it, starts a new client, and
// checks that the turn ends with exactly one reply and one post, and that
// the rerun stored the answer the killed attempt paid for: one model call,
// one ledger row, unstored after the kill and stored after the rerun.
func TestTurnSurvivesWorkerKill(t *testing.T) {
	ctx := context.Background()
	// A database of its own, so no other test's jobs are in the queue.
	pool := testdb.New(t)
	llm := &fakeLLM{text: "Failover done.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 40, CompletionTokens: 8}}
	e := New(Config{DB: pool, LLM: llm})
	rp := &recordingReplier{}
	w := NewTurnWorker(e, nil, map[string]Replier{"slack": rp}, nil)

	first := newTestRiverOn(t, pool, w)
	stopped := make(chan error, 1)
	var once sync.Once
	e.afterModel = func(jobCtx context.Context) {
		once.Do(func() {
			// The process "dies" now: stop the client and cancel its jobs,
			// then let this job run on into its cancelled context.
			go func() { stopped <- first.StopAndCancel(context.Background()) }()
			<-jobCtx.Done()
		})
	}
	if err := first.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	var user uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('oncall') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ledger := func() int { return count(`SELECT count(*) FROM usage_events WHERE user_id = $1`, user) }
	ev := "Ev" + uuid.NewString()
	args := TurnArgs{UserID: user, Text: "fail over db-2", Source: "slack",
		Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: ev}}
	if !mustEnqueueOn(t, pool, first, ev, args) {
		t.Fatalf("not enqueued")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("StopAndCancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the job never reached the model")
	}
	if n := len(llm.calls()); n != 1 {
		t.Fatalf("model calls before restart = %d, want 1", n)
	}
	if n := count(`SELECT count(*) FROM messages WHERE turn_key = $1`, "slack:"+ev); n != 0 {
		t.Fatalf("the killed attempt stored %d messages, want 0", n)
	}
	// Its model call was paid for: it is on the ledger, as unstored.
	var rowID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM usage_events WHERE user_id = $1 AND outcome = 'unstored'
		AND conversation_id IS NULL AND message_id IS NULL AND cost_micro_usd = 11`, user).Scan(&rowID); err != nil {
		t.Fatalf("unstored ledger row after the kill: %v; want one costing 40 x 0.15 + 8 x 0.60 = 10.8, rounded to 11", err)
	}

	// River puts a job interrupted by shutdown back in the queue.
	if n := count(`SELECT count(*) FROM river_job WHERE state = 'available'`); n != 1 {
		t.Errorf("available jobs after the kill = %d, want 1", n)
	}
	// Restart: a new client picks the job up again.
	second := newTestRiverOn(t, pool, w)
	events, cancel := second.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	if err := second.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = second.Stop(context.Background()) })
	select {
	case ev := <-events:
		if ev.Job.Kind != TurnKind {
			t.Errorf("completed a %s job, want %s", ev.Job.Kind, TurnKind)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the job was not completed after the restart")
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1 (the rerun stores the killed attempt's answer)", n)
	}
	if n := ledger(); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
	if n := count(`SELECT count(*) FROM usage_events u JOIN messages m ON m.id = u.message_id
		WHERE u.id = $1 AND u.outcome = 'stored' AND u.conversation_id = m.conversation_id AND m.turn_key = $2
		AND m.role = 'assistant' AND u.cost_micro_usd = 11`, rowID, "slack:"+ev); n != 1 {
		t.Errorf("the killed attempt's ledger row is not the stored reply's (%d rows match)", n)
	}
	if n := count(`SELECT count(*) FROM messages WHERE turn_key = $1 AND role = 'assistant'`, "slack:"+ev); n != 1 {
		t.Errorf("replies = %d, want 1", n)
	}
	if posts := rp.all(); len(posts) != 1 || posts[0].Text != "Failover done." {
		t.Errorf("posts = %+v, want the reply once", posts)
	}
}

// streamingReplier records streamed pieces per turn, then the final post.
type streamingReplier struct {
	recordingReplier
	streams int
	pieces  []string
}

func (s *streamingReplier) Stream(ctx context.Context, t Turn) (func(string), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams++
	return func(d string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pieces = append(s.pieces, d)
	}, nil
}

func TestTurnWorkerStreams(t *testing.T) {
	llm := &fakeLLM{chunks: []string{"Check ", "the ", "queue."}, model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 5, CompletionTokens: 3}}
	rp := &streamingReplier{recordingReplier: recordingReplier{fail: 1}}
	w := NewTurnWorker(New(Config{DB: testPool, LLM: llm}), nil, map[string]Replier{"slack": rp}, nil)
	args := TurnArgs{Platform: "slack", UserID: mustUser(t), Text: "lag?", Source: "slack", Key: "slack:Ev" + uuid.NewString(),
		Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: uuid.NewString()}}
	if err := workOnce(w, args, 1); err == nil {
		t.Fatalf("attempt 1 succeeded though the final post failed")
	}
	if err := workOnce(w, args, 2); err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	// The answer streamed once; the retry posted the stored reply without
	// streaming it again.
	if rp.streams != 1 || strings.Join(rp.pieces, "|") != "Check |the |queue." {
		t.Errorf("streams %d, pieces %q; want one stream of the three pieces", rp.streams, rp.pieces)
	}
	if posts := rp.all(); len(posts) != 1 || posts[0].Text != "Check the queue." {
		t.Errorf("posts = %+v, want the final reply once", posts)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
}

// A turn for a platform this replica has no replier for goes back to River
// to be retried (another replica may serve it), not cancelled.
func TestTurnWorkerWithoutReplierRetries(t *testing.T) {
	w := NewTurnWorker(New(Config{DB: testPool}), nil, map[string]Replier{"slack": &recordingReplier{}}, nil)
	err := workOnce(w, TurnArgs{Platform: "teams", UserID: mustUser(t), Text: "hi", Source: "teams", Key: "teams:a1@msteams"}, 1)
	var cancel *river.JobCancelError
	if err == nil || errors.As(err, &cancel) {
		t.Errorf("Work = %v, want an error River retries", err)
	}
}

// The inbox forgets events older than its retention, in batches, and
// keeps the recent ones a redelivery could still name.
func TestInboxPurge(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if _, err := db.Exec(ctx, `INSERT INTO inbound_events (platform, event_key, received_at)
		SELECT 'slack', 'old' || i, $1::timestamptz FROM generate_series(1, 5001) i
		UNION ALL SELECT 'slack', 'recent', $2::timestamptz`,
		now.Add(-InboxRetention-time.Minute), now.Add(-InboxRetention+time.Minute)); err != nil {
		t.Fatal(err)
	}
	w := NewInboxPurgeWorker(db, func() time.Time { return now })
	if err := w.Work(ctx, &river.Job[InboxPurgeArgs]{}); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, _ := db.Query(ctx, `SELECT event_key FROM inbound_events`)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		left = append(left, k)
	}
	if rows.Err() != nil || len(left) != 1 || left[0] != "recent" {
		t.Errorf("left %d events (%v), want only the recent one", len(left), rows.Err())
	}
}

// Redaction markers can be longer than the secrets they replace: a message
// within the limit stays within it in the job row, so the engine does not
// refuse it as too long.
func TestStorableTextStaysWithinTheLimit(t *testing.T) {
	secret := "mysql -pS3cr3tPw!\n" // 18 bytes become 32
	text := strings.Repeat(secret, conversations.MaxContentBytes/len(secret))
	if len(text) > conversations.MaxContentBytes {
		t.Fatalf("test text is %d bytes, over the limit", len(text))
	}
	got := storableText(text)
	if len(got) > conversations.MaxContentBytes || strings.Contains(got, "S3cr3t") {
		t.Errorf("stored %d bytes (secret kept: %v), want at most %d and redacted", len(got), strings.Contains(got, "S3cr3t"), conversations.MaxContentBytes)
	}
	if Redact(text) == got && len(Redact(text)) <= conversations.MaxContentBytes {
		t.Fatalf("redaction did not grow the text: the test proves nothing")
	}
}
