package usage

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/testdb"
)

// ledgerRow is a usage_events row to insert at a chosen instant.
type ledgerRow struct {
	at     time.Time
	model  string
	source string
	prompt int64
	compl  int64
	cached int64
	cost   int64
}

// mustLedger inserts rows for user straight into the ledger (the rollup
// trigger does the rest), one statement per row like the engine does.
func mustLedger(tb testing.TB, user uuid.UUID, rows ...ledgerRow) {
	tb.Helper()
	for _, r := range rows {
		if r.model == "" {
			r.model = "gpt-4o-mini"
		}
		if r.source == "" {
			r.source = "api"
		}
		_, err := testPool.Exec(context.Background(), `
			INSERT INTO usage_events (user_id, source, model, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			user, r.source, r.model, r.prompt, r.compl, r.cached, r.cost, r.at)
		if err != nil {
			tb.Fatalf("insert ledger row: %v", err)
		}
	}
}

func mustLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func mustDate(tb testing.TB, s string) Date {
	tb.Helper()
	d, err := ParseDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestSummarizeDays puts ledger rows one second either side of local
// midnights and DST changes and checks which local day each lands on.
func TestSummarizeDays(t *testing.T) {
	tests := []struct {
		name        string
		zone        string
		first, last string
		rows        []ledgerRow
		wantDaily   map[string]int64 // cost per date; unlisted dates are zero
	}{
		{
			name: "UTC midnight", zone: "UTC", first: "2026-03-01", last: "2026-03-03",
			rows: []ledgerRow{
				{at: utc("2026-02-28T23:59:59Z"), cost: 1000}, // before the range
				{at: utc("2026-03-01T00:00:00Z"), cost: 1},
				{at: utc("2026-03-01T23:59:59Z"), cost: 2},
				{at: utc("2026-03-02T00:00:00Z"), cost: 4},
				{at: utc("2026-03-03T23:59:59Z"), cost: 8},
				{at: utc("2026-03-04T00:00:00Z"), cost: 1000}, // after
			},
			wantDaily: map[string]int64{"2026-03-01": 3, "2026-03-02": 4, "2026-03-03": 8},
		},
		{
			// +05:30: local midnight of 2 March is 18:30 UTC on 1 March.
			name: "Kolkata half hour", zone: "Asia/Kolkata", first: "2026-03-01", last: "2026-03-03",
			rows: []ledgerRow{
				{at: utc("2026-02-28T18:29:59Z"), cost: 1000},
				{at: utc("2026-02-28T18:30:00Z"), cost: 1},
				{at: utc("2026-03-01T18:29:59Z"), cost: 2},
				{at: utc("2026-03-01T18:30:00Z"), cost: 4},
				{at: utc("2026-03-02T00:00:00Z"), cost: 8}, // 05:30 local on the 2nd
				{at: utc("2026-03-03T18:29:59Z"), cost: 16},
				{at: utc("2026-03-03T18:30:00Z"), cost: 1000},
			},
			wantDaily: map[string]int64{"2026-03-01": 3, "2026-03-02": 12, "2026-03-03": 16},
		},
		{
			// +05:45: local midnight of 2 March is 18:15 UTC on 1 March.
			name: "Kathmandu quarter hour", zone: "Asia/Kathmandu", first: "2026-03-01", last: "2026-03-02",
			rows: []ledgerRow{
				{at: utc("2026-02-28T18:14:59Z"), cost: 1000},
				{at: utc("2026-02-28T18:15:00Z"), cost: 1},
				{at: utc("2026-03-01T18:14:59Z"), cost: 2},
				{at: utc("2026-03-01T18:15:00Z"), cost: 4},
				{at: utc("2026-03-02T18:14:59Z"), cost: 8},
				{at: utc("2026-03-02T18:15:00Z"), cost: 1000},
			},
			wantDaily: map[string]int64{"2026-03-01": 3, "2026-03-02": 12},
		},
		{
			// DST ends 2026-04-05 03:00 AEDT -> 02:00 AEST: 4 April is +11,
			// 5 April is 25 hours long, 6 April is +10.
			name: "Sydney DST end", zone: "Australia/Sydney", first: "2026-04-04", last: "2026-04-06",
			rows: []ledgerRow{
				{at: utc("2026-04-03T12:59:59Z"), cost: 1000},
				{at: utc("2026-04-03T13:00:00Z"), cost: 1},  // 00:00 AEDT 4 Apr
				{at: utc("2026-04-04T12:59:59Z"), cost: 2},  // 23:59:59 AEDT 4 Apr
				{at: utc("2026-04-04T13:00:00Z"), cost: 4},  // 00:00 AEDT 5 Apr
				{at: utc("2026-04-04T15:30:00Z"), cost: 8},  // 02:30 AEDT, first pass
				{at: utc("2026-04-04T16:30:00Z"), cost: 16}, // 02:30 AEST, second pass
				{at: utc("2026-04-05T13:59:59Z"), cost: 32}, // 23:59:59 AEST 5 Apr
				{at: utc("2026-04-05T14:00:00Z"), cost: 64}, // 00:00 AEST 6 Apr
				{at: utc("2026-04-06T13:59:59Z"), cost: 128},
				{at: utc("2026-04-06T14:00:00Z"), cost: 1000},
			},
			wantDaily: map[string]int64{"2026-04-04": 3, "2026-04-05": 60, "2026-04-06": 192},
		},
		{
			// DST starts 2026-10-04 02:00 AEST -> 03:00 AEDT: 4 October is 23 hours.
			name: "Sydney DST start", zone: "Australia/Sydney", first: "2026-10-03", last: "2026-10-05",
			rows: []ledgerRow{
				{at: utc("2026-10-02T13:59:59Z"), cost: 1000},
				{at: utc("2026-10-02T14:00:00Z"), cost: 1},  // 00:00 AEST 3 Oct
				{at: utc("2026-10-03T13:59:59Z"), cost: 2},  // 23:59:59 AEST 3 Oct
				{at: utc("2026-10-03T14:00:00Z"), cost: 4},  // 00:00 AEST 4 Oct
				{at: utc("2026-10-03T16:00:00Z"), cost: 8},  // 03:00 AEDT 4 Oct
				{at: utc("2026-10-04T12:59:59Z"), cost: 16}, // 23:59:59 AEDT 4 Oct
				{at: utc("2026-10-04T13:00:00Z"), cost: 32}, // 00:00 AEDT 5 Oct
				{at: utc("2026-10-05T12:59:59Z"), cost: 64},
				{at: utc("2026-10-05T13:00:00Z"), cost: 1000},
			},
			wantDaily: map[string]int64{"2026-10-03": 3, "2026-10-04": 28, "2026-10-05": 96},
		},
		{
			name: "zero days", zone: "Asia/Singapore", first: "2026-05-01", last: "2026-05-05",
			rows: []ledgerRow{
				{at: utc("2026-05-02T16:00:00Z"), cost: 5}, // 00:00 SGT 3 May
			},
			wantDaily: map[string]int64{"2026-05-03": 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			user := mustUser(t, "days-"+uuid.NewString()[:8])
			mustLedger(t, user, tt.rows...)
			r, err := NewRange(mustLoc(t, tt.zone), mustDate(t, tt.first), mustDate(t, tt.last))
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewReports(testPool).Summarize(ctx, user, r)
			if err != nil {
				t.Fatalf("Summarize: %v", err)
			}
			if got, want := len(s.Daily), r.Len(); got != want {
				t.Fatalf("got %d daily entries, want %d", got, want)
			}
			var sum Totals
			for i, d := range s.Daily {
				if got, want := d.Date, r.First.AddDays(i); got != want {
					t.Errorf("daily[%d]: got date %s, want %s", i, got, want)
				}
				if got, want := d.CostMicroUSD, tt.wantDaily[d.Date.String()]; got != want {
					t.Errorf("%s: got cost %d, want %d", d.Date, got, want)
				}
				sum = sum.Add(d.Totals)
			}
			if sum != s.Totals {
				t.Errorf("sum of daily %+v, want totals %+v", sum, s.Totals)
			}
		})
	}
}

// TestSummarizeTotals checks tokens, messages, models and conversations.
func TestSummarizeTotals(t *testing.T) {
	ctx := context.Background()
	user := mustUser(t, "totals-"+uuid.NewString()[:8])
	other := mustUser(t, "other-"+uuid.NewString()[:8])
	loc := mustLoc(t, "Asia/Manila")
	mustLedger(t, user,
		ledgerRow{at: utc("2026-06-01T01:00:00Z"), model: "gpt-4o", prompt: 100, compl: 20, cached: 50, cost: 700},
		ledgerRow{at: utc("2026-06-01T02:00:00Z"), model: "gpt-4o", prompt: 10, compl: 2, cost: 70},
		ledgerRow{at: utc("2026-06-02T02:00:00Z"), model: "gpt-4o-mini", prompt: 1, compl: 1, cost: 1},
	)
	mustLedger(t, other, ledgerRow{at: utc("2026-06-01T01:00:00Z"), prompt: 999, cost: 999})
	var conv uuid.UUID
	if err := testPool.QueryRow(ctx, `INSERT INTO conversations (owner_id, title, source) VALUES ($1, 't', 'api') RETURNING id`, user).Scan(&conv); err != nil {
		t.Fatal(err)
	}
	if _, err := testPool.Exec(ctx, `UPDATE usage_events SET conversation_id = $1 WHERE user_id = $2`, conv, user); err != nil {
		t.Fatal(err)
	}

	r, err := NewRange(loc, mustDate(t, "2026-06-01"), mustDate(t, "2026-06-30"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewReports(testPool).Summarize(ctx, user, r)
	if err != nil {
		t.Fatal(err)
	}
	want := Totals{PromptTokens: 111, CompletionTokens: 23, CachedTokens: 50, CostMicroUSD: 771, Messages: 3}
	if s.Totals != want {
		t.Errorf("totals: got %+v, want %+v", s.Totals, want)
	}
	if got := s.Totals.TotalTokens(); got != 134 {
		t.Errorf("total tokens: got %d, want 134", got)
	}
	if s.Conversations != 1 {
		t.Errorf("conversations: got %d, want 1", s.Conversations)
	}
	if len(s.ByModel) != 2 || s.ByModel[0].Model != "gpt-4o" || s.ByModel[0].CostMicroUSD != 770 || s.ByModel[1].CostMicroUSD != 1 {
		t.Errorf("by model: got %+v, want gpt-4o 770 and gpt-4o-mini 1", s.ByModel)
	}
}

func TestLastDays(t *testing.T) {
	loc := mustLoc(t, "Asia/Kathmandu")
	// 18:14 UTC is 23:59 local: still 31 May.
	r, err := LastDays(utc("2026-05-31T18:14:00Z"), loc, 30)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.First.String()+".."+r.Last.String(), "2026-05-02..2026-05-31"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	r, _ = LastDays(utc("2026-05-31T18:15:00Z"), loc, 1)
	if got, want := r.First.String(), "2026-06-01"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, n := range []int{0, -1, 367} {
		if _, err := LastDays(time.Now(), loc, n); err == nil {
			t.Errorf("LastDays(%d): got no error, want one", n)
		}
	}
	if _, err := NewRange(loc, mustDate(t, "2026-01-02"), mustDate(t, "2026-01-01")); err == nil {
		t.Error("end before start: got no error")
	}
	if _, err := NewRange(loc, mustDate(t, "2024-01-01"), mustDate(t, "2024-12-31")); err != nil {
		t.Errorf("366 days in a leap year: got %v, want no error", err)
	}
}

// An embedding call (source "embedding") is spend but not a reply: its
// tokens and cost count, in the user's summary and org-wide, not its row.
func TestEmbeddingsAreSpendNotReplies(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t) // org-wide figures need an org of their own
	user := mustUserIn(t, db, "embedder")
	for _, e := range []Event{
		{UserID: user, Source: "slack", Model: "gpt-4o-mini", PromptTokens: 300, CompletionTokens: 20, CostMicroUSD: 57},
		{UserID: user, Source: "embedding", Model: "text-embedding-3-small", PromptTokens: 9, CostMicroUSD: 18},
	} {
		e.OccurredAt = utc("2026-06-01T01:00:00Z")
		if err := Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRange(time.UTC, mustDate(t, "2026-06-01"), mustDate(t, "2026-06-01"))
	if err != nil {
		t.Fatal(err)
	}
	want := Totals{PromptTokens: 309, CompletionTokens: 20, CostMicroUSD: 75, Messages: 1}
	s, err := NewReports(db).Summarize(ctx, user, r)
	if err != nil || s.Totals != want {
		t.Errorf("summary: got %+v (%v), want %+v", s.Totals, err, want)
	}
	for _, g := range []GroupBy{GroupByUser, GroupBySource, GroupByDay} {
		org, err := NewReports(db).SummarizeOrg(ctx, r, g)
		if err != nil || org.Totals != want {
			t.Errorf("org by %s: got %+v (%v), want %+v", g, org.Totals, err, want)
		}
	}
}
