package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/users"
)

// mustLedger inserts a usage_events row for user at the instant at.
func mustLedger(tb testing.TB, db *pgxpool.Pool, user uuid.UUID, at time.Time, model string, prompt, completion, costMicro int64) {
	tb.Helper()
	_, err := db.Exec(context.Background(), `
		INSERT INTO usage_events (user_id, source, model, prompt_tokens, completion_tokens, cost_micro_usd, occurred_at)
		VALUES ($1, 'api', $2, $3, $4, $5, $6)`, user, model, prompt, completion, costMicro, at)
	if err != nil {
		tb.Fatalf("insert ledger row: %v", err)
	}
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// sumDaily adds up the daily entries' additive fields.
func sumDaily(days []dayJSON) totalsJSON {
	var s totalsJSON
	for _, d := range days {
		s.PromptTokens += d.PromptTokens
		s.CompletionTokens += d.CompletionTokens
		s.CachedTokens += d.CachedTokens
		s.TotalTokens += d.TotalTokens
		s.CostMicroUSD += d.CostMicroUSD
		s.Messages += d.Messages
	}
	s.CostUSD = usd(s.CostMicroUSD)
	return s
}

func TestTokenUsage(t *testing.T) {
	now := mustTime(t, "2026-03-10T12:00:00Z")
	a := newTestAPI(t, func(d *Deps) { d.Now = func() time.Time { return now } })
	u, tok := mustToken(t, "usage-kolkata-"+uuid.NewString()[:8], false)
	if err := users.NewStore(testPool, "UTC").SetTimeZone(context.Background(), u.ID, "Asia/Kolkata"); err != nil {
		t.Fatal(err)
	}
	// 18:29:59 UTC is 23:59:59 in Kolkata; 18:30 is the next local day.
	mustLedger(t, testPool, u.ID, mustTime(t, "2026-03-08T18:29:59Z"), "gpt-4o", 100, 10, 1_500_000)
	mustLedger(t, testPool, u.ID, mustTime(t, "2026-03-08T18:30:00Z"), "gpt-4o-mini", 50, 5, 250)
	mustLedger(t, testPool, u.ID, mustTime(t, "2026-03-10T12:00:00Z"), "gpt-4o-mini", 1, 1, 1)

	tests := []struct {
		name      string
		query     string
		wantStart string
		wantEnd   string
		wantZone  string
		wantCost  map[string]int64
	}{
		{name: "default 30 days in the user's zone", query: "", wantStart: "2026-02-09", wantEnd: "2026-03-10",
			wantZone: "Asia/Kolkata", wantCost: map[string]int64{"2026-03-08": 1_500_000, "2026-03-09": 250, "2026-03-10": 1}},
		{name: "days=3", query: "?days=3", wantStart: "2026-03-08", wantEnd: "2026-03-10",
			wantZone: "Asia/Kolkata", wantCost: map[string]int64{"2026-03-08": 1_500_000, "2026-03-09": 250, "2026-03-10": 1}},
		{name: "explicit range in UTC", query: "?start=2026-03-08&end=2026-03-09&tz=UTC", wantStart: "2026-03-08", wantEnd: "2026-03-09",
			wantZone: "UTC", wantCost: map[string]int64{"2026-03-08": 1_500_250}},
		{name: "Kathmandu", query: "?start=2026-03-09&end=2026-03-09&tz=Asia/Kathmandu", wantStart: "2026-03-09", wantEnd: "2026-03-09",
			wantZone: "Asia/Kathmandu", wantCost: map[string]int64{"2026-03-09": 1_500_250}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got tokenUsageJSON
			a.mustDo("GET", "/api/v1/tokens/usage"+tt.query, tok, nil, http.StatusOK, &got)
			if got.Start != tt.wantStart || got.End != tt.wantEnd || got.TimeZone != tt.wantZone {
				t.Errorf("got %s..%s %s, want %s..%s %s", got.Start, got.End, got.TimeZone, tt.wantStart, tt.wantEnd, tt.wantZone)
			}
			if len(got.Daily) != got.Days || got.Days == 0 {
				t.Fatalf("got %d daily entries for %d days", len(got.Daily), got.Days)
			}
			if got.Daily[0].Date != tt.wantStart || got.Daily[len(got.Daily)-1].Date != tt.wantEnd {
				t.Errorf("daily runs %s..%s, want %s..%s", got.Daily[0].Date, got.Daily[len(got.Daily)-1].Date, tt.wantStart, tt.wantEnd)
			}
			for _, d := range got.Daily {
				if d.CostMicroUSD != tt.wantCost[d.Date] {
					t.Errorf("%s: got cost %d, want %d", d.Date, d.CostMicroUSD, tt.wantCost[d.Date])
				}
			}
			if sum := sumDaily(got.Daily); sum != got.Totals.totalsJSON {
				t.Errorf("sum of daily %+v, want totals %+v", sum, got.Totals.totalsJSON)
			}
		})
	}

	t.Run("json shape", func(t *testing.T) {
		_, body := a.do("GET", "/api/v1/tokens/usage?start=2026-03-08&end=2026-03-08&tz=UTC", tok, nil)
		for _, want := range []string{`"cost_usd":1.50025`, `"total_tokens":165`, `"messages":2`, `"conversations":0`, `"by_model":[{"model":"gpt-4o"`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("body %s: want it to contain %s", body, want)
			}
		}
	})
}

func TestTokenUsageInvalid(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "usage-invalid", false)
	tests := []struct {
		query     string
		wantField string
	}{
		{"?days=0", "days"},
		{"?days=367", "days"},
		{"?days=ten", "days"},
		{"?start=2026-01-01", "end"},
		{"?end=2026-01-01", "start"},
		{"?start=2026-13-01&end=2026-12-31", "start"},
		{"?start=2026-01-01&end=01/02/2026", "end"},
		{"?start=2026-02-01&end=2026-01-31", "end"},
		{"?start=2025-01-01&end=2026-01-02", "end"},
		{"?days=7&start=2026-01-01&end=2026-01-02", "days"},
		{"?tz=Mars/Olympus", "tz"},
		{"?tz=", "tz"},
		{"?tz=Local", "tz"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := a.do("GET", "/api/v1/tokens/usage"+tt.query, tok, nil)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("got status %d, want 422 (body %s)", resp.StatusCode, body)
			}
			if p := problemOf(t, resp, body); p.Field != tt.wantField {
				t.Errorf("got field %q, want %q", p.Field, tt.wantField)
			}
		})
	}
	if resp, _ := a.do("GET", "/api/v1/tokens/usage", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: got %d, want 401", resp.StatusCode)
	}
}
