package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Budget is one monthly limit with this month's spend so far.
type Budget struct {
	UserID        uuid.UUID // uuid.Nil for the org budget
	Handle        string    // empty for the org budget
	LimitMicroUSD int64
	SpentMicroUSD int64
}

// BudgetReport is every budget for the current month.
type BudgetReport struct {
	Month Range
	Org   *Budget // nil when the org has no budget
	Users []Budget
}

// BudgetChange sets (Limit non-nil) or removes (Limit nil) one budget.
type BudgetChange struct {
	UserID uuid.UUID // uuid.Nil for the org budget
	Limit  *int64    // micro-USD
}

// ParseUSD turns a non-negative decimal dollar amount with at most six
// decimals ("12.5") into micro-USD, exactly.
func ParseUSD(s string) (int64, error) { return parseMicro(s) }

// Location is the zone the budget months run by.
func (b *Budgets) Location() *time.Location { return b.loc }

// List returns every budget with the spend of the current month.
func (b *Budgets) List(ctx context.Context) (BudgetReport, error) {
	month := MonthOf(b.now(), b.loc)
	rep := BudgetReport{Month: month}
	rows, err := b.db.Query(ctx, `
		SELECT b.user_id, coalesce(u.handle, ''), b.monthly_limit_micro_usd,
			CASE WHEN b.user_id IS NULL
				THEN (SELECT coalesce(sum(cost_micro_usd), 0) FROM usage_rollup_org_15m
					WHERE bucket >= $1 AND bucket < $2)
				ELSE (SELECT coalesce(sum(cost_micro_usd), 0) FROM usage_rollup_user_15m r
					WHERE r.user_id = b.user_id AND bucket >= $1 AND bucket < $2)
			END::bigint
		FROM budgets b LEFT JOIN users u ON u.id = b.user_id
		ORDER BY u.handle NULLS FIRST`, month.Start(), month.End())
	if err != nil {
		return BudgetReport{}, fmt.Errorf("list budgets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var bg Budget
		var id *uuid.UUID
		if err := rows.Scan(&id, &bg.Handle, &bg.LimitMicroUSD, &bg.SpentMicroUSD); err != nil {
			return BudgetReport{}, fmt.Errorf("list budgets: %w", err)
		}
		if id == nil {
			rep.Org = &bg
			continue
		}
		bg.UserID = *id
		rep.Users = append(rep.Users, bg)
	}
	if err := rows.Err(); err != nil {
		return BudgetReport{}, fmt.Errorf("list budgets: %w", err)
	}
	return rep, nil
}

// Set applies the changes in one transaction.
func (b *Budgets) Set(ctx context.Context, changes []BudgetChange) error {
	return pgx.BeginFunc(ctx, b.db, func(tx pgx.Tx) error {
		for _, c := range changes {
			id := nullUUID(c.UserID)
			if c.Limit == nil {
				if _, err := tx.Exec(ctx, `DELETE FROM budgets WHERE user_id IS NOT DISTINCT FROM $1`, id); err != nil {
					return fmt.Errorf("remove budget: %w", err)
				}
				continue
			}
			if *c.Limit < 0 {
				return fmt.Errorf("set budget: negative limit %d", *c.Limit)
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO budgets (user_id, monthly_limit_micro_usd) VALUES ($1, $2)
				ON CONFLICT (user_id) DO UPDATE SET monthly_limit_micro_usd = excluded.monthly_limit_micro_usd, updated_at = now()`,
				id, *c.Limit); err != nil {
				return fmt.Errorf("set budget: %w", err)
			}
		}
		return nil
	})
}
