package conversations

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/periodic"
)

// Housekeeping: the periodic jobs that keep conversations tidy. Idle ones
// are archived (their owner told in the conversation, undone by unarchive)
// and, when a retention is set, old messages are deleted; the usage ledger
// keeps its rows either way (usage_events.message_id is ON DELETE SET NULL).

// housekeepingBatch bounds each transaction of the archive and purge jobs,
// so neither holds locks on many rows for long.
const housekeepingBatch = 500

// Default schedules, in the configured zone (prefixed with CRON_TZ=).
const (
	DefaultArchiveSchedule   = "0 3 * * *"  // 03:00 daily
	DefaultRetentionSchedule = "30 3 * * *" // 03:30 daily
)

// HousekeepingConfig is the jobs' configuration, read from the environment
// by cmd/opsbot.
type HousekeepingConfig struct {
	// Location is OPSBOT_TIME_ZONE: default schedules run in it.
	Location *time.Location
	// Schedules are cron specs with an optional CRON_TZ= prefix; empty
	// means the default, "off" disables the job.
	ArchiveSchedule   string // OPSBOT_AUTO_ARCHIVE_SCHEDULE
	RetentionSchedule string // OPSBOT_RETENTION_SCHEDULE
	// AutoArchiveDays archives conversations idle this long; 0 disables.
	AutoArchiveDays int // OPSBOT_AUTO_ARCHIVE_DAYS
	// RetentionDays deletes messages older than this; 0 disables.
	RetentionDays int // OPSBOT_RETENTION_DAYS
}

// Validate parses the schedules and checks the day counts, for start-up.
func (c HousekeepingConfig) Validate() error {
	_, _, err := c.schedules()
	return err
}

// schedules returns the parsed schedules; a nil one is off.
func (c HousekeepingConfig) schedules() (archive, retention river.PeriodicSchedule, err error) {
	a, err := periodic.Parse(c.ArchiveSchedule, DefaultArchiveSchedule, c.Location)
	if err != nil {
		return nil, nil, fmt.Errorf("OPSBOT_AUTO_ARCHIVE_SCHEDULE: %w", err)
	}
	r, err := periodic.Parse(c.RetentionSchedule, DefaultRetentionSchedule, c.Location)
	if err != nil {
		return nil, nil, fmt.Errorf("OPSBOT_RETENTION_SCHEDULE: %w", err)
	}
	if c.AutoArchiveDays < 0 {
		return nil, nil, fmt.Errorf("OPSBOT_AUTO_ARCHIVE_DAYS: %d is negative", c.AutoArchiveDays)
	}
	if c.RetentionDays < 0 {
		return nil, nil, fmt.Errorf("OPSBOT_RETENTION_DAYS: %d is negative", c.RetentionDays)
	}
	// A nil cron.Schedule must stay a nil interface.
	if a != nil && c.AutoArchiveDays > 0 {
		archive = a
	}
	if r != nil && c.RetentionDays > 0 {
		retention = r
	}
	return archive, retention, nil
}

