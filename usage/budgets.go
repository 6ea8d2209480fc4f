package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Budget scopes.
const (
	ScopeUser = "user"
	ScopeOrg  = "org"
)

// Defaults for BudgetOptions.
const (
	// DefaultTurnEstimate is what an admitted turn reserves until its cost is
	// known: $0.05, more than a long gpt-4o turn.
	DefaultTurnEstimate int64 = 50_000
	// DefaultReservationTTL is how long a reservation counts when its turn
	// neither settles nor cancels (the process died).
	DefaultReservationTTL = 15 * time.Minute
)

// advisoryClass is the first key of the budget advisory locks ("bu").
const advisoryClass = 0x6275

// BudgetOptions tune Budgets; zero values take the defaults.
type BudgetOptions struct {
	// Location is the zone whose calendar months the budgets run by
	// (OPSBOT_TIME_ZONE).
	Location *time.Location
	// TurnEstimate is the micro-USD an admitted turn reserves: an upper
	// bound on one turn's cost, so concurrent turns overshoot a budget by at
	// most one turn.
	TurnEstimate   int64
	ReservationTTL time.Duration
	Now            func() time.Time
}

// Budgets enforces monthly spending limits per user and for the whole
// organisation. A month is a calendar month in the configured zone.
type Budgets struct {
	db       *pgxpool.Pool
	loc      *time.Location
	estimate int64
	ttl      time.Duration
	now      func() time.Time
}

// NewBudgets returns the budget keeper on db.
func NewBudgets(db *pgxpool.Pool, o BudgetOptions) *Budgets {
	b := &Budgets{db: db, loc: o.Location, estimate: o.TurnEstimate, ttl: o.ReservationTTL, now: o.Now}
	if b.loc == nil {
		b.loc = time.UTC
	}
	if b.estimate <= 0 {
		b.estimate = DefaultTurnEstimate
	}
	if b.ttl <= 0 {
		b.ttl = DefaultReservationTTL
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// limits are the budgets that apply to one user.
type limits struct {
	user, org int64 // -1: no budget
}

func readLimits(ctx context.Context, db DBTX, userID uuid.UUID) (limits, error) {
	l := limits{user: -1, org: -1}
	rows, err := db.Query(ctx, `SELECT user_id, monthly_limit_micro_usd FROM budgets
		WHERE user_id = $1 OR user_id IS NULL`, userID)
	if err != nil {
		return l, err
	}
	defer rows.Close()
	for rows.Next() {
		var id *uuid.UUID
		var limit int64
		if err := rows.Scan(&id, &limit); err != nil {
			return l, err
		}
		if id == nil {
			l.org = limit
		} else {
			l.user = limit
		}
	}
	return l, rows.Err()
}

// Admit decides, before the model is called, whether the user may take a
// turn. With no budget for the user or the org it returns Admission{} at the
// cost of one indexed read. Otherwise, under a transaction-scoped advisory
// lock (the org's when an org budget exists, else the user's; both when an
// org budget appears while it waits for the user's), it compares
// the month's spend plus the live reservations with each limit: at or over
// 100% it refuses with *BudgetExceededError; otherwise it reserves the turn
// estimate, sets Budgeted and, the first time in the month a budget is at
// 80% or more, sets Warning. The caller must Settle or Cancel the admission.
func (b *Budgets) Admit(ctx context.Context, userID uuid.UUID) (Admission, error) {
	l, err := readLimits(ctx, b.db, userID)
	if err != nil {
		return Admission{}, fmt.Errorf("read budgets of %s: %w", userID, err)
	}
	if l.user < 0 && l.org < 0 {
		return Admission{}, nil
	}
	now := b.now()
	month := MonthOf(now, b.loc)
	adm := Admission{Budgeted: true}
	err = pgx.BeginFunc(ctx, b.db, func(tx pgx.Tx) error {
		orgLocked := l.org >= 0
		if orgLocked {
			_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, advisoryClass)
		} else {
			_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2::text))`, advisoryClass, userID)
		}
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Read again under the lock: an admin may just have changed them.
		if l, err = readLimits(ctx, tx, userID); err != nil {
			return err
		}
		if l.org >= 0 && !orgLocked {
			// An org budget appeared since the first read: queue behind the
			// turns serialised on it too. The user's lock is only ever taken
			// before the org's, never after, so this cannot deadlock.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, advisoryClass); err != nil {
				return fmt.Errorf("lock org budget: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM budget_reservations WHERE expires_at <= $1`, now); err != nil {
			return fmt.Errorf("expire reservations: %w", err)
		}
		var warnings []string
		for _, sc := range []struct {
			scope string
			limit int64
		}{{ScopeUser, l.user}, {ScopeOrg, l.org}} {
			if sc.limit < 0 {
				continue
			}
			spent, reserved, err := b.used(ctx, tx, sc.scope, userID, month, now)
			if err != nil {
				return err
			}
			if spent+reserved >= sc.limit {
				return &BudgetExceededError{Scope: sc.scope, LimitMicroUSD: sc.limit,
					SpentMicroUSD: spent, ResetsAt: month.End()}
			}
			if (spent+reserved)*5 >= sc.limit*4 {
				tag, err := tx.Exec(ctx, `INSERT INTO budget_warnings (user_id, scope, month) VALUES ($1, $2, $3)
					ON CONFLICT DO NOTHING`, userID, sc.scope, month.Start().Format(time.DateOnly))
				if err != nil {
					return fmt.Errorf("record warning: %w", err)
				}
				if tag.RowsAffected() == 1 {
					warnings = append(warnings, warningText(sc.scope, spent+reserved, sc.limit, month.End()))
				}
			}
		}
		if err := tx.QueryRow(ctx, `INSERT INTO budget_reservations (user_id, amount_micro_usd, expires_at)
			VALUES ($1, $2, $3) RETURNING id`, userID, b.estimate, now.Add(b.ttl)).Scan(&adm.ID); err != nil {
			return fmt.Errorf("reserve: %w", err)
		}
		for i, w := range warnings {
			if i > 0 {
				adm.Warning += " "
			}
			adm.Warning += w
		}
		return nil
	})
	var be *BudgetExceededError
	if errors.As(err, &be) {
		return Admission{}, be
	}
	if err != nil {
		return Admission{}, fmt.Errorf("admit turn of %s: %w", userID, err)
	}
	return adm, nil
}

