package bot

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
)

// postedMarker is recorded as the platform message id when a Replier posts
// without returning one, so the reply still counts as posted.
const postedMarker = "posted"

// CommandRunner runs a command of the shared set for a chat turn;
// *commands.Set satisfies it.
type CommandRunner interface {
	RunFor(ctx context.Context, userID uuid.UUID, c commands.Caller, text string) (commands.Result, error)
}

// TurnWorker runs turn jobs: the engine answers (or replays the stored
// answer), then the platform's Replier posts it unless it is already posted.
// A command job runs the command set instead and posts its result.
type TurnWorker struct {
	river.WorkerDefaults[TurnArgs]
	engine   *Engine
	commands CommandRunner
	repliers map[string]Replier
	log      *slog.Logger
}

// NewTurnWorker builds the worker. repliers maps a platform ("slack",
// "teams") to the Replier that posts there; they are all known when the
// worker is built (the map is copied). cmds may be nil when no surface
// sends commands. Register the worker with river.AddWorker(workers, w).
func NewTurnWorker(e *Engine, cmds CommandRunner, repliers map[string]Replier, log *slog.Logger) *TurnWorker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TurnWorker{engine: e, commands: cmds, repliers: maps.Clone(repliers), log: log}
}

// TurnTimeout is how long a turn may take given the model's deadline
// (Config.CallTimeout): that deadline plus a minute to store the answer and
// post it (waiting out a platform's rate limits).
func TurnTimeout(callTimeout time.Duration) time.Duration { return callTimeout + time.Minute }

// Timeout gives a turn the model's deadline plus time to store and post.
func (w *TurnWorker) Timeout(*river.Job[TurnArgs]) time.Duration {
	return TurnTimeout(w.engine.cfg.CallTimeout)
}

// Work answers one turn; see TurnWorker.
func (w *TurnWorker) Work(ctx context.Context, job *river.Job[TurnArgs]) error {
	a := job.Args
	t := a.Turn()
	rp := w.repliers[a.Platform]
	if rp == nil {
		// Another replica may serve the platform (a rolling change of
		// configuration): retry with backoff rather than drop the turn.
		return fmt.Errorf("turn %s: no replier for platform %q on this replica", a.Key, a.Platform)
	}
	if a.Command {
		return w.runCommand(ctx, job, rp)
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
		return w.fail(ctx, job, rp, err)
	}
	// One poster per reply, even when the job runs twice at once: an
	// earlier attempt (or a concurrent run) that posted it, or is posting
	// it, has its mark on the message.
	store := conversations.NewStore(w.engine.cfg.DB)
	switch claim, err := store.ClaimPost(ctx, rep.AssistantMessage.ID, w.Timeout(job)); {
	case err != nil:
		return fmt.Errorf("turn %s: %w", a.Key, err)
	case claim == conversations.PostDone:
		return nil
	case claim == conversations.PostBusy:
		// Another run is posting it, or died doing so: try again once its
		// mark has expired, unless it was posted meanwhile.
		return fmt.Errorf("turn %s: reply %s is being posted by another run", a.Key, rep.AssistantMessage.ID)
	}
	rep.Attempt = job.Attempt
	pmid, err := rp.Reply(ctx, t, rep)
	if err != nil {
		w.engine.cfg.Metrics.error("reply")
		if rerr := store.ReleasePost(context.WithoutCancel(ctx), rep.AssistantMessage.ID); rerr != nil {
			// The mark expires after the job's timeout; the retry waits for it.
			w.log.WarnContext(ctx, "release post mark", "turn_key", a.Key, "error", rerr)
		}
		return fmt.Errorf("turn %s: post reply: %w", a.Key, err)
	}
	if pmid == "" {
		pmid = postedMarker
	}
	if err := store.SetPlatformMessageID(ctx, rep.AssistantMessage.ID, pmid); err != nil {
		// The reply is out; a retry would post it again. Log loudly and
		// finish the job rather than risk a duplicate.
		w.log.ErrorContext(ctx, "reply posted but its platform id not recorded", "turn_key", a.Key,
			"message_id", rep.AssistantMessage.ID, "error", err)
	}
	return nil
}

// fail ends a turn that failed with err: a fault worth retrying goes back
// to River while attempts remain; otherwise the person is told, rather than
// left in silence, and the job ends (cancelled when the fault was ours, so
// it shows as failed).
func (w *TurnWorker) fail(ctx context.Context, job *river.Job[TurnArgs], rp Replier, err error) error {
	a := job.Args
	f := Classify(err)
	if !f.Final && job.Attempt < job.MaxAttempts {
		return fmt.Errorf("turn %s attempt %d: %w", a.Key, job.Attempt, err)
	}
	if _, perr := rp.Reply(ctx, a.Turn(), Reply{Text: f.Message, Attempt: job.Attempt}); perr != nil {
		w.engine.cfg.Metrics.error("reply")
		return fmt.Errorf("turn %s: post failure notice: %w (turn error: %v)", a.Key, perr, err)
	}
	w.log.InfoContext(ctx, "turn failed; user told", "platform", a.Platform, "turn_key", a.Key, "error", err)
	if f.Final {
		return nil
	}
	return river.JobCancel(err)
}

// runCommand runs a command job and posts its result. Commands are quick
// database work; a failure is retried like a turn's.
func (w *TurnWorker) runCommand(ctx context.Context, job *river.Job[TurnArgs], rp Replier) error {
	a := job.Args
	if w.commands == nil {
		return river.JobCancel(fmt.Errorf("turn %s: a command, but this worker has no command set", a.Key))
	}
	c := commands.Caller{Source: a.Source, Thread: a.Thread, Private: a.Private, Key: a.Key}
	if a.Thread != nil {
		ch := a.Thread.InChannel()
		c.Channel = &ch
	}
	res, err := w.commands.RunFor(ctx, a.UserID, c, a.Text)
	if err != nil {
		return w.fail(ctx, job, rp, err)
	}
	if _, err := rp.Reply(ctx, a.Turn(), Reply{Text: res.Text, Command: &res, Attempt: job.Attempt}); err != nil {
		w.engine.cfg.Metrics.error("reply")
		return fmt.Errorf("turn %s: post command result: %w", a.Key, err)
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
