package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/periodic"
)

// Durable turns. A chat surface acks an inbound event only after the Inbox
// has committed, in one transaction, the event's inbound_events row (the
// dedupe record) and a River job; the model call happens in the job
// (TurnWorker). River retries a failed job with backoff, and the job is
// idempotent: the turn's key means a retry never stores a second reply or
// records usage twice, and the stored platform_message_id means it never
// posts twice.

// TurnKind is the River job kind of a turn.
const TurnKind = "opsbot_turn"

// TurnMaxAttempts bounds the retries of one turn.
const TurnMaxAttempts = 5

// TurnArgs is the job of one inbound chat turn: a question for the engine,
// or a command of the shared set.
type TurnArgs struct {
	Platform       string                   `json:"platform"` // selects the Replier: "slack", "teams"
	UserID         uuid.UUID                `json:"user_id"`
	ConversationID uuid.UUID                `json:"conversation_id,omitzero"`
	Thread         *conversations.ThreadKey `json:"thread,omitempty"`
	Text           string                   `json:"text"`
	Source         string                   `json:"source"`
	Key            string                   `json:"key"` // the turn key; Accept defaults it to platform:eventKey
	Meta           map[string]string        `json:"meta,omitempty"`
	// Command is true when Text is a command of the shared set (the
	// surface checked it with commands.ParseMessage), run instead of asking
	// the engine.
	Command bool `json:"command,omitempty"`
	// Private is true when the reply is seen by the person alone (a DM):
	// the token command answers only there.
	Private bool `json:"private,omitempty"`
}

// Kind is the River job kind.
func (TurnArgs) Kind() string { return TurnKind }

// InsertOpts bounds the job's attempts.
func (TurnArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: TurnMaxAttempts} }

// Turn is the engine turn of the job.
func (a TurnArgs) Turn() Turn {
	return Turn{UserID: a.UserID, ConversationID: a.ConversationID, Thread: a.Thread, Text: a.Text,
		Source: a.Source, Key: a.Key, Meta: a.Meta}
}

// storableText is a message as a job row keeps it: redacted, valid UTF-8
// without NUL characters (which PostgreSQL's jsonb refuses), and no longer
// than the message limit when the original was within it (redaction
// markers can be longer than the secrets they replace).
func storableText(text string) string {
	within := len(text) <= conversations.MaxContentBytes
	out := Redact(strings.ReplaceAll(strings.ToValidUTF8(text, "\uFFFD"), "\x00", "\uFFFD"))
	if within && len(out) > conversations.MaxContentBytes {
		cut := conversations.MaxContentBytes
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut]
	}
	return out
}

// Inbox takes inbound chat events for every surface. It is safe for
// concurrent use.
type Inbox struct {
	db   DB
	jobs *river.Client[pgx.Tx]
}

// NewInbox returns an inbox that enqueues on jobs (a River client whose
// process, or another replica, runs a TurnWorker).
func NewInbox(db DB, jobs *river.Client[pgx.Tx]) *Inbox { return &Inbox{db: db, jobs: jobs} }

// Accept records an inbound event and enqueues its turn, both in one
// transaction: the turn is durable exactly when Accept returns true, and
// the surface may ack the delivery. An event key seen before (a retried or
// concurrent redelivery) enqueues nothing and returns false, also a
// delivery to ack. The text is redacted before it is written to the job
// row, and made storable: NUL characters, which PostgreSQL's jsonb refuses,
// become U+FFFD.
func (in *Inbox) Accept(ctx context.Context, eventKey string, args TurnArgs) (isNew bool, err error) {
	if args.Platform == "" || eventKey == "" {
		return false, errors.New("accept event: platform and event key are required")
	}
	if args.Key == "" {
		args.Key = args.Platform + ":" + eventKey
	}
	args.Text = storableText(args.Text)
	// Three round trips: BEGIN and the event's row in one batch, then the
	// job, then COMMIT.
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`INSERT INTO inbound_events (platform, event_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		args.Platform, eventKey).Exec(func(tag pgconn.CommandTag) error {
		isNew = tag.RowsAffected() == 1
		return nil
	})
	br := in.db.SendBatch(ctx, b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		if tx != nil {
			_ = tx.Rollback(ctx)
		}
		return false, fmt.Errorf("record inbound event %s %s: %w", args.Platform, eventKey, err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op once committed
	if !isNew {
		return false, nil // seen before: the first delivery's transaction has its job
	}
	if _, err := in.jobs.InsertTx(ctx, tx, args, nil); err != nil {
		return false, fmt.Errorf("enqueue turn %s: %w", args.Key, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("record inbound event %s %s: commit: %w", args.Platform, eventKey, err)
	}
	return true, nil
}

// InboxRetention is how long an inbound event is remembered. Platforms
// redeliver within minutes (Slack for about five, the Bot Framework
// sooner), so three days cover every redelivery with room to spare, while
// the table stays small at hundreds of events a second.
const InboxRetention = 3 * 24 * time.Hour

// inboxPurgeBatch bounds one delete, so the purge never holds many locks.
const inboxPurgeBatch = 5000

// InboxPurgeArgs is the hourly job that forgets old inbound events.
type InboxPurgeArgs struct{}

// Kind is the River job kind.
func (InboxPurgeArgs) Kind() string { return "inbox_purge" }

// InboxPurgeWorker deletes inbound events older than InboxRetention.
type InboxPurgeWorker struct {
	river.WorkerDefaults[InboxPurgeArgs]
	db  DB
	now func() time.Time
}

// NewInboxPurgeWorker returns the purge worker; now is the clock (nil is
// time.Now).
func NewInboxPurgeWorker(db DB, now func() time.Time) *InboxPurgeWorker {
	if now == nil {
		now = time.Now
	}
	return &InboxPurgeWorker{db: db, now: now}
}

// Work deletes in batches until nothing old is left.
func (w *InboxPurgeWorker) Work(ctx context.Context, _ *river.Job[InboxPurgeArgs]) error {
	cutoff := w.now().Add(-InboxRetention)
	for {
		tag, err := w.db.Exec(ctx, `DELETE FROM inbound_events WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM inbound_events WHERE received_at < $1 LIMIT $2))`, cutoff, inboxPurgeBatch)
		if err != nil {
			return fmt.Errorf("purge inbound events before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		if tag.RowsAffected() < inboxPurgeBatch {
			return nil
		}
	}
}

// InboxPurgeJob is the hourly periodic job of the purge.
func InboxPurgeJob() *river.PeriodicJob {
	return periodic.Job(InboxPurgeArgs{}.Kind(), river.PeriodicInterval(time.Hour), func() river.JobArgs { return InboxPurgeArgs{} })
}
