package knowledge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/apacops/opsbot/periodic"
)

// DefaultGapSchedule is when the weekly gap report goes out: Monday 09:00
// Singapore time.
const DefaultGapSchedule = "CRON_TZ=Asia/Singapore 0 9 * * 1"

// gapReportPeriod is how far back the weekly report looks.
const gapReportPeriod = 7 * 24 * time.Hour

// GapReportArgs is the River job that sends the gap report.
type GapReportArgs struct {
	// Days is how far back the report looks; 0 means 7.
	Days int `json:"days,omitempty"`
}

// Kind is the River job kind.
func (GapReportArgs) Kind() string { return "knowledge_gap_report" }

// GapReportWorker builds the gap report and delivers it through Notifier.
type GapReportWorker struct {
	river.WorkerDefaults[GapReportArgs]
	Index    *Index
	Notifier periodic.Notifier
	Location *time.Location // times in the report; nil is UTC
}

// Work sends one report. A failed delivery is returned so River retries it.
func (w *GapReportWorker) Work(ctx context.Context, job *river.Job[GapReportArgs]) error {
	period := gapReportPeriod
	if job.Args.Days > 0 {
		period = time.Duration(job.Args.Days) * 24 * time.Hour
	}
	rep, err := w.Index.Gaps(ctx, w.Index.now().Add(-period))
	if err != nil {
		return err
	}
	if err := w.Notifier.Notify(ctx, rep.Text(w.Location)); err != nil {
		return fmt.Errorf("deliver runbook gap report: %w", err)
	}
	return nil
}

// ParseSchedule reads OPSBOT_GAPS_SCHEDULE: a standard five-field cron
// expression with an optional CRON_TZ= prefix; empty means
// DefaultGapSchedule and "off" disables the report (nil schedule, nil error).
// It is periodic.Parse, so every schedule reads (and fails) alike and none
// can panic.
func ParseSchedule(spec string) (cron.Schedule, error) {
	if strings.TrimSpace(spec) == "" {
		spec = DefaultGapSchedule
	}
	return periodic.Parse(spec, "", nil)
}

// GapReportJob is the periodic River job for the weekly report on sched (from
// ParseSchedule). It is unique per hour, so a leader change around the
// scheduled time cannot send the report twice.
func GapReportJob(sched cron.Schedule) *river.PeriodicJob {
	return periodic.Job(GapReportArgs{}.Kind(), sched, func() river.JobArgs { return GapReportArgs{} })
}
