package usage

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/periodic"
)

// DefaultDigestSchedule is when the daily digest goes out by default: 09:00
// in the configured zone.
const DefaultDigestSchedule = "0 9 * * *"

// JobsConfig is the usage jobs' configuration, read from the environment by
// cmd/opsbot.
type JobsConfig struct {
	// Location is OPSBOT_TIME_ZONE: the default schedule runs in it and the
	// digest reports its days.
	Location *time.Location
	// DigestSchedule is a cron spec with an optional CRON_TZ= prefix
	// (OPSBOT_DIGEST_SCHEDULE); empty means the default, "off" disables it.
	DigestSchedule string
}

// Validate parses the schedule, for start-up.
func (c JobsConfig) Validate() error {
	_, err := c.schedule()
	return err
}

func (c JobsConfig) schedule() (river.PeriodicSchedule, error) {
	s, err := periodic.Parse(c.DigestSchedule, DefaultDigestSchedule, c.Location)
	if err != nil {
		return nil, fmt.Errorf("OPSBOT_DIGEST_SCHEDULE: %w", err)
	}
	if s == nil { // a nil cron.Schedule must stay a nil interface
		return nil, nil
	}
	return s, nil
}

// Jobs are the usage package's periodic jobs: the daily digest.
type Jobs struct {
	DB       *pgxpool.Pool
	Notifier periodic.Notifier // nil logs the digest
	Log      *slog.Logger
	Config   JobsConfig
	Now      func() time.Time // nil is time.Now
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

// AddWorkers registers the digest worker, whether or not the digest is
// scheduled here: another replica may have enqueued it.
func (j *Jobs) AddWorkers(workers *river.Workers) error {
	if err := river.AddWorkerSafely(workers, &DigestWorker{jobs: j}); err != nil {
		return fmt.Errorf("add digest worker: %w", err)
	}
	return nil
}

// PeriodicJobs returns the enabled jobs for river.Config.PeriodicJobs.
func (j *Jobs) PeriodicJobs() ([]*river.PeriodicJob, error) {
	s, err := j.Config.schedule()
	if err != nil {
		return nil, err
	}
	return j.periodicJobs(s), nil
}

// periodicJobs builds the jobs on a parsed schedule (tests pass their own).
func (j *Jobs) periodicJobs(digest river.PeriodicSchedule) []*river.PeriodicJob {
	if digest == nil {
		return nil
	}
	return []*river.PeriodicJob{periodic.Job("usage_digest", digest, func() river.JobArgs {
		return DigestArgs{Date: DateOf(j.now().In(j.loc())).AddDays(-1).String()}
	})}
}
