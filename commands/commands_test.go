package commands_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// pool is this package's fresh database, made in TestMain.
var pool *pgxpool.Pool

func TestMain(m *testing.M) {
	os.Exit(testdb.RunMain(m, &pool))
}

// now is the instant every test stands on: 17:30 in Kolkata.
var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newSet(db *pgxpool.Pool) *commands.Set {
	return commands.New(commands.Config{DB: db, Users: users.NewStore(db, "Asia/Singapore"),
		Gaps: knowledge.New(db, func() time.Time { return now }), Now: func() time.Time { return now }})
}

func mustUser(tb testing.TB, db *pgxpool.Pool, name, role string) users.User {
	tb.Helper()
	s := users.NewStore(db, "Asia/Kolkata")
	u, err := s.Ensure(context.Background(), name+"-"+uuid.NewString()[:8], role)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(context.Background(), `UPDATE users SET display_name = $2 WHERE id = $1`, u.ID, name); err != nil {
		tb.Fatal(err)
	}
	u.DisplayName = name
	return u
}

// mustConv starts a conversation active at (its last message time).
func mustConv(tb testing.TB, db *pgxpool.Pool, owner uuid.UUID, title string, thread *conversations.ThreadKey, at time.Time) conversations.Conversation {
	tb.Helper()
	c, err := conversations.NewStore(db).Create(context.Background(),
		conversations.NewConversation{OwnerID: owner, Title: title, Source: conversations.SourceSlack, Thread: thread})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(context.Background(), `UPDATE conversations SET created_at = $2, last_message_at = $2 WHERE id = $1`, c.ID, at); err != nil {
		tb.Fatal(err)
	}
	return c
}

// mustTurn stores a question and its answer under one turn key, the answer's
// metadata saying whether the runbooks covered it.
func mustTurn(tb testing.TB, db *pgxpool.Pool, conv conversations.Conversation, asker uuid.UUID, question string, unanswered bool) conversations.Message {
	tb.Helper()
	s := conversations.NewStore(db)
	key := "test:" + uuid.NewString()
	ctx := context.Background()
	if _, err := s.AppendMessage(ctx, conversations.NewMessage{TurnKey: key, ConversationID: conv.ID, AuthorID: &asker,
		Role: conversations.RoleUser, Content: question}); err != nil {
		tb.Fatal(err)
	}
	meta, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "unanswered": unanswered})
	a, err := s.AppendMessage(ctx, conversations.NewMessage{TurnKey: key, ConversationID: conv.ID,
		Role: conversations.RoleAssistant, Content: "an answer", Metadata: meta})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func thread(channel string) *conversations.ThreadKey {
	return &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: channel, Thread: uuid.NewString()}
}

func TestHelpListsEveryCommand(t *testing.T) {
	r, err := newSet(pool).RunText(context.Background(), commands.Caller{}, "frobnicate now")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, `I don't know the command "frobnicate"`) {
		t.Errorf("help %q does not mention the unknown word", r.Text)
	}
	for _, want := range []string{"help", "new", "list", "archive", "usage [7d|30d]", "usage team", "handover [12h]", "token"} {
		if !strings.Contains(r.Text, "  "+want+" ") {
			t.Errorf("help %q does not list %q", r.Text, want)
		}
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	ana, ben := mustUser(t, pool, "Ana", users.RoleUser), mustUser(t, pool, "Ben", users.RoleUser)
	old := mustConv(t, pool, ana.ID, "old disk alert", nil, now.Add(-48*time.Hour))
	newer := mustConv(t, pool, ana.ID, "kafka lag", nil, now.Add(-time.Hour))
	gone := mustConv(t, pool, ana.ID, "archived one", nil, now.Add(-time.Minute))
	if _, err := conversations.NewStore(pool).Archive(ctx, ana.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	mustConv(t, pool, ben.ID, "ben's", nil, now)

	r, err := newSet(pool).RunText(ctx, commands.Caller{User: ana}, "list")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Conversations) != 2 || r.Conversations[0].ID != newer.ID || r.Conversations[1].ID != old.ID {
		t.Fatalf("listed %+v, want kafka lag then old disk alert", r.Conversations)
	}
	if !strings.Contains(r.Text, "1. kafka lag — 0 messages, active 1h ago") || !strings.Contains(r.Text, "2. old disk alert") {
		t.Errorf("text %q", r.Text)
	}
}

