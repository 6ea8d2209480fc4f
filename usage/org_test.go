package usage

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/testdb"
)

// TestOrgReportsMatchLedger checks every org-wide breakdown, and each user's
// own summary, against the ledger rows bucketed by hand: rows at random
// instants and exactly on (and a second either side of) the local and UTC
// midnights, in zones with half- and quarter-hour offsets and across DST.
func TestOrgReportsMatchLedger(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t) // the org's figures are the whole database's
	rp := NewReports(db)
	users := []uuid.UUID{mustUserIn(t, db, "org-a"), mustUserIn(t, db, "org-b"), mustUserIn(t, db, "org-c")}
	models, sources := []string{"gpt-4o", "gpt-4o-mini"}, []string{"api", "slack", "teams"}

	ranges := []struct{ zone, first, last string }{
		{"UTC", "2026-04-02", "2026-04-08"},
		{"Asia/Kolkata", "2026-04-02", "2026-04-08"},
		{"Asia/Kathmandu", "2026-04-02", "2026-04-08"},
		{"Australia/Sydney", "2026-04-02", "2026-04-08"}, // DST ends 5 April
		{"Australia/Eucla", "2026-04-02", "2026-04-08"},  // +08:45
		{"Asia/Singapore", "2026-04-05", "2026-04-05"},   // one day, no whole UTC day inside
	}
	// Instants: the midnights of every zone, a second either side, and
	// random ones over the whole span.
	var instants []time.Time
	for _, rg := range ranges {
		loc := mustLoc(t, rg.zone)
		for d := mustDate(t, "2026-04-01"); d != mustDate(t, "2026-04-10"); d = d.AddDays(1) {
			m := d.Midnight(loc)
			instants = append(instants, m.Add(-time.Second), m, m.Add(time.Second))
		}
	}
	rnd := rand.New(rand.NewPCG(6, 5))
	spanStart := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for range 300 {
		instants = append(instants, spanStart.Add(time.Duration(rnd.Int64N(int64(11*24*time.Hour)))))
	}
	type row struct {
		Event
		at time.Time
	}
	var rows []row
	for i, at := range instants {
		e := Event{UserID: users[i%len(users)], Model: models[i%len(models)], Source: sources[i%len(sources)],
			PromptTokens: 1 + i%97, CompletionTokens: i % 13, CachedTokens: i % 5, CostMicroUSD: int64(1 + i*37%1000), OccurredAt: at}
		if err := Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row{e, at})
	}

	for _, rg := range ranges {
		t.Run(rg.zone+" "+rg.first, func(t *testing.T) {
			r, err := NewRange(mustLoc(t, rg.zone), mustDate(t, rg.first), mustDate(t, rg.last))
			if err != nil {
				t.Fatal(err)
			}
			// By hand: each row's local date decides whether and where it counts.
			day, user, model, source := map[string]Totals{}, map[string]Totals{}, map[string]Totals{}, map[string]Totals{}
			userDay := map[uuid.UUID]map[string]Totals{}
			var total Totals
			for _, rw := range rows {
				d := DateOf(rw.at.In(r.Loc))
				if daysBetween(r.First, d) < 0 || daysBetween(d, r.Last) < 0 {
					continue
				}
				tt := Totals{PromptTokens: int64(rw.PromptTokens), CompletionTokens: int64(rw.CompletionTokens),
					CachedTokens: int64(rw.CachedTokens), CostMicroUSD: rw.CostMicroUSD, Messages: 1}
				day[d.String()] = day[d.String()].Add(tt)
				user[rw.UserID.String()] = user[rw.UserID.String()].Add(tt)
				model[rw.Model] = model[rw.Model].Add(tt)
				source[rw.Source] = source[rw.Source].Add(tt)
				if userDay[rw.UserID] == nil {
					userDay[rw.UserID] = map[string]Totals{}
				}
				userDay[rw.UserID][d.String()] = userDay[rw.UserID][d.String()].Add(tt)
				total = total.Add(tt)
			}
			if total.Messages == 0 {
				t.Fatal("no ledger rows in range: the test proves nothing")
			}
			for g, want := range map[GroupBy]map[string]Totals{GroupByDay: day, GroupByUser: user, GroupByModel: model, GroupBySource: source} {
				rep, err := rp.SummarizeOrg(ctx, r, g)
				if err != nil {
					t.Fatalf("SummarizeOrg by %s: %v", g, err)
				}
				if rep.Totals != total {
					t.Errorf("by %s: totals %+v, want %+v", g, rep.Totals, total)
				}
				if g == GroupByDay && len(rep.Rows) != r.Len() {
					t.Errorf("by day: %d rows, want %d (zero days included)", len(rep.Rows), r.Len())
				}
				for _, row := range rep.Rows {
					if row.Totals != want[row.Key] {
						t.Errorf("by %s, %s: got %+v, want %+v", g, row.Key, row.Totals, want[row.Key])
					}
				}
			}
			for _, u := range users {
				s, err := rp.Summarize(ctx, u, r)
				if err != nil {
					t.Fatal(err)
				}
				if s.Totals != user[u.String()] {
					t.Errorf("user %s: totals %+v, want %+v", u, s.Totals, user[u.String()])
				}
				for _, d := range s.Daily {
					if d.Totals != userDay[u][d.Date.String()] {
						t.Errorf("user %s, %s: got %+v, want %+v", u, d.Date, d.Totals, userDay[u][d.Date.String()])
					}
				}
			}
		})
	}
}
