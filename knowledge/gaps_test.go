package knowledge_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func mustUser(tb testing.TB, pool *pgxpool.Pool, handle string) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (handle) VALUES ($1) RETURNING id`, handle).Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustConversation(tb testing.TB, pool *pgxpool.Pool, owner uuid.UUID) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := pool.QueryRow(context.Background(),
		`INSERT INTO conversations (owner_id, title, source) VALUES ($1, 'gaps', 'api') RETURNING id`, owner).Scan(&id)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func TestGapReport(t *testing.T) {
	pool := testdb.New(t)
	clk := &clock{t: fixedNow.Add(-10 * 24 * time.Hour)}
	ix := knowledge.New(pool, clk.now)
	ctx := context.Background()
	alice, bob := mustUser(t, pool, "alice"), mustUser(t, pool, "bob")
	conv := mustConversation(t, pool, alice)

	asks := []struct {
		after    time.Duration
		question string
		user     uuid.UUID
	}{
		{0, "How do I rotate the Vault root token?", alice}, // over a week before the report: left out
		{8 * 24 * time.Hour, "How do I rotate the Vault root token?", alice},
		{24 * time.Hour, "how do i rotate the vault root token", bob},
		{time.Hour, "Hi opsbot, how do I rotate the vault root token??", bob},
		{time.Hour, "Rotating the vault root token: how?", alice},
		{time.Hour, "What is the SLA for the Jakarta region?", alice},
		{time.Hour, "", alice},     // nothing to record
		{time.Hour, " ?! ", alice}, // nothing to record
		{time.Hour, "Who owns redis-sg-07?", uuid.Nil},
	}
	for _, a := range asks {
		clk.t = clk.t.Add(a.after)
		if err := ix.RecordGap(ctx, a.question, a.user, conv); err != nil {
			t.Fatalf("RecordGap(%q): %v", a.question, err)
		}
	}

	rep, err := ix.Gaps(ctx, clk.t.Add(-7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 6 {
		t.Errorf("Total = %d, want 6", rep.Total)
	}
	if len(rep.Groups) != 3 {
		t.Fatalf("got %d groups %+v, want 3", len(rep.Groups), rep.Groups)
	}
	tests := []struct {
		question string
		count    int
		users    int
	}{
		{"Rotating the vault root token: how?", 4, 2},
		{"Who owns redis-sg-07?", 1, 0},
		{"What is the SLA for the Jakarta region?", 1, 1},
	}
	for i, tt := range tests {
		g := rep.Groups[i]
		if g.Question != tt.question || g.Count != tt.count || g.Users != tt.users {
			t.Errorf("group %d = %q ×%d by %d, want %q ×%d by %d", i, g.Question, g.Count, g.Users, tt.question, tt.count, tt.users)
		}
	}
	if got, want := rep.Groups[0].LastAsked, clk.t.Add(-4*time.Hour); !got.Equal(want) {
		t.Errorf("LastAsked = %v, want %v", got, want)
	}

	sgt, _ := time.LoadLocation("Asia/Singapore")
	text := rep.Text(sgt)
	for _, want := range []string{
		"Questions our runbooks could not answer",
		"6 questions, 3 distinct",
		`"Rotating the vault root token: how?" — asked 4× by 2 people`,
		`"Who owns redis-sg-07?" — asked 1×`,
		"+08",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}

	empty, err := ix.Gaps(ctx, clk.t.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Groups) != 0 || !strings.Contains(empty.Text(nil), "None") {
		t.Errorf("report after the last question = %+v, want none", empty)
	}
}

func TestRecordGapOddInput(t *testing.T) {
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow })
	ctx := context.Background()
	if err := ix.RecordGap(ctx, strings.Repeat("é", 5000)+"\x00\xff", uuid.Nil, uuid.Nil); err != nil {
		t.Fatalf("RecordGap of a long, odd question: %v", err)
	}
	if err := ix.RecordGap(ctx, "Who owns the Jakarta edge routers?", uuid.New(), uuid.New()); err != nil {
		t.Fatalf("RecordGap for a user and conversation that do not exist: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_gaps WHERE user_id IS NULL AND conversation_id IS NULL`).Scan(&n); err != nil || n != 2 {
		t.Errorf("gaps without references = %d (%v), want 2", n, err)
	}
	if err := pool.QueryRow(ctx, `SELECT max(length(question)) FROM knowledge_gaps`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > 1000 {
		t.Errorf("stored question of %d characters, want 1..1000", n)
	}
}

// TestGapReportTextBounded: a report of the longest questions the index
// stores still fits one chat message (Teams takes about 28 KB).
func TestGapReportTextBounded(t *testing.T) {
	rep := knowledge.GapReport{Since: fixedNow.Add(-7 * 24 * time.Hour), Until: fixedNow}
	for i := range 40 {
		rep.Groups = append(rep.Groups, knowledge.GapGroup{Question: strings.Repeat("ü", 999) + strconv.Itoa(i), Count: 1, Users: 1, LastAsked: fixedNow})
		rep.Total++
	}
	text := rep.Text(time.UTC)
	if len(text) > 20_000 {
		t.Errorf("report of %d bytes, want at most 20000", len(text))
	}
	if !strings.Contains(text, `"`+strings.Repeat("ü", 199)+`…"`) || !strings.Contains(text, "… and 10 more") {
		t.Errorf("report lacks the clipped question or the overflow line:\n%.600s", text)
	}
}

func TestPurgeQuestionsBefore(t *testing.T) {
	ctx := context.Background()
	ix := mustIndex(t, "")
	for _, q := range []string{"how do I reset the zebra cluster", "where is the llama runbook"} {
		if err := ix.RecordGap(ctx, q, uuid.Nil, uuid.Nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := ix.PurgeQuestionsBefore(ctx, fixedNow.Add(time.Second))
	if err != nil || n != 2 {
		t.Fatalf("purge after they were asked: got %d %v, want 2", n, err)
	}
	if err := ix.RecordGap(ctx, "how do I reset the zebra cluster", uuid.Nil, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if n, err := ix.PurgeQuestionsBefore(ctx, fixedNow); err != nil || n != 0 {
		t.Errorf("purge before they were asked: got %d %v, want 0", n, err)
	}
}

// A gap question is stored (and so reported to a channel) without the
// secrets its asker pasted, even when the caller did not redact it.
func TestRecordGapRedacts(t *testing.T) {
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow })
	ctx := context.Background()
	const password = "Sup3rS3cretPw"
	const token = "hvs.CAESIJ3fPq8ZB2kXyT7mW4nR1sV9uE6cD0aL5gH2jK8oQ3tYGh4KHGh2cy5hYkNkRWZHaElqS2xNbk9wUXJTdFV2V3g"
	q := "why does `VAULT_TOKEN=" + token + " PGPASSWORD=" + password + " psql -h db-sg-01` hang?"
	if err := ix.RecordGap(ctx, q, uuid.Nil, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	rep, err := ix.Gaps(ctx, fixedNow.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 {
		t.Fatalf("got %d groups, want 1", len(rep.Groups))
	}
	got := rep.Groups[0].Question
	if strings.Contains(got, password) || strings.Contains(got, token) {
		t.Errorf("stored gap question %q holds a secret", got)
	}
	if !strings.Contains(got, "psql -h db-sg-01") || !strings.Contains(got, "[REDACTED:") {
		t.Errorf("stored gap question %q: want the question kept with markers in place of the secrets", got)
	}
}
