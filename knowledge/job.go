package knowledge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"
)

// Notifier delivers a text report to the ops channel. cmd/opsbot wires one
// concrete notifier to both this report and the daily usage digest.
type Notifier interface {
	Notify(ctx context.Context, text string) error
}

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
	Notifier Notifier
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
// It never panics, whatever the text (robfig/cron panics on a bare
// "CRON_TZ=UTC").
func ParseSchedule(spec string) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		spec = DefaultGapSchedule
	case strings.EqualFold(spec, "off"):
		return nil, nil
	}
	fields := strings.Fields(spec)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		fields = fields[1:]
	}
	if len(fields) == 0 || strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=") {
		return nil, fmt.Errorf("schedule %q: want a cron expression like %q", spec, DefaultGapSchedule)
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("schedule %q: %v", spec, r)
		}
	}()
	sched, err = cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return sched, nil
}

// GapReportJob is the periodic River job for the weekly report on sched (from
// ParseSchedule). It is unique per hour, so a leader change around the
// scheduled time cannot send the report twice.
func GapReportJob(sched cron.Schedule) *river.PeriodicJob {
	return river.NewPeriodicJob(sched, func() (river.JobArgs, *river.InsertOpts) {
		return GapReportArgs{}, &river.InsertOpts{
			MaxAttempts: 5,
			UniqueOpts:  river.UniqueOpts{ByPeriod: time.Hour},
		}
	}, &river.PeriodicJobOpts{ID: "knowledge_gap_report"})
}
