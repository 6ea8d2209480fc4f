package usage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
)

func ptr[T any](v T) *T { return &v }

// mustSetBudgets applies budget changes or fails the test.
func mustSetBudgets(tb testing.TB, b *Budgets, cs ...BudgetChange) {
	tb.Helper()
	if err := b.Set(context.Background(), cs); err != nil {
		tb.Fatalf("set budgets: %v", err)
	}
	tb.Cleanup(func() {
		// The org budget is package-wide state: remove it after the test.
		_, _ = b.db.Exec(context.Background(), `DELETE FROM budgets WHERE user_id IS NULL`)
	})
}

// mustUserIn creates a user in db.
func mustUserIn(tb testing.TB, db DBTX, handle string) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	if err := db.QueryRow(context.Background(), `INSERT INTO users (handle) VALUES ($1) RETURNING id`, handle).Scan(&id); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return id
}

// turn is what the engine does around one model call.
func turn(ctx context.Context, b *Budgets, user uuid.UUID, cost int64, at time.Time) (Admission, error) {
	a, err := b.Admit(ctx, user)
	if err != nil {
		return a, err
	}
	err = pgx.BeginFunc(ctx, b.db, func(tx pgx.Tx) error {
		if err := Record(ctx, tx, Event{UserID: user, Source: "api", Model: "gpt-4o", CostMicroUSD: cost, OccurredAt: at}); err != nil {
			return err
		}
		return b.Settle(ctx, tx, a)
	})
	return a, err
}

func TestAdmitNoBudget(t *testing.T) {
	user := mustUser(t, "nobudget-"+uuid.NewString()[:8])
	b := NewBudgets(testPool, BudgetOptions{})
	a, err := b.Admit(context.Background(), user)
	if err != nil || a != (Admission{}) {
		t.Fatalf("Admit: got %+v, %v; want zero admission, nil", a, err)
	}
}

