package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Totals are additive usage figures; cost is integer micro-USD.
type Totals struct {
	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64
	CostMicroUSD     int64
	Messages         int64 // ledger rows: one per metered model reply
}

// TotalTokens is prompt plus completion tokens (cached tokens are a part of
// the prompt tokens, as the providers count them).
func (t Totals) TotalTokens() int64 { return t.PromptTokens + t.CompletionTokens }

// Add returns t plus o.
func (t Totals) Add(o Totals) Totals {
	return Totals{
		PromptTokens:     t.PromptTokens + o.PromptTokens,
		CompletionTokens: t.CompletionTokens + o.CompletionTokens,
		CachedTokens:     t.CachedTokens + o.CachedTokens,
		CostMicroUSD:     t.CostMicroUSD + o.CostMicroUSD,
		Messages:         t.Messages + o.Messages,
	}
}

// ModelUsage is one model's share of a summary.
type ModelUsage struct {
	Model string
	Totals
}

// DayUsage is one calendar day of a summary, in the summary's zone.
type DayUsage struct {
	Date Date
	Totals
}

// Summary is one user's usage over a range of days. The Daily entries cover
// every day of the range, zero days included, and add up to Totals.
// Conversations counts distinct conversations and so is not additive over
// days; it is given for the whole range only.
type Summary struct {
	Range         Range
	Totals        Totals
	Conversations int64
	ByModel       []ModelUsage
	Daily         []DayUsage
}

// Reports reads usage summaries from the rollups that the ledger's trigger
// keeps (migration 003).
type Reports struct {
	db DBTX
}

// NewReports returns a reader of usage summaries on db.
func NewReports(db DBTX) *Reports { return &Reports{db: db} }

// sumColumns are the additive rollup columns, in Totals order after events.
const sumColumns = `sum(events)::bigint AS events, sum(prompt_tokens)::bigint AS prompt_tokens,
	sum(completion_tokens)::bigint AS completion_tokens, sum(cached_tokens)::bigint AS cached_tokens,
	sum(cost_micro_usd)::bigint AS cost_micro_usd`

func scanTotals(t *Totals) []any {
	return []any{&t.Messages, &t.PromptTokens, &t.CompletionTokens, &t.CachedTokens, &t.CostMicroUSD}
}

// Summarize returns the user's usage for each day of r in r.Loc.
func (rp *Reports) Summarize(ctx context.Context, userID uuid.UUID, r Range) (Summary, error) {
	edges := r.Edges()
	s := Summary{Range: r, Daily: make([]DayUsage, r.Len())}
	for i, d := range r.Dates() {
		s.Daily[i].Date = d
	}
	// width_bucket gives 1 for the first day, len(edges)-1 for the last.
	rows, err := rp.db.Query(ctx, `
		SELECT width_bucket(bucket, $2::timestamptz[]), model, `+sumColumns+`
		FROM usage_rollup_user_15m
		WHERE user_id = $1 AND bucket >= $3 AND bucket < $4
		GROUP BY 1, 2
		ORDER BY 2`, userID, edges, r.Start(), r.End())
	if err != nil {
		return Summary{}, fmt.Errorf("summarize usage of %s: %w", userID, err)
	}
	defer rows.Close()
	byModel := map[string]int{}
	for rows.Next() {
		var i int
		var model string
		var t Totals
		if err := rows.Scan(append([]any{&i, &model}, scanTotals(&t)...)...); err != nil {
			return Summary{}, fmt.Errorf("summarize usage of %s: %w", userID, err)
		}
		if i < 1 || i > len(s.Daily) {
			return Summary{}, fmt.Errorf("summarize usage of %s: bucket outside range (day %d)", userID, i)
		}
		s.Daily[i-1].Totals = s.Daily[i-1].Add(t)
		s.Totals = s.Totals.Add(t)
		j, ok := byModel[model]
		if !ok {
			j = len(s.ByModel)
			byModel[model] = j
			s.ByModel = append(s.ByModel, ModelUsage{Model: model})
		}
		s.ByModel[j].Totals = s.ByModel[j].Add(t)
	}
	if err := rows.Err(); err != nil {
		return Summary{}, fmt.Errorf("summarize usage of %s: %w", userID, err)
	}
	err = rp.db.QueryRow(ctx, `
		SELECT count(DISTINCT conversation_id) FROM usage_events
		WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
		userID, r.Start(), r.End()).Scan(&s.Conversations)
	if err != nil {
		return Summary{}, fmt.Errorf("count conversations of %s: %w", userID, err)
	}
	return s, nil
}

// utcDaySplit splits [start, end) into whole UTC days [d0, d1) and the
// partial edges [start, d0) and [d1, end). When no whole UTC day fits, d0 ==
// d1 == end and the first edge covers everything.
func utcDaySplit(start, end time.Time) (d0, d1 time.Time) {
	start, end = start.UTC(), end.UTC()
	d0 = start.Truncate(24 * time.Hour)
	if d0.Before(start) {
		d0 = d0.Add(24 * time.Hour)
	}
	d1 = end.Truncate(24 * time.Hour)
	if !d0.Before(d1) {
		return end, end
	}
	return d0, d1
}