func TestArchiveInThreadWithUndo(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana, ben := mustUser(t, pool, "Ana", users.RoleUser), mustUser(t, pool, "Ben", users.RoleUser)
	th := thread("C-ops")
	conv := mustConv(t, pool, ana.ID, "payments 5xx", th, now)
	ch := th.InChannel()

	// Someone else in the thread cannot archive it.
	r, err := set.RunText(ctx, commands.Caller{User: ben, Thread: th, Channel: &ch}, "archive")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Refused || isArchived(t, conv.ID) {
		t.Fatalf("ben archived ana's thread: %+v", r)
	}

	r, err = set.RunText(ctx, commands.Caller{User: ana, Thread: th, Channel: &ch}, "archive")
	if err != nil {
		t.Fatal(err)
	}
	if r.Refused || !isArchived(t, conv.ID) || r.Text != `Archived "payments 5xx". Undo brings it back.` {
		t.Fatalf("archive: %+v", r)
	}
	if len(r.Actions) != 1 || r.Actions[0].Kind != commands.ActUnarchive || r.Actions[0].ID != conv.ID {
		t.Fatalf("actions %+v, want one undo", r.Actions)
	}
	// The undo button, as a surface reads it back from its value; pressed by
	// someone else it does nothing.
	undo, err := commands.ParseAction(r.Actions[0].Value())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := set.Do(ctx, commands.Caller{User: ben}, undo); err != nil || !r.Refused || !isArchived(t, conv.ID) {
		t.Fatalf("ben's undo: %+v, %v; want refused and still archived", r, err)
	}
	r, err = set.Do(ctx, commands.Caller{User: ana}, undo)
	if err != nil || r.Refused || isArchived(t, conv.ID) || r.Text != `Restored "payments 5xx".` {
		t.Fatalf("undo: %+v, %v", r, err)
	}
}

// A slash command carries no thread: archive offers the caller's open
// conversations of that channel as buttons.
func TestArchiveChoicesInChannel(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	here1 := mustConv(t, pool, ana.ID, "dns", thread("C-here"), now.Add(-2*time.Hour))
	here2 := mustConv(t, pool, ana.ID, "vpn", thread("C-here"), now.Add(-time.Hour))
	mustConv(t, pool, ana.ID, "elsewhere", thread("C-other"), now)
	ch := conversations.Channel{Platform: "slack", Tenant: "T1", ID: "C-here"}

	r, err := set.RunText(ctx, commands.Caller{User: ana, Channel: &ch}, "archive")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Actions) != 2 || r.Actions[0].ID != here2.ID || r.Actions[1].ID != here1.ID || r.Actions[0].Kind != commands.ActArchive {
		t.Fatalf("choices %+v, want vpn then dns", r.Actions)
	}
	if r2, err := set.Do(ctx, commands.Caller{User: ana, Channel: &ch}, r.Actions[1]); err != nil || !isArchived(t, here1.ID) || len(r2.Actions) != 1 {
		t.Fatalf("archive choice: %+v, %v", r2, err)
	}
}

// On the console, archive takes the current conversation and the next
// message starts a new one.
func TestArchiveConsoleConversation(t *testing.T) {
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	conv := mustConv(t, pool, ana.ID, "console chat", nil, now)
	r, err := newSet(pool).RunText(context.Background(), commands.Caller{User: ana, ConversationID: conv.ID, Private: true}, "/archive")
	if err != nil || !isArchived(t, conv.ID) || !r.NewConversation {
		t.Fatalf("got %+v, %v; want archived and a new conversation next", r, err)
	}
}

