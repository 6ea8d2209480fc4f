package bot

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
	"github.com/apacops/opsbot/users"
)

// testSurface is a chat surface as Slack and Teams are built: a webhook
// that hands each delivery to the inbox (deliver), and the Replier the turn
// worker posts through.
type testSurface struct {
	inbox *Inbox
	mu    sync.Mutex
	posts []Reply
}

const testPlatform = "testchat"

// deliver is the surface's webhook: one delivery of an event.
func (s *testSurface) deliver(ctx context.Context, eventID string, user uuid.UUID, thread *conversations.ThreadKey, text string) (bool, error) {
	_, isCommand := commands.ParseMessage(text)
	return s.inbox.Accept(ctx, eventID, TurnArgs{Platform: testPlatform, UserID: user, Thread: thread, Text: text,
		Source: conversations.SourceSlack, Command: isCommand})
}

func (s *testSurface) Reply(_ context.Context, _ Turn, r Reply) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = append(s.posts, r)
	return "msg-" + uuid.NewString(), nil
}

func (s *testSurface) all() []Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reply(nil), s.posts...)
}

// startSurface runs a River client with the turn worker posting through a
// test surface, on a database of its own.
func startSurface(t *testing.T, llm LLM) (*testSurface, *pgxpool.Pool) {
	t.Helper()
	db := testdb.New(t)
	surface := &testSurface{}
	cmds := commands.New(commands.Config{DB: db, Users: users.NewStore(db, "Asia/Singapore")})
	workers := river.NewWorkers()
	river.AddWorker(workers, NewTurnWorker(New(Config{DB: db, LLM: llm}), cmds, map[string]Replier{testPlatform: surface}, nil))
	client := testriver.Start(t, db, testriver.Config(workers, nil))
	surface.inbox = NewInbox(db, client)
	return surface, db
}

// The chat seam end to end: five concurrent deliveries of one event, and a
// later redelivery, make one job, one model call, one stored reply, one
// ledger row and one post.
func TestSurfaceRedeliveriesAnsweredOnce(t *testing.T) {
	ctx := context.Background()
	llm := &fakeLLM{text: "Drain the node, then reboot it.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 30, CompletionTokens: 8}}
	surface, db := startSurface(t, llm)
	var user uuid.UUID
	if err := db.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('oncall') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	thread := &conversations.ThreadKey{Platform: testPlatform, Tenant: "T1", Channel: "C1", Thread: "1764560000.000100"}
	const deliveries = 5
	var wg sync.WaitGroup
	results := make(chan bool, deliveries)
	start := make(chan struct{})
	for range deliveries {
		wg.Go(func() {
			<-start
			isNew, err := surface.deliver(ctx, "Ev1", user, thread, "node web-03 is NotReady, what now?")
			if err != nil {
				t.Errorf("deliver: %v", err)
			}
			results <- isNew
		})
	}
	close(start)
	wg.Wait()
	close(results)
	fresh := 0
	for isNew := range results {
		if isNew {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d of %d concurrent deliveries were new, want exactly 1", fresh, deliveries)
	}
	testriver.WaitFor(t, "the turn job completed", func() bool { return testriver.JobCount(t, db, TurnKind, "completed") == 1 })
	if isNew, err := surface.deliver(ctx, "Ev1", user, thread, "node web-03 is NotReady, what now?"); err != nil || isNew {
		t.Fatalf("a later redelivery: new %v, %v; want an old event", isNew, err)
	}
	time.Sleep(200 * time.Millisecond) // room for a second job to run, if there were one

	count := func(sql string) int {
		var n int
		if err := db.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn'`); n != 1 {
		t.Errorf("turn jobs = %d, want 1", n)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	if n := count(`SELECT count(*) FROM messages WHERE role = 'assistant'`); n != 1 {
		t.Errorf("stored replies = %d, want 1", n)
	}
	if n := count(`SELECT count(*) FROM usage_events`); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
	posts := surface.all()
	if len(posts) != 1 || posts[0].Text != "Drain the node, then reboot it." || !posts[0].Stored() {
		t.Errorf("posts = %+v, want the stored reply once", posts)
	}
	var pmid string
	if err := db.QueryRow(ctx, `SELECT platform_message_id FROM messages WHERE role = 'assistant'`).Scan(&pmid); err != nil || pmid == "" {
		t.Errorf("platform message id %q, %v; want the posted id recorded", pmid, err)
	}
}

// A command given in a chat goes through the same inbox and worker, runs
// the shared command set and reaches the surface as a structured result.
func TestSurfaceCommandThroughTheInbox(t *testing.T) {
	ctx := context.Background()
	llm := &fakeLLM{text: "unused"}
	surface, db := startSurface(t, llm)
	var user uuid.UUID
	if err := db.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('ana') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	thread := &conversations.ThreadKey{Platform: testPlatform, Tenant: "T1", Channel: "C1", Thread: "1764560000.000200"}
	if isNew, err := surface.deliver(ctx, "Ev2", user, thread, "Usage 7D"); err != nil || !isNew {
		t.Fatalf("deliver: %v, %v", isNew, err)
	}
	testriver.WaitFor(t, "the command posted", func() bool { return len(surface.all()) == 1 })
	r := surface.all()[0]
	if r.Command == nil || r.Command.Command != commands.CmdUsage || r.Command.Usage == nil || r.Command.Usage.Days != 7 {
		t.Fatalf("posted %+v, want the usage result for 7 days", r)
	}
	if r.Text != r.Command.Text || r.Stored() {
		t.Errorf("reply text %q, want the command's own text and nothing stored", r.Text)
	}
	if n := len(llm.calls()); n != 0 {
		t.Errorf("model calls = %d, want none for a command", n)
	}
}