// used is the month's ledger spend and the live reservations, for the user
// or the whole org.
func (b *Budgets) used(ctx context.Context, db DBTX, scope string, userID uuid.UUID, month Range, now time.Time) (spent, reserved int64, err error) {
	if scope == ScopeUser {
		err = db.QueryRow(ctx, `
			SELECT coalesce((SELECT sum(cost_micro_usd) FROM usage_rollup_user_15m
				WHERE user_id = $1 AND bucket >= $2 AND bucket < $3), 0)::bigint,
			       coalesce((SELECT sum(amount_micro_usd) FROM budget_reservations
				WHERE user_id = $1 AND expires_at > $4), 0)::bigint`,
			userID, month.Start(), month.End(), now).Scan(&spent, &reserved)
	} else {
		err = db.QueryRow(ctx, `
			SELECT coalesce((SELECT sum(cost_micro_usd) FROM usage_rollup_org_15m
				WHERE bucket >= $1 AND bucket < $2), 0)::bigint,
			       coalesce((SELECT sum(amount_micro_usd) FROM budget_reservations
				WHERE expires_at > $3), 0)::bigint`,
			month.Start(), month.End(), now).Scan(&spent, &reserved)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read %s spend: %w", scope, err)
	}
	return spent, reserved, nil
}

// Settle drops the admission's reservation inside the transaction that
// records the turn's usage, so the estimate turns into the real cost at one
// instant. A zero admission is a no-op.
func (b *Budgets) Settle(ctx context.Context, tx DBTX, a Admission) error {
	if a.ID == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, settleSQL, a.ID); err != nil {
		return fmt.Errorf("settle reservation %d: %w", a.ID, err)
	}
	return nil
}

// QueueSettle is Settle queued on batch, for a caller that writes its turn
// in one round trip (a batch runs as one implicit transaction).
func (b *Budgets) QueueSettle(batch *pgx.Batch, a Admission) {
	if a.ID == 0 {
		return
	}
	batch.Queue(settleSQL, a.ID)
}

const settleSQL = `DELETE FROM budget_reservations WHERE id = $1`

// Cancel drops the reservation of a turn that failed before it cost anything
// to record. A zero admission is a no-op.
func (b *Budgets) Cancel(ctx context.Context, a Admission) error {
	return b.Settle(ctx, b.db, a)
}

func warningText(scope string, used, limit int64, resets time.Time) string {
	pct := used * 100 / max(limit, 1)
	whose := "your"
	if scope == ScopeOrg {
		whose = "the team's"
	}
	return fmt.Sprintf("Heads-up: %d%% of %s monthly budget of %s is used; it resets %s.",
		pct, whose, FormatUSD(limit), formatReset(resets))
}

func formatReset(t time.Time) string {
	return t.Format("Mon 2 Jan 2006 15:04 MST")
}
