package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"
)

// Notifier delivers a text report to the ops channel (Slack, Teams, or the
// log when none is configured). The knowledge gap report takes the same
// shape; cmd/opsbot wires one concrete notifier to both.
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

// Default schedules, in the configured zone (prefixed with CRON_TZ=).
const (
	DefaultDigestSchedule    = "0 9 * * *"  // 09:00 daily
	DefaultArchiveSchedule   = "0 3 * * *"  // 03:00 daily
	DefaultRetentionSchedule = "30 3 * * *" // 03:30 daily
)

// JobsConfig is the periodic jobs' configuration, read from the environment
// by cmd/opsbot.
type JobsConfig struct {
	// Location is OPSBOT_TIME_ZONE: default schedules run in it and the
	// digest reports its days.
	Location *time.Location
	// Schedules are cron specs with an optional CRON_TZ= prefix; empty means
	// the default, "off" disables the job.
	DigestSchedule    string // OPSBOT_DIGEST_SCHEDULE
	ArchiveSchedule   string // OPSBOT_AUTO_ARCHIVE_SCHEDULE
	RetentionSchedule string // OPSBOT_RETENTION_SCHEDULE
	// AutoArchiveDays archives conversations idle this long; 0 disables.
	AutoArchiveDays int // OPSBOT_AUTO_ARCHIVE_DAYS
	// RetentionDays deletes messages older than this; 0 disables. The usage
	// ledger is kept.
	RetentionDays int // OPSBOT_RETENTION_DAYS
}

// ParseSchedule reads a cron spec: five standard fields with an optional
// CRON_TZ= (or TZ=) prefix. Empty means def in loc; "off" disables (nil
// schedule, nil error). It never panics, whatever the text (robfig/cron
// panics on a bare "CRON_TZ=UTC").
func ParseSchedule(spec, def string, loc *time.Location) (sched cron.Schedule, err error) {
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

// schedules are the parsed schedules; nil ones are off.
type schedules struct {
	digest, archive, retention river.PeriodicSchedule
}

// Validate parses every schedule and checks the day counts, for start-up.
func (c JobsConfig) Validate() error {
	_, err := c.schedules()
	return err
}

func (c JobsConfig) schedules() (schedules, error) {
	var s schedules
	for _, x := range []struct {
		env, spec, def string
		dst            *river.PeriodicSchedule
	}{
		{"OPSBOT_DIGEST_SCHEDULE", c.DigestSchedule, DefaultDigestSchedule, &s.digest},
		{"OPSBOT_AUTO_ARCHIVE_SCHEDULE", c.ArchiveSchedule, DefaultArchiveSchedule, &s.archive},
		{"OPSBOT_RETENTION_SCHEDULE", c.RetentionSchedule, DefaultRetentionSchedule, &s.retention},
	} {
		sched, err := ParseSchedule(x.spec, x.def, c.Location)
		if err != nil {
			return s, fmt.Errorf("%s: %w", x.env, err)
		}
		if sched != nil { // a nil cron.Schedule must stay a nil interface
			*x.dst = sched
		}
	}
	if c.AutoArchiveDays < 0 {
		return s, fmt.Errorf("OPSBOT_AUTO_ARCHIVE_DAYS: %d is negative", c.AutoArchiveDays)
	}
	if c.RetentionDays < 0 {
		return s, fmt.Errorf("OPSBOT_RETENTION_DAYS: %d is negative", c.RetentionDays)
	}
	return s, nil
}

// Jobs are the usage package's periodic jobs: the daily digest, the
// auto-archive of idle conversations and the retention purge.
type Jobs struct {
	DB       *pgxpool.Pool
	Notifier Notifier // nil logs the digest
	Log      *slog.Logger
	Config   JobsConfig
	Now      func() time.Time // nil is time.Now
	// Copies are other stores of people's words (runbook gap questions)
	// that the retention purge empties with the messages.
	Copies []CopyPurger
}

// CopyPurger deletes the copies of people's questions it keeps that are
// older than cutoff, returning how many went. *knowledge.Index is one.
type CopyPurger interface {
	PurgeQuestionsBefore(ctx context.Context, cutoff time.Time) (int64, error)
}

func (j *Jobs) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Jobs) log() *slog.Logger {
	if j.Log != nil {
		return j.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (j *Jobs) loc() *time.Location {
	if j.Config.Location != nil {
		return j.Config.Location
	}
	return time.UTC
}

// AddWorkers registers the workers of every usage job, whether or not it is
// scheduled here: another replica may have enqueued it.
func (j *Jobs) AddWorkers(workers *river.Workers) error {
	if err := river.AddWorkerSafely(workers, &DigestWorker{jobs: j}); err != nil {
		return fmt.Errorf("add digest worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &ArchiveIdleWorker{jobs: j}); err != nil {
		return fmt.Errorf("add auto-archive worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &RetentionWorker{jobs: j}); err != nil {
		return fmt.Errorf("add retention worker: %w", err)
	}
	return nil
}

// PeriodicJobs returns the enabled jobs for river.Config.PeriodicJobs. River
// runs them on the elected leader only; each is also unique per hour, so a
// leader change around the scheduled time cannot run one twice.
func (j *Jobs) PeriodicJobs() ([]*river.PeriodicJob, error) {
	s, err := j.Config.schedules()
	if err != nil {
		return nil, err
	}
	return j.periodicJobs(s), nil
}

// periodicJobs builds the jobs on parsed schedules (tests pass their own).
func (j *Jobs) periodicJobs(s schedules) []*river.PeriodicJob {
	unique := func(args river.JobArgs) (river.JobArgs, *river.InsertOpts) {
		return args, &river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
	}
	var out []*river.PeriodicJob
	if s.digest != nil {
		out = append(out, river.NewPeriodicJob(s.digest, func() (river.JobArgs, *river.InsertOpts) {
			return unique(DigestArgs{Date: DateOf(j.now().In(j.loc())).AddDays(-1).String()})
		}, &river.PeriodicJobOpts{ID: "usage_digest"}))
	}
	if s.archive != nil && j.Config.AutoArchiveDays > 0 {
		out = append(out, river.NewPeriodicJob(s.archive, func() (river.JobArgs, *river.InsertOpts) {
			return unique(ArchiveIdleArgs{Days: j.Config.AutoArchiveDays})
		}, &river.PeriodicJobOpts{ID: "usage_auto_archive"}))
	}
	if s.retention != nil && j.Config.RetentionDays > 0 {
		out = append(out, river.NewPeriodicJob(s.retention, func() (river.JobArgs, *river.InsertOpts) {
			return unique(RetentionArgs{Days: j.Config.RetentionDays})
		}, &river.PeriodicJobOpts{ID: "usage_retention"}))
	}
	return out
}