// TxDB is what housekeeping needs from the pool: statements, and
// transactions for its batches.
type TxDB interface {
	DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// CopyPurger deletes the copies of people's words it keeps that are older
// than cutoff, returning how many went. *knowledge.Index is one (the runbook
// gap questions).
type CopyPurger interface {
	PurgeQuestionsBefore(ctx context.Context, cutoff time.Time) (int64, error)
}

// Housekeeping runs the auto-archive and retention jobs.
type Housekeeping struct {
	DB     TxDB
	Config HousekeepingConfig
	Log    *slog.Logger     // nil discards
	Now    func() time.Time // nil is time.Now
	// Copies are other stores of people's words that the retention purge
	// empties with the messages.
	Copies []CopyPurger
}

func (h *Housekeeping) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Housekeeping) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// AddWorkers registers both workers, whether or not their jobs are
// scheduled here: another replica may have enqueued them.
func (h *Housekeeping) AddWorkers(workers *river.Workers) error {
	if err := river.AddWorkerSafely(workers, &archiveIdleWorker{h: h}); err != nil {
		return fmt.Errorf("add auto-archive worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &retentionWorker{h: h}); err != nil {
		return fmt.Errorf("add retention worker: %w", err)
	}
	return nil
}

// PeriodicJobs returns the enabled jobs for river.Config.PeriodicJobs.
func (h *Housekeeping) PeriodicJobs() ([]*river.PeriodicJob, error) {
	archive, retention, err := h.Config.schedules()
	if err != nil {
		return nil, err
	}
	return h.periodicJobs(archive, retention), nil
}

// periodicJobs builds the jobs on parsed schedules (tests pass their own).
func (h *Housekeeping) periodicJobs(archive, retention river.PeriodicSchedule) []*river.PeriodicJob {
	var out []*river.PeriodicJob
	if archive != nil {
		out = append(out, periodic.Job(ArchiveIdleArgs{}.Kind(), archive, func() river.JobArgs {
			return ArchiveIdleArgs{Days: h.Config.AutoArchiveDays}
		}))
	}
	if retention != nil {
		out = append(out, periodic.Job(RetentionArgs{}.Kind(), retention, func() river.JobArgs {
			return RetentionArgs{Days: h.Config.RetentionDays}
		}))
	}
	return out
}

// ArchiveIdleArgs is the River job that archives idle conversations.
type ArchiveIdleArgs struct {
	Days int `json:"days"` // idle at least this long
}

// Kind is the River job kind.
func (ArchiveIdleArgs) Kind() string { return "conversations_auto_archive" }

type archiveIdleWorker struct {
	river.WorkerDefaults[ArchiveIdleArgs]
	h *Housekeeping
}

func (w *archiveIdleWorker) Work(ctx context.Context, job *river.Job[ArchiveIdleArgs]) error {
	if job.Args.Days < 1 {
		return river.JobCancel(fmt.Errorf("auto-archive: days %d < 1", job.Args.Days))
	}
	n, err := w.h.ArchiveIdle(ctx, job.Args.Days)
	w.h.log().InfoContext(ctx, "auto-archive done", "archived", n, "idle_days", job.Args.Days)
	return err
}

// AutoArchiveNotice is the system message an auto-archived conversation gets.
func AutoArchiveNotice(days int) string {
	return fmt.Sprintf("This conversation was archived automatically after %d days without activity. "+
		"Nothing was deleted: a new message in its chat thread reopens it, and so does unarchiving it (POST /api/v1/conversations/{id}/unarchive).", days)
}

// ArchiveIdle archives every open conversation idle for days days, as of
// the housekeeping clock, each with a system message telling its owner why
// and how to undo it, and returns how many it archived.
func (h *Housekeeping) ArchiveIdle(ctx context.Context, days int) (int, error) {
	cutoff := h.now().Add(-time.Duration(days) * 24 * time.Hour)
	meta, _ := json.Marshal(map[string]any{"kind": "auto_archive", "idle_days": days})
	total := 0
	for {
		n := 0
		err := pgx.BeginFunc(ctx, h.DB, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				SELECT id, owner_id FROM conversations
				WHERE archived_at IS NULL AND activity_at < $1
				ORDER BY activity_at LIMIT $2
				FOR UPDATE SKIP LOCKED`, cutoff, housekeepingBatch)
			if err != nil {
				return err
			}
			type conv struct{ id, owner uuid.UUID }
			idle, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (conv, error) {
				var c conv
				return c, r.Scan(&c.id, &c.owner)
			})
			if err != nil {
				return err
			}
			store := NewStore(tx)
			for _, c := range idle {
				if _, err := store.Archive(ctx, c.owner, c.id); err != nil {
					return err
				}
				if _, err := store.AppendMessage(ctx, NewMessage{
					ConversationID: c.id, Role: RoleSystem, Content: AutoArchiveNotice(days), Metadata: meta,
				}); err != nil {
					return err
				}
			}
			n = len(idle)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("auto-archive conversations idle since %s: %w", cutoff.Format(time.RFC3339), err)
		}
		total += n
		if n < housekeepingBatch {
			return total, nil
		}
	}
}

// RetentionArgs is the River job that purges old messages.
type RetentionArgs struct {
	Days int `json:"days"` // delete messages older than this
}

// Kind is the River job kind.
func (RetentionArgs) Kind() string { return "conversations_retention" }

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	h *Housekeeping
}

func (w *retentionWorker) Work(ctx context.Context, job *river.Job[RetentionArgs]) error {
	if job.Args.Days < 1 {
		return river.JobCancel(fmt.Errorf("retention: days %d < 1", job.Args.Days))
	}
	cutoff := w.h.now().Add(-time.Duration(job.Args.Days) * 24 * time.Hour)
	n, err := w.h.PurgeMessagesBefore(ctx, cutoff)
	if err != nil {
		return err
	}
	var copies int64
	for _, c := range w.h.Copies {
		m, err := c.PurgeQuestionsBefore(ctx, cutoff)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		copies += m
	}
	w.h.log().InfoContext(ctx, "retention purge done", "deleted_messages", n, "deleted_copies", copies,
		"retention_days", job.Args.Days)
	return nil
}

// PurgeMessagesBefore deletes messages created before cutoff, keeping each
// conversation's message_count right, and returns how many it deleted.
func (h *Housekeeping) PurgeMessagesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := h.DB.QueryRow(ctx, `
			WITH del AS (
				DELETE FROM messages WHERE id IN (
					SELECT id FROM messages WHERE created_at < $1 ORDER BY created_at LIMIT $2
					FOR UPDATE SKIP LOCKED)
				RETURNING conversation_id
			), counts AS (
				SELECT conversation_id, count(*) AS n FROM del GROUP BY conversation_id
			), upd AS (
				UPDATE conversations c SET message_count = greatest(c.message_count - counts.n, 0)
				FROM counts WHERE c.id = counts.conversation_id
			)
			SELECT coalesce(sum(n), 0)::bigint FROM counts`, cutoff, housekeepingBatch).Scan(&n)
		if err != nil {
			return total, fmt.Errorf("purge messages older than %s: %w", cutoff.Format(time.RFC3339), err)
		}
		total += n
		if n < housekeepingBatch {
			return total, nil
		}
	}
}