func isArchived(tb testing.TB, id uuid.UUID) bool {
	tb.Helper()
	c, err := conversations.NewStore(pool).Lookup(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return c.IsArchived()
}

// usage counts the caller's days in the caller's zone: Asia/Kolkata is
// UTC+05:30, so "the last 7 days" on 1 Dec 17:30 IST start at 25 Nov 00:00
// IST = 24 Nov 18:30 UTC.
func TestUsageInCallersZone(t *testing.T) {
	ctx := context.Background()
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	for _, e := range []usage.Event{
		{Model: "gpt-4o-mini", PromptTokens: 1000, CompletionTokens: 234, CostMicroUSD: 1_234_567, OccurredAt: time.Date(2026, 11, 24, 18, 31, 0, 0, time.UTC)}, // 25 Nov 00:01 IST
		{Model: "gpt-4o", PromptTokens: 2000, CompletionTokens: 1000, CostMicroUSD: 2_000_000, OccurredAt: time.Date(2026, 11, 24, 18, 29, 0, 0, time.UTC)},     // 24 Nov 23:59 IST
	} {
		e.UserID, e.Source = ana.ID, "slack"
		if err := usage.Record(ctx, pool, e); err != nil {
			t.Fatal(err)
		}
	}
	set := newSet(pool)
	r, err := set.RunText(ctx, commands.Caller{User: ana}, "usage 7d")
	if err != nil {
		t.Fatal(err)
	}
	f := r.Usage
	if f == nil || f.Zone != "Asia/Kolkata" || f.From.String() != "2026-11-25" || f.To.String() != "2026-12-01" {
		t.Fatalf("figures %+v, want 2026-11-25..2026-12-01 in Asia/Kolkata", f)
	}
	if f.Totals.CostMicroUSD != 1_234_567 || f.Totals.TotalTokens() != 1234 || f.Totals.Messages != 1 {
		t.Errorf("7d totals %+v, want $1.234567, 1,234 tokens, 1 reply", f.Totals)
	}
	if !strings.Contains(r.Text, "$1.234567 · 1,234 tokens (1,000 in, 234 out) · 1 replies") {
		t.Errorf("text %q", r.Text)
	}
	r, err = set.RunText(ctx, commands.Caller{User: ana}, "Usage 30D")
	if err != nil {
		t.Fatal(err)
	}
	if r.Usage.Totals.CostMicroUSD != 3_234_567 || len(r.Usage.Models) != 2 || r.Usage.Models[0].Label != "gpt-4o" {
		t.Errorf("30d %+v, want $3.234567 with gpt-4o ($2) first", r.Usage)
	}
}

func TestUsageTeamIsForAdmins(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t) // org-wide figures need an org of their own
	set := newSet(db)
	boss, ana, ben := mustUser(t, db, "Boss", users.RoleAdmin), mustUser(t, db, "Ana", users.RoleUser), mustUser(t, db, "Ben", users.RoleUser)
	for _, e := range []usage.Event{
		{UserID: ana.ID, Model: "gpt-4o", PromptTokens: 100, CostMicroUSD: 500_000},
		{UserID: ben.ID, Model: "gpt-4o-mini", PromptTokens: 50, CostMicroUSD: 250_000},
		{UserID: ben.ID, Model: "gpt-4o-mini", PromptTokens: 50, CostMicroUSD: 250_000},
	} {
		e.Source, e.OccurredAt = "teams", now.Add(-time.Hour)
		if err := usage.Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	r, err := set.RunText(ctx, commands.Caller{User: ana}, "usage team")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Refused || r.Usage != nil || strings.Count(r.Text, "\n") > 0 || !strings.Contains(r.Text, "admins") {
		t.Errorf("non-admin got %+v, want a one-line refusal", r)
	}
	r, err = set.RunText(ctx, commands.Caller{User: boss}, "usage team 7d")
	if err != nil || r.Refused {
		t.Fatalf("admin: %+v, %v", r, err)
	}
	f := r.Usage
	if !f.Team || f.People != 2 || f.Totals.CostMicroUSD != 1_000_000 || f.Totals.PromptTokens != 200 {
		t.Errorf("team figures %+v, want 2 people, $1.00, 200 prompt tokens", f)
	}
	if len(f.Users) != 2 || f.Users[0].Label != "Ana" || f.Users[1].Label != "Ben" || f.Users[1].CostMicroUSD != 500_000 {
		t.Errorf("people %+v, want Ana and Ben at $0.50 each, by name", f.Users)
	}
	if !strings.Contains(r.Text, "Top people: Ana $0.50, Ben $0.50") {
		t.Errorf("text %q", r.Text)
	}
}

func TestHandover(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana, ben, cy := mustUser(t, pool, "Ana", users.RoleUser), mustUser(t, pool, "Ben", users.RoleUser), mustUser(t, pool, "Cy", users.RoleUser)
	channel := "C-noc-" + uuid.NewString()[:6]
	answered := mustConv(t, pool, ana.ID, "dns propagation", thread(channel), now.Add(-5*time.Hour))
	gap := mustConv(t, pool, ben.ID, "flink checkpoint", thread(channel), now.Add(-3*time.Hour))
	voted := mustConv(t, pool, cy.ID, "vpn for new staff", thread(channel), now.Add(-time.Hour))
	mustConv(t, pool, ana.ID, "last shift's", thread(channel), now.Add(-13*time.Hour))
	mustConv(t, pool, ana.ID, "another channel", thread("C-elsewhere"), now)
	mustTurn(t, pool, answered, ana.ID, "how long does dns take", false)
	mustTurn(t, pool, gap, ben.ID, "flink checkpoints fail", true)
	a := mustTurn(t, pool, voted, cy.ID, "vpn access for a new hire", false)
	if _, err := set.Do(ctx, commands.Caller{User: ana}, commands.Action{Kind: commands.ActVoteDown, ID: a.ID}); err != nil {
		t.Fatal(err)
	}
	// The turns moved the activity times to now; put them back.
	for c, at := range map[uuid.UUID]time.Duration{answered.ID: 5 * time.Hour, gap.ID: 3 * time.Hour, voted.ID: time.Hour} {
		if _, err := pool.Exec(ctx, `UPDATE conversations SET last_message_at = $2 WHERE id = $1`, c, now.Add(-at)); err != nil {
			t.Fatal(err)
		}
	}
	ch := conversations.Channel{Platform: "slack", Tenant: "T1", ID: channel}
	r, err := set.RunText(ctx, commands.Caller{User: ana, Channel: &ch}, "handover")
	if err != nil {
		t.Fatal(err)
	}
	want := "Handover for the last 12h: 3 conversations, 2 unanswered (newest first):\n" +
		"1. [unanswered] vpn for new staff — asked by Cy, 1h ago\n" +
		"2. [unanswered] flink checkpoint — asked by Ben, 3h ago\n" +
		"3. dns propagation — asked by Ana, 5h ago\n"
	if r.Text != want || !r.Public || len(r.Conversations) != 3 {
		t.Errorf("handover:\n%s\nwant:\n%s", r.Text, want)
	}
	r, err = set.RunText(ctx, commands.Caller{User: ana, Channel: &ch}, "handover 2h")
	if err != nil || len(r.Conversations) != 1 || r.Conversations[0].ID != voted.ID {
		t.Errorf("handover 2h: %+v, %v; want only the vpn thread", r.Conversations, err)
	}
	if r, _ := set.RunText(ctx, commands.Caller{User: ana}, "handover"); !r.Refused {
		t.Errorf("handover on the console: %+v, want refused", r)
	}
}

func TestVoteDownReportsTheQuestionOnce(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	conv := mustConv(t, pool, ana.ID, "cert", thread("C-x"), now)
	question := "cert on grafana-" + uuid.NewString()[:8] + " expired"
	a := mustTurn(t, pool, conv, ana.ID, question, false)
	gaps := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_gaps WHERE question = $1`, question).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	down := commands.Action{Kind: commands.ActVoteDown, ID: a.ID}
	for range 2 { // a double click counts once
		if r, err := set.Do(ctx, commands.Caller{User: ana}, down); err != nil || r.Refused {
			t.Fatalf("vote: %+v, %v", r, err)
		}
	}
	if n := gaps(); n != 1 {
		t.Errorf("gap rows %d, want 1", n)
	}
	if _, err := set.Do(ctx, commands.Caller{User: ana}, commands.Action{Kind: commands.ActVoteUp, ID: a.ID}); err != nil {
		t.Fatal(err)
	}
	var vote int
	if err := pool.QueryRow(ctx, `SELECT vote FROM message_feedback WHERE message_id = $1 AND user_id = $2`, a.ID, ana.ID).Scan(&vote); err != nil || vote != 1 {
		t.Errorf("stored vote %d, %v; want 1 (changed to up)", vote, err)
	}
	if r, err := set.Do(ctx, commands.Caller{User: ana}, commands.Action{Kind: commands.ActVoteDown, ID: uuid.New()}); err != nil || !r.Refused {
		t.Errorf("vote on a missing answer: %+v, %v; want refused", r, err)
	}
}

func TestTokenOnlyInPrivate(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	tokens := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE user_id = $1`, ana.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	r, err := set.RunText(ctx, commands.Caller{User: ana, Source: "teams"}, "token")
	if err != nil || !r.Refused || r.Token != "" || tokens() != 0 {
		t.Fatalf("token in a channel: %+v, %v; want refused and none made", r, err)
	}
	r, err = set.RunText(ctx, commands.Caller{User: ana, Source: "slack", Private: true}, "token")
	if err != nil || r.Token == "" || !strings.Contains(r.Text, r.Token) || tokens() != 1 {
		t.Fatalf("token in private: %+v, %v", r, err)
	}
	u, err := users.NewStore(pool, "").Authenticate(ctx, r.Token)
	if err != nil || u.ID != ana.ID {
		t.Errorf("the token authenticates %v, %v; want ana", u.ID, err)
	}
}

func TestNewDetachesTheThread(t *testing.T) {
	ctx := context.Background()
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	th := thread("D-ana")
	old := mustConv(t, pool, ana.ID, "first topic", th, now)
	r, err := newSet(pool).RunText(ctx, commands.Caller{User: ana, Thread: th, Private: true}, "new")
	if err != nil || !r.NewConversation || !strings.Contains(r.Text, `"first topic" stays in your list`) {
		t.Fatalf("new: %+v, %v", r, err)
	}
	next, created, err := conversations.NewStore(pool).FindOrCreateByThread(ctx,
		conversations.NewConversation{OwnerID: ana.ID, Source: conversations.SourceSlack, Thread: th})
	if err != nil || !created || next.ID == old.ID {
		t.Errorf("next message's conversation %v (created %v, %v), want a new one", next.ID, created, err)
	}
	if _, err := newSet(pool).RunText(ctx, commands.Caller{User: ana, Thread: th}, "new"); err != nil {
		t.Errorf("new twice: %v", err)
	}
}

// A token command run again for the same turn (a retried job whose first
// answer was never seen) leaves one live token: the new one.
func TestTokenRerunReplacesTheFirst(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana := mustUser(t, pool, "Ana", users.RoleUser)
	c := commands.Caller{User: ana, Source: "slack", Private: true, Key: "slack:Ev" + uuid.NewString()}
	first, err := set.RunText(ctx, c, "token")
	if err != nil || first.Token == "" {
		t.Fatal(first, err)
	}
	second, err := set.RunText(ctx, c, "token")
	if err != nil || second.Token == "" || second.Token == first.Token {
		t.Fatal(second, err)
	}
	store := users.NewStore(pool, "")
	if _, err := store.Authenticate(ctx, first.Token); err == nil {
		t.Errorf("the first run's token still works")
	}
	if u, err := store.Authenticate(ctx, second.Token); err != nil || u.ID != ana.ID {
		t.Errorf("the rerun's token: %v, %v", u.ID, err)
	}
	var live int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL`, ana.ID).Scan(&live); err != nil || live != 1 {
		t.Errorf("live tokens %d, %v; want 1", live, err)
	}
}

// Only the person who started a thread's conversation starts it over.
func TestNewInSomeoneElsesThread(t *testing.T) {
	ctx := context.Background()
	ana, ben := mustUser(t, pool, "Ana", users.RoleUser), mustUser(t, pool, "Ben", users.RoleUser)
	th := thread("C-shared")
	conv := mustConv(t, pool, ana.ID, "ana's topic", th, now)
	r, err := newSet(pool).RunText(ctx, commands.Caller{User: ben, Thread: th}, "new")
	if err != nil || !r.Refused || r.NewConversation {
		t.Fatalf("ben's new: %+v, %v; want refused", r, err)
	}
	if got, err := conversations.NewStore(pool).GetByThread(ctx, *th); err != nil || got.ID != conv.ID {
		t.Errorf("the thread's conversation is %v (%v), want ana's still", got.ID, err)
	}
}

// Answers that hold the caller's own data (their conversations, their or
// the team's spend, a token, their conversations offered for archiving)
// say so, so that a surface that cannot show them to the caller alone
// does not post them; refusals and answers about the channel do not.
func TestPersonalAnswers(t *testing.T) {
	ctx := context.Background()
	set := newSet(pool)
	ana, boss := mustUser(t, pool, "Ana", users.RoleUser), mustUser(t, pool, "Boss", users.RoleAdmin)
	th := thread("C-personal")
	mustConv(t, pool, ana.ID, "disk on web-03", th, now.Add(-time.Hour))
	ch := th.InChannel()
	tests := []struct {
		name string
		c    commands.Caller
		text string
		want bool
	}{
		{"list", commands.Caller{User: ana, Channel: &ch, Thread: th}, "list", true},
		{"usage", commands.Caller{User: ana, Channel: &ch, Thread: th}, "usage 7d", true},
		{"usage team", commands.Caller{User: boss, Channel: &ch, Thread: th}, "usage team", true},
		{"usage team refused", commands.Caller{User: ana, Channel: &ch, Thread: th}, "usage team", false},
		{"token", commands.Caller{User: ana, Source: "slack", Private: true}, "token", true},
		{"token refused", commands.Caller{User: ana, Source: "teams", Channel: &ch, Thread: th}, "token", false},
		{"archive choices", commands.Caller{User: ana, Channel: &ch}, "archive", true},
		{"handover", commands.Caller{User: ana, Channel: &ch, Thread: th}, "handover", false},
		{"help", commands.Caller{User: ana, Channel: &ch, Thread: th}, "help", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := set.RunText(ctx, tt.c, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if r.Personal != tt.want {
				t.Errorf("%q: Personal = %v, want %v (%+v)", tt.text, r.Personal, tt.want, r)
			}
		})
	}
}
