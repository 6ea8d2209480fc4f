// Package periodic holds what opsbot's scheduled jobs share: cron schedules
// read the same way (and failing the same way) for every job, the periodic
// River job that runs once per scheduled time across replicas, and the
// Notifier their reports are delivered through (a Slack channel, a Teams
// conversation, or the log).
//
// The jobs themselves live with the data they read or change: the usage
// digest in usage, auto-archive and retention in conversations, the runbook
// gap report in knowledge.
package periodic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"
)

// Parse reads a cron spec: five standard fields with an optional CRON_TZ=
// (or TZ=) prefix. Empty means def in loc (UTC when loc is nil); "off"
// disables the job (nil schedule, nil error). It never panics, whatever the
// text (robfig/cron panics on a bare "CRON_TZ=UTC").
func Parse(spec, def string, loc *time.Location) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		if loc == nil {
			loc = time.UTC
		}
		spec = "CRON_TZ=" + loc.String() + " " + def
	case strings.EqualFold(spec, "off"):
		return nil, nil
	}
	fields := strings.Fields(spec)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		fields = fields[1:]
	}
	if len(fields) != 5 {
		return nil, fmt.Errorf("schedule %q: want five cron fields, optionally after CRON_TZ=Zone, like %q", spec, "CRON_TZ=Asia/Singapore 0 9 * * 1-5")
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

// Job is the periodic River job id on sched, whose arguments args builds at
// each scheduled time. River enqueues periodic jobs on the elected leader
// only; the job is also unique per hour, so a leader change around the
// scheduled time cannot run it twice. A failed run is retried up to five
// times.
func Job(id string, sched river.PeriodicSchedule, args func() river.JobArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(sched, func() (river.JobArgs, *river.InsertOpts) {
		return args(), &river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
	}, &river.PeriodicJobOpts{ID: id})
}

// Notifier delivers a text report to the ops channel.
type Notifier interface {
	Notify(ctx context.Context, text string) error
}

// LogNotifier "delivers" reports to the log: their destination when no chat
// channel is configured.
type LogNotifier struct{ Log *slog.Logger }

// Notify logs the report's first line at info level and the whole report at
// debug level only: a report may quote what people asked (the runbook gap
// report does), and message text stays out of info logs.
func (n LogNotifier) Notify(ctx context.Context, text string) error {
	head, _, _ := strings.Cut(text, "\n")
	n.Log.InfoContext(ctx, "report (no chat channel configured; the full text is logged at debug level)",
		"report", head, "lines", strings.Count(strings.TrimRight(text, "\n"), "\n")+1)
	n.Log.DebugContext(ctx, "report text", "report", text)
	return nil
}

// Notifiers delivers each report to every notifier in turn. A failure is
// returned (joined) after all were tried, so the job retries; the retry may
// repeat the report where it did arrive.
type Notifiers []Notifier

// Notify implements Notifier.
func (ns Notifiers) Notify(ctx context.Context, text string) error {
	var errs []error
	for _, n := range ns {
		if err := n.Notify(ctx, text); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
