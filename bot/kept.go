package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/usage"
)

// Kept answers. When the model has answered a keyed turn but the
// transaction that stores it fails (a connection cut mid-turn, a shutdown
// cancelling the job), the answer is kept on the turn's claim, in one
// transaction with its ledger row (outcome unstored) and the budget's
// settlement. The retry of the turn (River's next attempt, an HTTP retry
// with the same Idempotency-Key, a waiter on the claim) takes the claim with
// the answer and stores it without asking the model or the budget again,
// turning that ledger row into the stored one. So the call is paid once and
// on the ledger once — as unstored if no retry ever comes, as stored when
// one does.

// keptAnswer is an answer kept on its turn's claim: everything storing it
// needs, as JSON in turn_claims.answer.
type keptAnswer struct {
	Text         string     `json:"text"`
	FinishReason string     `json:"finish_reason"`
	Citations    []Citation `json:"citations"`
	Usage        Usage      `json:"usage"`
	LatencyMS    int64      `json:"latency_ms"`
	Unpriced     bool       `json:"unpriced"`
	// Answered is true when the runbooks answered the question.
	Answered bool `json:"answered"`
	// eventID is the call's ledger row (turn_claims.usage_event_id).
	eventID int64
}

// readKept reads a kept answer and the id of its ledger row.
func readKept(b []byte, eventID int64) (*keptAnswer, error) {
	var k keptAnswer
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("read kept answer: %w", err)
	}
	k.eventID = eventID
	return &k, nil
}

// answer is the kept answer as the engine stores it.
func (k *keptAnswer) answer() answer {
	return answer{text: k.Text, finishReason: k.FinishReason, citations: k.Citations, usage: k.Usage,
		latency: time.Duration(k.LatencyMS) * time.Millisecond, paid: true, unpriced: k.Unpriced, eventID: k.eventID}
}

// keepResult is what keepAnswer did.
type keepResult int

const (
	// keptNot: the database could not be reached; the call is logged with
	// its figures, for reconciliation by hand.
	keptNot keepResult = iota
	// keptDone: the answer is on the claim, its call on the ledger.
	keptDone
	// keptLost: the claim is no longer this holder's; nothing was written.
	keptLost
)

// keepAnswer keeps a paid answer whose turn could not be stored on the
// turn's claim c, with its ledger row (outcome unstored) and the budget's
// settlement (adm, nil when no budget applies), in one transaction. It
// runs even when ctx is done, and is tried again on another connection
// when the one it had was cut: the transaction finds its own earlier
// commit, so it never records the call twice.
func (e *Engine) keepAnswer(ctx context.Context, c *turnClaim, t Turn, a answer, answered bool, adm *usage.Admission) keepResult {
	k := keptAnswer{Text: a.text, FinishReason: a.finishReason, Citations: a.citations, Usage: a.usage,
		LatencyMS: a.latency.Milliseconds(), Unpriced: a.unpriced, Answered: answered}
	body, err := json.Marshal(k)
	if err != nil {
		e.log.ErrorContext(ctx, "encode kept answer", "turn_key", c.key, "error", err)
		return keptNot
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unstoredTimeout)
	defer cancel()
	lost := false
	var recorded int64 // the ledger row of the latest try, known before its COMMIT
	err = e.retryTx(wctx, true, func(tx pgx.Tx) error {
		var mine bool
		var kept *int64
		err := tx.QueryRow(wctx, `SELECT holder = $2, usage_event_id FROM turn_claims WHERE turn_key = $1 FOR UPDATE`,
			c.key, c.holder).Scan(&mine, &kept)
		if lost = errors.Is(err, pgx.ErrNoRows) || (err == nil && !mine); lost {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read claim of turn %q: %w", c.key, err)
		}
		if kept != nil && *kept == recorded {
			// An earlier try committed though its COMMIT went unanswered.
			// (Another answer there is one this holder could not read when
			// it took the claim: it is replaced, its call stays on the
			// ledger.)
			k.eventID = *kept
			return nil
		}
		id, err := usage.RecordID(wctx, tx, a.event(t, uuid.Nil, uuid.Nil, usage.OutcomeUnstored, e.now()))
		if err != nil {
			return err
		}
		recorded = id
		if _, err := tx.Exec(wctx, `UPDATE turn_claims SET answer = $3, usage_event_id = $4, expires_at = now()
			WHERE turn_key = $1 AND holder = $2`, c.key, c.holder, body, id); err != nil {
			return fmt.Errorf("keep answer of turn %q: %w", c.key, err)
		}
		if adm != nil {
			if err := e.cfg.Budget.Settle(wctx, tx, *adm); err != nil {
				return fmt.Errorf("settle budget: %w", err)
			}
		}
		k.eventID = id
		return nil
	})
	switch {
	case err != nil:
		e.cfg.Metrics.error("store")
		e.log.ErrorContext(ctx, "paid model call not recorded", "user_id", t.UserID, "turn_key", c.key,
			"model", a.usage.Model, "prompt_tokens", a.usage.PromptTokens, "completion_tokens", a.usage.CompletionTokens,
			"cost_micro_usd", a.usage.CostMicroUSD, "error", err)
		return keptNot
	case lost:
		return keptLost
	}
	c.answer = &k
	e.cfg.Metrics.usage(a.usage)
	e.log.WarnContext(ctx, "turn not stored; its paid answer is kept for the retry", "user_id", t.UserID, "turn_key", c.key,
		"model", a.usage.Model, "cost_micro_usd", a.usage.CostMicroUSD)
	return keptDone
}
