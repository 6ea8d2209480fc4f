package usage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/periodic"
)

// DigestArgs is the River job that posts one day's usage digest.
type DigestArgs struct {
	// Date is the day reported, YYYY-MM-DD in the configured zone; fixed
	// when the job is enqueued so a retry reports the same day.
	Date string `json:"date"`
}

// Kind is the River job kind.
func (DigestArgs) Kind() string { return "usage_digest" }

// DigestWorker builds the digest and hands it to the Notifier.
type DigestWorker struct {
	river.WorkerDefaults[DigestArgs]
	jobs *Jobs
}

// Work posts one digest. A failed delivery is returned so River retries it.
func (w *DigestWorker) Work(ctx context.Context, job *river.Job[DigestArgs]) error {
	day, err := ParseDate(job.Args.Date)
	if err != nil {
		return river.JobCancel(fmt.Errorf("digest: %w", err))
	}
	text, err := BuildDigest(ctx, NewReports(w.jobs.DB), w.jobs.DB, w.jobs.loc(), day)
	if err != nil {
		return err
	}
	n := w.jobs.Notifier
	if n == nil {
		n = periodic.LogNotifier{Log: w.jobs.log()}
	}
	if err := n.Notify(ctx, text); err != nil {
		return fmt.Errorf("deliver usage digest for %s: %w", day, err)
	}
	w.jobs.log().InfoContext(ctx, "usage digest delivered", "date", day.String())
	return nil
}

// BuildDigest writes the usage digest of one day in loc: the day's cost,
// tokens and replies against the day before, the top users and models, and
// the month so far against the org budget.
func BuildDigest(ctx context.Context, rp *Reports, db DBTX, loc *time.Location, day Date) (string, error) {
	two, err := NewRange(loc, day.AddDays(-1), day)
	if err != nil {
		return "", err
	}
	byDay, err := rp.SummarizeOrg(ctx, two, GroupByDay)
	if err != nil {
		return "", err
	}
	one := Range{Loc: loc, First: day, Last: day}
	byUser, err := rp.SummarizeOrg(ctx, one, GroupByUser)
	if err != nil {
		return "", err
	}
	byModel, err := rp.SummarizeOrg(ctx, one, GroupByModel)
	if err != nil {
		return "", err
	}
	month := Range{Loc: loc, First: Date{day.Year, day.Month, 1}, Last: day}
	mtd, err := rp.SummarizeOrg(ctx, month, GroupByModel)
	if err != nil {
		return "", err
	}
	var orgLimit int64 = -1
	err = db.QueryRow(ctx, `SELECT monthly_limit_micro_usd FROM budgets WHERE user_id IS NULL`).Scan(&orgLimit)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("read org budget: %w", err)
	}

	prev, cur := byDay.Rows[0].Totals, byDay.Rows[1].Totals
	var b strings.Builder
	dayTime := day.Midnight(loc)
	fmt.Fprintf(&b, "opsbot usage for %s (%s)\n", dayTime.Format("Mon 2 Jan 2006"), loc)
	fmt.Fprintf(&b, "Cost %s · %s tokens · %d replies · %d users (day before: %s%s)\n",
		FormatUSD(cur.CostMicroUSD), FormatCount(cur.TotalTokens()), cur.Messages, len(byUser.Rows),
		FormatUSD(prev.CostMicroUSD), change(prev.CostMicroUSD, cur.CostMicroUSD))
	if len(byUser.Rows) > 0 {
		b.WriteString("Top users: " + topList(byUser.Rows, 5) + "\n")
		b.WriteString("Top models: " + topList(byModel.Rows, 5) + "\n")
	}
	fmt.Fprintf(&b, "Month to date: %s", FormatUSD(mtd.Totals.CostMicroUSD))
	if orgLimit >= 0 {
		fmt.Fprintf(&b, " of the %s team budget (%d%%)", FormatUSD(orgLimit), mtd.Totals.CostMicroUSD*100/max(orgLimit, 1))
	}
	b.WriteString("\n")
	return b.String(), nil
}

func topList(rows []Row, n int) string {
	parts := make([]string, 0, n)
	for i, r := range rows {
		if i == n {
			break
		}
		parts = append(parts, r.Label+" "+FormatUSD(r.CostMicroUSD))
	}
	return strings.Join(parts, ", ")
}

func change(prev, cur int64) string {
	if prev == 0 {
		return ""
	}
	pct := (cur - prev) * 100 / prev
	return fmt.Sprintf(", %+d%%", pct)
}

// FormatCount renders a count with thousands separators: 1234567 as 1,234,567.
func FormatCount(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + FormatCount(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
