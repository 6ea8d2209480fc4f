package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// One model call per turn key, across goroutines and processes (River
// workers, HTTP replicas). Before it calls the model, a keyed turn claims
// its key in turn_claims; every other caller with that key waits and then
// replays the stored reply. Nobody holds a database connection while
// waiting or while the model answers: a claim is a row with a lease, and
// the wait is in-process — woken at once when the holder is in the same
// process, else polling with a backoff of a few short reads.
//
// A holder whose model answered but whose turn could not be stored keeps
// the answer on the claim (kept.go) and releases it: whoever takes the
// claim next stores that answer instead of calling the model again.
//
// The lease is renewed while the holder works, so a crashed holder's claim
// lapses within one lease and is taken over. The transaction that stores
// the turn deletes the claim. A holder whose model call fails marks the
// claim failed; the callers that waited on it answer with the same error
// rather than pay for the same failing call again, while a later retry of
// the turn claims it afresh. A holder that fails otherwise (a refusal, a
// database error, its caller gone) releases the claim, and a waiter takes
// it over and runs the turn itself.

// Claim timing.
const (
	// DefaultClaimLease is how long a claim stands without renewal.
	DefaultClaimLease = 30 * time.Second
	claimPollMin      = 10 * time.Millisecond
	claimPollMax      = 500 * time.Millisecond
	// claimWriteTimeout bounds the writes that end a claim, which run even
	// when the turn's context is done.
	claimWriteTimeout = 5 * time.Second
	// claimRetention is how long lapsed claims are kept before a release
	// sweeps them away.
	claimRetention = time.Hour
)

// turnClaim is a held claim on a turn key.
type turnClaim struct {
	key    string
	holder uuid.UUID
	woke   chan struct{} // closed when the claim ends: wakes this process's waiters
	stored bool          // the turn was stored and the claim deleted with it
	// answer is the answer kept on the claim, by an earlier holder (found
	// when the claim was taken) or by this one (its store failed); nil when
	// there is none. A claim with an answer is released, never deleted,
	// until its turn is stored.
	answer *keptAnswer
}

// claimOrReplay returns the stored reply of key (c is nil), or a claim that
// lets the caller call the model, waiting while another caller holds it.
// The error is the model's when the holder it waited for failed.
//
// The claim comes first and the look for a stored reply second: a turn is
// seldom stored already (a retry), and the look must follow the claim
// anyway, since the turn may have been stored, and its claim deleted, just
// before the claim was taken.
func (e *Engine) claimOrReplay(ctx context.Context, key string) (r Reply, c *turnClaim, err error) {
	holder := uuid.New()
	poll := claimPollMin
	waiting := false
	for {
		held, kept, err := e.tryClaim(ctx, key, holder, !waiting)
		if err != nil {
			return Reply{}, nil, err
		}
		if held {
			c := e.hold(key, holder)
			c.answer = kept
			r, ok, err := storedReply(ctx, e.cfg.DB, key)
			if err != nil || ok {
				if ok {
					c.answer = nil // nothing left to keep: the claim goes
				}
				e.endClaim(ctx, c, err)
				return r, nil, err
			}
			return Reply{}, c, nil
		}
		if !waiting {
			waiting = true
			if e.waiting != nil {
				e.waiting(key)
			}
		}
		if err := e.waitClaim(ctx, key, poll); err != nil {
			return Reply{}, nil, fmt.Errorf("wait for turn %q: %w", key, err)
		}
		poll = min(2*poll, claimPollMax)
		r, ok, err := storedReply(ctx, e.cfg.DB, key)
		if err != nil || ok {
			return r, nil, err
		}
		if me, err := claimFailure(ctx, e.cfg.DB, key); err != nil || me != nil {
			if err != nil {
				return Reply{}, nil, err
			}
			return Reply{}, nil, me
		}
	}
}

// tryClaim takes the claim on key for holder when nobody holds it, its
// lease has lapsed, or (takeFailed) its holder failed. kept is the answer
// an earlier holder kept on the claim, nil when there is none.
func (e *Engine) tryClaim(ctx context.Context, key string, holder uuid.UUID, takeFailed bool) (held bool, kept *keptAnswer, err error) {
	var answer []byte
	var eventID *int64
	err = e.cfg.DB.QueryRow(ctx, `
		INSERT INTO turn_claims AS c (turn_key, holder, expires_at)
		VALUES ($1, $2, now() + $3::float8 * interval '1 second')
		ON CONFLICT (turn_key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			failure = NULL, failure_status = 0
		WHERE c.expires_at <= now() AND (c.failure IS NULL OR $4)
		RETURNING answer, usage_event_id`,
		key, holder, e.cfg.ClaimLease.Seconds(), takeFailed).Scan(&answer, &eventID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("claim turn %q: %w", key, err)
	}
	if answer == nil || eventID == nil {
		return true, nil, nil
	}
	k, err := readKept(answer, *eventID)
	if err != nil {
		// Unreadable (written by another version): the turn is answered
		// afresh, and the kept call stays on the ledger as unstored.
		e.log.WarnContext(ctx, "kept answer unreadable; asking the model again", "turn_key", key, "error", err)
		return true, nil, nil
	}
	return true, k, nil
}

