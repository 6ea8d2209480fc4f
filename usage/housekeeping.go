package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/conversations"
)

// housekeepingBatch bounds each transaction of the archive and purge jobs,
// so neither holds locks on many rows for long.
const housekeepingBatch = 500

// ArchiveIdleArgs is the River job that archives idle conversations.
type ArchiveIdleArgs struct {
	Days int `json:"days"` // idle at least this long
}

// Kind is the River job kind.
func (ArchiveIdleArgs) Kind() string { return "usage_auto_archive" }

// ArchiveIdleWorker archives conversations with no activity for Days days.
// Each archived conversation gets a system message telling its owner why and
// how to undo it (unarchive).
type ArchiveIdleWorker struct {
	river.WorkerDefaults[ArchiveIdleArgs]
	jobs *Jobs
}

// AutoArchiveNotice is the system message an auto-archived conversation gets.
func AutoArchiveNotice(days int) string {
	return fmt.Sprintf("This conversation was archived automatically after %d days without activity. "+
		"Nothing was deleted: unarchive it (the Undo button in chat, or POST /api/v1/conversations/{id}/unarchive) to carry on.", days)
}

// Work archives in batches until no idle conversation is left.
func (w *ArchiveIdleWorker) Work(ctx context.Context, job *river.Job[ArchiveIdleArgs]) error {
	if job.Args.Days < 1 {
		return river.JobCancel(fmt.Errorf("auto-archive: days %d < 1", job.Args.Days))
	}
	n, err := ArchiveIdle(ctx, w.jobs, job.Args.Days)
	w.jobs.log().InfoContext(ctx, "auto-archive done", "archived", n, "idle_days", job.Args.Days)
	return err
}

// ArchiveIdle archives every open conversation idle for days days, as of
// j's clock, and returns how many it archived.
func ArchiveIdle(ctx context.Context, j *Jobs, days int) (int, error) {
	now := j.now()
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	meta, _ := json.Marshal(map[string]any{"kind": "auto_archive", "idle_days": days})
	total := 0
	for {
		n := 0
		err := pgx.BeginFunc(ctx, j.DB, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				SELECT id, owner_id FROM conversations
				WHERE archived_at IS NULL AND activity_at < $1
				ORDER BY activity_at LIMIT $2
				FOR UPDATE SKIP LOCKED`, cutoff, housekeepingBatch)
			if err != nil {
				return err
			}
			type conv struct{ id, owner uuid.UUID }
			var idle []conv
			for rows.Next() {
				var c conv
				if err := rows.Scan(&c.id, &c.owner); err != nil {
					return err
				}
				idle = append(idle, c)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			store := conversations.NewStore(tx)
			for _, c := range idle {
				if _, err := store.Archive(ctx, c.owner, c.id); err != nil {
					return err
				}
				if _, err := store.AppendMessage(ctx, conversations.NewMessage{
					ConversationID: c.id, Role: "system", Content: AutoArchiveNotice(days), Metadata: meta,
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
func (RetentionArgs) Kind() string { return "usage_retention" }

// RetentionWorker deletes messages older than Days days. The usage ledger
// keeps its rows: usage_events.message_id is ON DELETE SET NULL.
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	jobs *Jobs
}

// Work purges in batches until nothing old is left.
func (w *RetentionWorker) Work(ctx context.Context, job *river.Job[RetentionArgs]) error {
	if job.Args.Days < 1 {
		return river.JobCancel(fmt.Errorf("retention: days %d < 1", job.Args.Days))
	}
	n, err := PurgeMessages(ctx, w.jobs, job.Args.Days)
	if err != nil {
		return err
	}
	cutoff := w.jobs.now().Add(-time.Duration(job.Args.Days) * 24 * time.Hour)
	var copies int64
	for _, c := range w.jobs.Copies {
		m, err := c.PurgeQuestionsBefore(ctx, cutoff)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		copies += m
	}
	w.jobs.log().InfoContext(ctx, "retention purge done", "deleted_messages", n, "deleted_copies", copies,
		"retention_days", job.Args.Days)
	return nil
}

// PurgeMessages deletes messages created more than days days ago (as of j's
// clock), keeping each conversation's message_count right, and returns how
// many it deleted.
func PurgeMessages(ctx context.Context, j *Jobs, days int) (int64, error) {
	cutoff := j.now().Add(-time.Duration(days) * 24 * time.Hour)
	var total int64
	for {
		var n int64
		err := j.DB.QueryRow(ctx, `
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
