package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
)

// Durable turns. A chat adapter acks an inbound event only after Enqueue has
// committed, in one transaction, the event's inbound_events row (the dedupe
// record) and a River job; the model call happens in the job. River retries
// a failed job with backoff, and the job is idempotent: the turn's key means
// a retry never stores a second reply or records usage twice, and the stored
// platform_message_id means it never posts twice.

// TurnKind is the River job kind of a turn.
const TurnKind = "opsbot_turn"

// TurnMaxAttempts bounds the retries of one turn.
const TurnMaxAttempts = 5

// postedMarker is recorded as the platform message id when a Replier posts
// without returning one, so the reply still counts as posted.
const postedMarker = "posted"

// TurnArgs is the job of one inbound chat turn.
type TurnArgs struct {
	Platform       string                   `json:"platform"` // selects the Replier: "slack", "teams"
	UserID         uuid.UUID                `json:"user_id"`
	ConversationID uuid.UUID                `json:"conversation_id,omitzero"`
	Thread         *conversations.ThreadKey `json:"thread,omitempty"`
	Text           string                   `json:"text"`
	Source         string                   `json:"source"`
	Key            string                   `json:"key"` // the turn key; Enqueue defaults it to platform:eventKey
	Meta           map[string]string        `json:"meta,omitempty"`
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

// Enqueue records an inbound event and enqueues its turn in tx: the job
// exists exactly when the transaction commits. A (platform, eventKey) seen
// before (a retried delivery) enqueues nothing and returns false. The text
// is redacted before it is written to the job row.
func Enqueue(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], platform, eventKey string, args TurnArgs) (bool, error) {
	if platform == "" || eventKey == "" {
		return false, errors.New("enqueue turn: platform and event key are required")
	}
	tag, err := tx.Exec(ctx, `INSERT INTO inbound_events (platform, event_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		platform, eventKey)
	if err != nil {
		return false, fmt.Errorf("record inbound event %s %s: %w", platform, eventKey, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if args.Platform == "" {
		args.Platform = platform
	}
	if args.Key == "" {
		args.Key = platform + ":" + eventKey
	}
	args.Text = Redact(args.Text)
	if _, err := client.InsertTx(ctx, tx, args, nil); err != nil {
		return false, fmt.Errorf("enqueue turn %s: %w", args.Key, err)
	}
	return true, nil
}

// TurnWorker runs turn jobs: the engine answers (or replays the stored
// answer), then the platform's Replier posts it unless it is already posted.
type TurnWorker struct {
	river.WorkerDefaults[TurnArgs]
	engine   *Engine
	repliers map[string]Replier
	log      *slog.Logger
}

// NewTurnWorker builds the worker; repliers maps a platform ("slack",
// "teams") to the Replier that posts there. Register it with
// river.AddWorker(workers, w).
func NewTurnWorker(e *Engine, repliers map[string]Replier, log *slog.Logger) *TurnWorker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TurnWorker{engine: e, repliers: repliers, log: log}
}

// Timeout gives a turn the model's deadline plus time to store and post.
func (w *TurnWorker) Timeout(*river.Job[TurnArgs]) time.Duration {
	return w.engine.cfg.CallTimeout + time.Minute
}

// Work answers one turn; see TurnWorker.
func (w *TurnWorker) Work(ctx context.Context, job *river.Job[TurnArgs]) error {
	a := job.Args
	t := a.Turn()
	rp := w.repliers[a.Platform]
	if rp == nil {
		return river.JobCancel(fmt.Errorf("no replier for platform %q", a.Platform))
	}
	onDelta, err := w.streamer(ctx, rp, t)
	if err != nil {
		return err
	}
	rep, err := w.engine.Respond(ctx, t, onDelta)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped or timed out mid-turn: nothing was stored, River
			// runs the job again.
			return fmt.Errorf("turn %s interrupted: %w", a.Key, err)
		}
		final := userFacing(err)
		if !final && job.Attempt < job.MaxAttempts {
			return fmt.Errorf("turn %s attempt %d: %w", a.Key, job.Attempt, err)
		}
		// Tell the user rather than go silent: a refusal or model outage
		// now, anything else once the retries are spent.
		if _, perr := rp.Reply(ctx, t, Reply{Text: UserMessage(err)}); perr != nil {
			w.engine.cfg.Metrics.error("reply")
			return fmt.Errorf("turn %s: post failure notice: %w (turn error: %v)", a.Key, perr, err)
		}
		w.log.InfoContext(ctx, "turn failed; user told", "platform", a.Platform, "turn_key", a.Key, "error", err)
		if final {
			return nil
		}
		return river.JobCancel(err)
	}
	if rep.AssistantMessage.PlatformMessageID != "" {
		return nil // posted by an earlier attempt
	}
	pmid, err := rp.Reply(ctx, t, rep)
	if err != nil {
		w.engine.cfg.Metrics.error("reply")
		return fmt.Errorf("turn %s: post reply: %w", a.Key, err)
	}
	if pmid == "" {
		pmid = postedMarker
	}
	if err := conversations.NewStore(w.engine.cfg.DB).SetPlatformMessageID(ctx, rep.AssistantMessage.ID, pmid); err != nil {
		// The reply is out; a retry would post it again. Log loudly and
		// finish the job rather than risk a duplicate.
		w.log.ErrorContext(ctx, "reply posted but its platform id not recorded", "turn_key", a.Key,
			"message_id", rep.AssistantMessage.ID, "error", err)
	}
	return nil
}

// streamer opens a streamed reply when the Replier can stream and the turn
// still needs the model; otherwise it returns nil.
func (w *TurnWorker) streamer(ctx context.Context, rp Replier, t Turn) (func(string), error) {
	sr, ok := rp.(StreamingReplier)
	if !ok {
		return nil, nil
	}
	if t.Key != "" {
		_, stored, err := storedReply(ctx, w.engine.cfg.DB, t.Key)
		if err != nil {
			return nil, fmt.Errorf("turn %s: %w", t.Key, err)
		}
		if stored {
			return nil, nil // replayed, not streamed: the answer may be out already
		}
	}
	onDelta, err := sr.Stream(ctx, t)
	if err != nil {
		// Streaming is a nicety: answer in one piece instead.
		w.log.WarnContext(ctx, "open streamed reply", "turn_key", t.Key, "error", err)
		return nil, nil
	}
	return onDelta, nil
}

// userFacing reports whether err is an answer for the user rather than a
// fault to retry: bad input, a spent budget, an unpriced model under a
// budget, a model that stayed down after the adapter's own retries, a
// conversation that is gone.
func userFacing(err error) bool {
	var me *ModelError
	var be *usage.BudgetExceededError
	var ue *usage.UnpricedModelError
	var tl *conversations.TooLargeError
	var ve *conversations.ValidationError
	return errors.As(err, &me) || errors.As(err, &be) || errors.As(err, &ue) || errors.As(err, &tl) || errors.As(err, &ve) ||
		errors.Is(err, conversations.ErrNotFound)
}
