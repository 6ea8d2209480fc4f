package usage

import (
	"context"
	"fmt"
	"slices"
)

// GroupBy is how org-wide usage is broken down.
type GroupBy string

// The org-wide breakdowns.
const (
	GroupByUser   GroupBy = "user"
	GroupByModel  GroupBy = "model"
	GroupBySource GroupBy = "source"
	GroupByDay    GroupBy = "day"
)

// ParseGroupBy checks a breakdown name.
func ParseGroupBy(s string) (GroupBy, error) {
	switch g := GroupBy(s); g {
	case GroupByUser, GroupByModel, GroupBySource, GroupByDay:
		return g, nil
	}
	return "", fmt.Errorf("group_by %q is not user, model, source or day", s)
}

// Row is one line of an org-wide report.
type Row struct {
	// Key is the user id, model, source or YYYY-MM-DD date.
	Key string
	// Label is the user's handle for GroupByUser, else Key.
	Label string
	Totals
}

// OrgReport is org-wide usage over a range, broken down one way. Rows are
// ordered by cost, highest first, except by day, which is in date order with
// every day of the range present.
type OrgReport struct {
	GroupBy GroupBy
	Range   Range
	Rows    []Row
	Totals  Totals
}

// SummarizeOrg returns org-wide usage over r, broken down by g.
func (rp *Reports) SummarizeOrg(ctx context.Context, r Range, g GroupBy) (OrgReport, error) {
	rep := OrgReport{GroupBy: g, Range: r}
	var err error
	switch g {
	case GroupByUser:
		rep.Rows, err = rp.orgByUser(ctx, r)
	case GroupByModel, GroupBySource:
		rep.Rows, err = rp.orgByColumn(ctx, r, string(g))
	case GroupByDay:
		rep.Rows, err = rp.orgByDay(ctx, r)
	default:
		return OrgReport{}, fmt.Errorf("group_by %q is not user, model, source or day", g)
	}
	if err != nil {
		return OrgReport{}, fmt.Errorf("summarize org usage by %s: %w", g, err)
	}
	for _, row := range rep.Rows {
		rep.Totals = rep.Totals.Add(row.Totals)
	}
	if g != GroupByDay {
		slices.SortStableFunc(rep.Rows, func(a, b Row) int {
			switch {
			case a.CostMicroUSD != b.CostMicroUSD:
				if a.CostMicroUSD > b.CostMicroUSD {
					return -1
				}
				return 1
			case a.Label < b.Label:
				return -1
			case a.Label > b.Label:
				return 1
			}
			return 0
		})
	}
	return rep, nil
}

// orgByUser reads whole UTC days from the daily rollup and only the partial
// days at each end from the 15-minute one, so a month costs a few thousand
// rows rather than one per user per quarter hour.
func (rp *Reports) orgByUser(ctx context.Context, r Range) ([]Row, error) {
	start, end := r.Start(), r.End()
	d0, d1 := utcDaySplit(start, end)
	rows, err := rp.db.Query(ctx, `
		WITH t AS (
			SELECT user_id, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd
			FROM usage_rollup_user_day
			WHERE day >= ($3 AT TIME ZONE 'UTC')::date AND day < ($4 AT TIME ZONE 'UTC')::date
			UNION ALL
			SELECT user_id, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd
			FROM usage_rollup_user_15m
			WHERE bucket >= $1 AND bucket < $3
			UNION ALL -- two plain ranges, not an OR, so both stay index-only scans
			SELECT user_id, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd
			FROM usage_rollup_user_15m
			WHERE bucket >= $4 AND bucket < $2
		), s AS (
			SELECT user_id, `+sumColumns+` FROM t GROUP BY user_id
		)
		SELECT s.user_id::text, s.events, s.prompt_tokens, s.completion_tokens, s.cached_tokens, s.cost_micro_usd, coalesce(u.handle, s.user_id::text)
		FROM s LEFT JOIN users u ON u.id = s.user_id`, start, end, d0, d1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var row Row
		if err := rows.Scan(append(append([]any{&row.Key}, scanTotals(&row.Totals)...), &row.Label)...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// orgByColumn groups the org 15-minute rollup by model or source (column is
// one of those two constants, never user input).
func (rp *Reports) orgByColumn(ctx context.Context, r Range, column string) ([]Row, error) {
	rows, err := rp.db.Query(ctx, `
		SELECT `+column+`, `+sumColumns+`
		FROM usage_rollup_org_15m
		WHERE bucket >= $1 AND bucket < $2
		GROUP BY 1`, r.Start(), r.End())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var row Row
		if err := rows.Scan(append([]any{&row.Key}, scanTotals(&row.Totals)...)...); err != nil {
			return nil, err
		}
		row.Label = row.Key
		out = append(out, row)
	}
	return out, rows.Err()
}

// orgByDay sums the org 15-minute rollup into the local days of r.
func (rp *Reports) orgByDay(ctx context.Context, r Range) ([]Row, error) {
	dates := r.Dates()
	out := make([]Row, len(dates))
	for i, d := range dates {
		out[i].Key = d.String()
		out[i].Label = out[i].Key
	}
	rows, err := rp.db.Query(ctx, `
		SELECT width_bucket(bucket, $1::timestamptz[]), `+sumColumns+`
		FROM usage_rollup_org_15m
		WHERE bucket >= $2 AND bucket < $3
		GROUP BY 1`, r.Edges(), r.Start(), r.End())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var t Totals
		if err := rows.Scan(append([]any{&i}, scanTotals(&t)...)...); err != nil {
			return nil, err
		}
		if i < 1 || i > len(out) {
			return nil, fmt.Errorf("bucket outside range (day %d)", i)
		}
		out[i-1].Totals = t
	}
	return out, rows.Err()
}