// TestAdmitConcurrentBoundary runs 50 turns at once against a budget that
// has room for about four: the overshoot is at most one turn. The user case
// runs one user's turns under the user's lock; the org case spreads the
// turns over five users under the org lock.
func TestAdmitConcurrentBoundary(t *testing.T) {
	sgt, _ := time.LoadLocation("Asia/Singapore")
	const (
		limit    = 1_000_000 // $1
		turnCost = 12_345
		estimate = 20_000
		prespent = 955_000
	)
	tests := []struct {
		scope string
		users int
	}{
		{ScopeUser, 1},
		{ScopeOrg, 5},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 20, 12, 0, 0, 0, sgt)
			db := testdb.New(t) // the org's spend is the whole database's
			var users []uuid.UUID
			for range tt.users {
				users = append(users, mustUserIn(t, db, uuid.NewString()))
			}
			b := NewBudgets(db, BudgetOptions{Location: sgt, TurnEstimate: estimate, Now: func() time.Time { return now }})
			if tt.scope == ScopeUser {
				mustSetBudgets(t, b, BudgetChange{UserID: users[0], Limit: ptr(int64(limit))})
			} else {
				mustSetBudgets(t, b, BudgetChange{Limit: ptr(int64(limit))})
			}
			if _, err := turn(ctx, b, users[0], prespent, now.Add(-time.Hour)); err != nil {
				t.Fatalf("first turn: %v", err)
			}

			var wg sync.WaitGroup
			var mu sync.Mutex
			admitted, refused := 0, 0
			warned := map[uuid.UUID]int{}
			var other []error
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					user := users[i%len(users)]
					a, err := turn(ctx, b, user, turnCost, now)
					mu.Lock()
					defer mu.Unlock()
					var be *BudgetExceededError
					switch {
					case errors.As(err, &be):
						refused++
						if be.Scope != tt.scope {
							other = append(other, fmt.Errorf("refused by the %s budget, want %s", be.Scope, tt.scope))
						}
					case err != nil:
						other = append(other, err)
					default:
						admitted++
						if a.Warning != "" {
							warned[user]++
						}
					}
				}()
			}
			wg.Wait()
			if len(other) > 0 {
				t.Fatalf("unexpected errors: %v", other)
			}
			var spent int64
			if err := db.QueryRow(ctx, `SELECT sum(cost_micro_usd) FROM usage_events`).Scan(&spent); err != nil {
				t.Fatal(err)
			}
			if over := spent - limit; over > turnCost {
				t.Errorf("spent %d against a limit of %d: overshoot %d, want at most one turn (%d)", spent, limit, over, turnCost)
			}
			if spent < limit-estimate {
				t.Errorf("spent %d: want the budget used up to within one estimate of %d", spent, limit)
			}
			if admitted == 0 || refused == 0 || admitted+refused != 50 {
				t.Errorf("admitted %d, refused %d: want both and 50 in all", admitted, refused)
			}
			for u, n := range warned {
				if n != 1 {
					t.Errorf("user %s warned %d times, want once", u, n)
				}
			}
			if len(warned) == 0 {
				t.Error("nobody was warned at 80%")
			}
			var live int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM budget_reservations`).Scan(&live); err != nil {
				t.Fatal(err)
			}
			if live != 0 {
				t.Errorf("reservations left: got %d, want 0", live)
			}
		})
	}
}

// TestAdmitWarnRefuseReset walks one user through a month: warned once at
// 80%, refused at 100% with a message naming the limit and the reset, and
// admitted again in the next month.
func TestAdmitWarnRefuseReset(t *testing.T) {
	ctx := context.Background()
	syd, _ := time.LoadLocation("Australia/Sydney")
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, syd)
	clock := func() time.Time { return now }
	user := mustUser(t, "month-"+uuid.NewString()[:8])
	b := NewBudgets(testPool, BudgetOptions{Location: syd, TurnEstimate: 1, Now: clock})
	mustSetBudgets(t, b, BudgetChange{UserID: user, Limit: ptr(int64(10_000_000))})

	steps := []struct {
		cost     int64
		wantWarn bool
		wantErr  bool
	}{
		{cost: 7_000_000},                 // 0% before: no warning
		{cost: 1_000_000},                 // 70% before
		{cost: 1_500_000, wantWarn: true}, // 80% before: warned
		{cost: 600_000},                   // 95%: already warned this month
		{wantErr: true},                   // 101%: refused
	}
	for i, st := range steps {
		a, err := turn(ctx, b, user, st.cost, now)
		if st.wantErr {
			var be *BudgetExceededError
			if !errors.As(err, &be) {
				t.Fatalf("step %d: got %v, want *BudgetExceededError", i, err)
			}
			msg := be.Error()
			for _, want := range []string{"$10.00", "$10.10", "Tue 1 Dec 2026 00:00 AEDT", "admin"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q: want it to name %q", msg, want)
				}
			}
			if be.Scope != ScopeUser || !be.ResetsAt.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, syd)) {
				t.Errorf("got scope %s, resets %v; want user, 1 Dec 00:00 Sydney", be.Scope, be.ResetsAt)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := a.Warning != ""; got != st.wantWarn {
			t.Errorf("step %d: got warning %q, want one: %v", i, a.Warning, st.wantWarn)
		}
	}

	// An hour later it is December in Sydney: a new month, a fresh budget.
	now = now.Add(time.Hour)
	if _, err := b.Admit(ctx, user); err != nil {
		t.Errorf("next month: got %v, want admission", err)
	}
}

// TestReservationsExpireAndCancel: a reservation left by a crash stops
// counting after its TTL; Cancel drops one at once.
func TestReservationsExpireAndCancel(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 7, 10, 3, 0, 0, 0, time.UTC)
	user := mustUser(t, "expire-"+uuid.NewString()[:8])
	b := NewBudgets(testPool, BudgetOptions{TurnEstimate: 600, ReservationTTL: time.Minute, Now: func() time.Time { return now }})
	mustSetBudgets(t, b, BudgetChange{UserID: user, Limit: ptr(int64(1000))})

	a, err := b.Admit(ctx, user) // reserves 600; the process "crashes"
	if err != nil || a.ID == 0 || !a.Budgeted {
		t.Fatalf("Admit: got %+v, %v", a, err)
	}
	a2, err := b.Admit(ctx, user) // 600 < 1000: admitted, now 1200 reserved
	if err != nil {
		t.Fatalf("second Admit: %v", err)
	}
	if _, err := b.Admit(ctx, user); err == nil {
		t.Fatal("third Admit with 1200 reserved: got admission, want refusal")
	}
	if err := b.Cancel(ctx, a2); err != nil {
		t.Fatal(err)
	}
	a3, err := b.Admit(ctx, user)
	if err != nil {
		t.Fatalf("after Cancel: got %v, want admission", err)
	}
	_ = b.Cancel(ctx, a3)
	now = now.Add(2 * time.Minute) // a's reservation has expired
	if _, err := b.Admit(ctx, user); err != nil {
		t.Fatalf("after expiry: got %v, want admission", err)
	}
}

// TestUnstoredSpendCounts: a paid call whose turn could not be stored is a
// ledger row of its own, and the budget counts it like any other.
func TestUnstoredSpendCounts(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 7, 10, 3, 0, 0, 0, time.UTC)
	user := mustUser(t, "unstored-"+uuid.NewString()[:8])
	b := NewBudgets(testPool, BudgetOptions{TurnEstimate: 1, Now: func() time.Time { return now }})
	mustSetBudgets(t, b, BudgetChange{UserID: user, Limit: ptr(int64(1000))})
	for _, o := range []string{OutcomeUnstored, OutcomeInterrupted} {
		if _, err := b.Admit(ctx, user); err != nil {
			t.Fatalf("Admit before %s spend: %v", o, err)
		}
		if err := Record(ctx, testPool, Event{UserID: user, Source: "api", Model: "gpt-4o", CostMicroUSD: 500,
			Outcome: o, OccurredAt: now.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.Admit(ctx, user) // 500 + 500 of 1000 spent
	var be *BudgetExceededError
	if !errors.As(err, &be) || be.SpentMicroUSD != 1000 {
		t.Fatalf("Admit after 1000 of unstored spend: %v, want *BudgetExceededError with 1000 spent", err)
	}
}

func TestOrgBudgetAndList(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 9, 15, 3, 0, 0, 0, time.UTC)
	db := testdb.New(t) // an org of its own
	alice, bob := mustUserIn(t, db, "alice"), mustUserIn(t, db, "bob")
	b := NewBudgets(db, BudgetOptions{TurnEstimate: 1, Now: func() time.Time { return now }})
	mustSetBudgets(t, b, BudgetChange{Limit: ptr(int64(5000))}, BudgetChange{UserID: alice, Limit: ptr(int64(100_000))})
	if _, err := turn(ctx, b, alice, 3000, now); err != nil {
		t.Fatal(err)
	}
	if _, err := turn(ctx, b, bob, 2500, now); err != nil {
		t.Fatal(err)
	}
	_, err := b.Admit(ctx, bob)
	var be *BudgetExceededError
	if !errors.As(err, &be) || be.Scope != ScopeOrg || be.SpentMicroUSD != 5500 {
		t.Fatalf("got %v, want the org budget refusal with 5500 spent", err)
	}
	rep, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Org == nil || rep.Org.LimitMicroUSD != 5000 || rep.Org.SpentMicroUSD != 5500 {
		t.Errorf("org budget: got %+v, want limit 5000, spent 5500", rep.Org)
	}
	var found bool
	for _, u := range rep.Users {
		if u.UserID == alice {
			found = true
			if u.SpentMicroUSD != 3000 || u.LimitMicroUSD != 100_000 || u.Handle == "" {
				t.Errorf("alice: got %+v, want spent 3000, limit 100000, a handle", u)
			}
		}
	}
	if !found {
		t.Errorf("alice's budget missing from %+v", rep.Users)
	}
	mustSetBudgets(t, b, BudgetChange{}) // remove the org budget
	if _, err := b.Admit(ctx, bob); err != nil {
		t.Errorf("org budget removed: got %v, want admission", err)
	}
}

// TestAdmitJoinsOrgLockSetMidway: a turn that chose the user's lock (no org
// budget when it looked) but finds an org budget once under that lock also
// waits for the org's lock, so it cannot race the turns already serialised
// on the org budget.
func TestAdmitJoinsOrgLockSetMidway(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	user := mustUserIn(t, db, "midway")
	b := NewBudgets(db, BudgetOptions{TurnEstimate: 1})
	mustSetBudgets(t, b, BudgetChange{UserID: user, Limit: ptr(int64(1_000_000))})

	waiting := func(orgLock bool) bool {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objsubid = 2 AND (objid = 0) = $2
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, advisoryClass, orgLock).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	lock := func(sql string, args ...any) pgx.Tx {
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
		return tx
	}

	userTx := lock(`SELECT pg_advisory_xact_lock($1, hashtext($2::text))`, advisoryClass, user)
	done := make(chan error, 1)
	go func() {
		a, err := b.Admit(ctx, user)
		if err == nil {
			err = b.Cancel(ctx, a)
		}
		done <- err
	}()
	testriver.WaitFor(t, "Admit to wait for the user's lock", func() bool { return waiting(false) })

	mustSetBudgets(t, b, BudgetChange{Limit: ptr(int64(1_000_000))}) // the org budget appears
	orgTx := lock(`SELECT pg_advisory_xact_lock($1, 0)`, advisoryClass)
	if err := userTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !waiting(true) {
		select {
		case err := <-done:
			t.Fatalf("Admit finished (%v) while another turn held the org budget's lock", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for Admit to wait for the org's lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := orgTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Admit after the org lock was released: %v", err)
	}
}