// claimFailure is the model error a failed holder left on key's claim; nil
// when there is none.
func claimFailure(ctx context.Context, db DB, key string) (*ModelError, error) {
	var kind *string
	var status int
	err := db.QueryRow(ctx, `SELECT failure, failure_status FROM turn_claims WHERE turn_key = $1`, key).Scan(&kind, &status)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && kind == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read claim of turn %q: %w", key, err)
	}
	return &ModelError{Kind: *kind, Status: status, Err: errors.New("another request for the same turn failed")}, nil
}

// hold lets this process's waiters know where to wait for a claim just
// taken, and has its lease renewed with the others this process holds.
func (e *Engine) hold(key string, holder uuid.UUID) *turnClaim {
	c := &turnClaim{key: key, holder: holder, woke: make(chan struct{})}
	e.claimsMu.Lock()
	defer e.claimsMu.Unlock()
	e.claims[key] = c
	if !e.renewing {
		e.renewing = true
		go e.renewClaims()
	}
	return c
}

// renewClaims renews the leases of every claim this process holds, in one
// statement every third of a lease, until it holds none. One goroutine and
// one statement serve them all: a replica with a thousand turns waiting on
// a slow model held a thousand goroutines and sent a hundred renewals a
// second when each claim renewed itself. A claim that has ended is not
// renewed: its row is gone, or its release set expires_at to the time of
// its release, which the renewal's condition leaves alone.
func (e *Engine) renewClaims() {
	t := time.NewTicker(max(e.cfg.ClaimLease/3, time.Millisecond))
	defer t.Stop()
	for range t.C {
		e.claimsMu.Lock()
		if len(e.claims) == 0 {
			e.renewing = false
			e.claimsMu.Unlock()
			return
		}
		keys := make([]string, 0, len(e.claims))
		holders := make([]uuid.UUID, 0, len(e.claims))
		for k, c := range e.claims {
			keys, holders = append(keys, k), append(holders, c.holder)
		}
		e.claimsMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), claimWriteTimeout)
		_, err := e.cfg.DB.Exec(ctx, `UPDATE turn_claims c SET expires_at = now() + $3::float8 * interval '1 second'
			FROM unnest($1::text[], $2::uuid[]) AS h(turn_key, holder)
			WHERE c.turn_key = h.turn_key AND c.holder = h.holder AND c.expires_at > now()`,
			keys, holders, e.cfg.ClaimLease.Seconds())
		cancel()
		if err != nil {
			e.log.Warn("renew turn claims", "claims", len(keys), "error", err)
		}
	}
}

// waitClaim waits up to poll, or until this process's holder of key ends.
func (e *Engine) waitClaim(ctx context.Context, key string, poll time.Duration) error {
	e.claimsMu.Lock()
	c := e.claims[key]
	e.claimsMu.Unlock()
	var woke <-chan struct{}
	if c != nil {
		woke = c.woke
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The caller's deadline ran out while another request of the
			// same turn was still with the model: a timeout, as that
			// request's would be, not a fault of ours.
			return &ModelError{Kind: ModelTimeout, Err: fmt.Errorf("waiting for another request of turn %q: %w", key, ctx.Err())}
		}
		return ctx.Err()
	case <-woke:
	case <-t.C:
	}
	return nil
}

// queueStoreClaim deletes the claim in the batch that stores its turn, so
// waiters see either the claim or the stored reply.
func (c *turnClaim) queueStoreClaim(b *pgx.Batch) {
	b.Queue(`DELETE FROM turn_claims WHERE turn_key = $1 AND holder = $2`, c.key, c.holder)
}

// endClaim ends a held claim once its turn is over: nothing more to do when
// the turn was stored; released with its answer when one is kept on it;
// marked failed when the model failed (turnErr is a *ModelError); released
// otherwise. Then this process's waiters wake.
func (e *Engine) endClaim(ctx context.Context, c *turnClaim, turnErr error) {
	if !c.stored {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWriteTimeout)
		defer cancel()
		var me *ModelError
		var err error
		switch {
		case c.answer != nil:
			// Released now that the renewal has stopped, so the retry
			// takes it (and the answer) at once.
			_, err = e.cfg.DB.Exec(wctx, `UPDATE turn_claims SET expires_at = now() WHERE turn_key = $1 AND holder = $2`,
				c.key, c.holder)
		case errors.As(turnErr, &me):
			_, err = e.cfg.DB.Exec(wctx, `UPDATE turn_claims SET failure = $3, failure_status = $4, expires_at = now()
				WHERE turn_key = $1 AND holder = $2`, c.key, c.holder, me.Kind, me.Status)
		default:
			_, err = e.cfg.DB.Exec(wctx, `DELETE FROM turn_claims WHERE turn_key = $1 AND holder = $2`, c.key, c.holder)
		}
		if err == nil {
			_, err = e.cfg.DB.Exec(wctx, `DELETE FROM turn_claims WHERE expires_at < now() - $1::float8 * interval '1 second'`,
				claimRetention.Seconds())
		}
		if err != nil {
			// Waiters take the claim over when its lease lapses.
			e.log.WarnContext(ctx, "release turn claim", "turn_key", c.key, "error", err)
		}
	}
	e.claimsMu.Lock()
	if e.claims[c.key] == c {
		delete(e.claims, c.key)
	}
	e.claimsMu.Unlock()
	close(c.woke)
}
