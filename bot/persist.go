package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
)

// storing is a turn whose answer is ready to be stored.
type storing struct {
	t       Turn
	conv    conversations.Conversation
	newConv *conversations.NewConversation // created with the turn, when it starts one
	text    string                         // the user's message as stored
	// question is the redacted text the model was asked, for the gap report.
	question string
	a        answer
	// answered is true when the runbooks answered the question (no gap,
	// no low-confidence citations).
	answered bool
	adm      *usage.Admission // nil: no budget applies (or the answer was paid for by an earlier attempt)
	claim    *turnClaim       // nil for a turn without a key
	outcome  *string          // for the metrics
	// settled is set once the admission is settled with a ledger row; until
	// then Respond cancels it when the turn ends.
	settled bool
}

// storeTurn stores the user message, the assistant message, the ledger row
// (or, for an answer kept from an earlier attempt, turns that attempt's
// unstored row into the stored one) and the budget settlement in one
// transaction, together with the conversation when the turn starts one. A
// paid answer that cannot be stored is kept on the turn's claim for its
// retry and put on the ledger as unstored (kept.go), or, for a turn without
// a key, recorded as unstored.
func (e *Engine) storeTurn(ctx context.Context, st *storing) (Reply, error) {
	t, a := st.t, st.a
	lowConfidence := !st.answered && len(a.citations) > 0
	meta, err := json.Marshal(messageMeta{Model: a.usage.Model, FinishReason: a.finishReason, LatencyMS: a.latency.Milliseconds(),
		Estimated: a.usage.Estimated, PriceVersion: a.usage.PriceVersion, CachedTokens: a.usage.CachedTokens, Citations: a.citations,
		Unanswered: !st.answered, LowConfidence: lowConfidence})
	if err != nil {
		return Reply{}, fmt.Errorf("encode message metadata: %w", err)
	}
	reply := Reply{Text: a.text, Citations: a.citations, Usage: a.usage, LowConfidence: lowConfidence}
	if st.adm != nil {
		reply.Notice = st.adm.Warning
	}
	if lowConfidence && e.cfg.LLM != nil {
		reply.Notice = strings.TrimSpace(ClosestSectionsNotice + " " + reply.Notice)
	}
	// The ids are made here, so that the batch's later statements can name
	// the rows of its earlier ones.
	conv := st.conv
	if st.newConv != nil {
		conv.ID = uuid.New()
	}
	mine := uuid.New() // the assistant message
	b, err := e.turnBatch(st, conv.ID, mine, meta, &conv, &reply)
	if err == nil {
		err = e.cfg.DB.SendBatch(ctx, b).Close()
	}
	if err != nil {
		return e.storeFailed(ctx, st, mine, conv.ID, err)
	}
	if st.claim != nil {
		st.claim.stored = true
	}
	st.settled = true
	*st.outcome = "answered"
	if a.eventID == 0 {
		e.cfg.Metrics.usage(a.usage) // a kept answer was counted when it was kept
	}
	if e.cfg.Retriever != nil && !st.answered {
		if err := e.cfg.Retriever.RecordGap(ctx, st.question, t.UserID, conv.ID); err != nil {
			e.cfg.Metrics.error("retrieval")
			e.log.WarnContext(ctx, "record runbook gap", "conversation_id", conv.ID, "error", err)
		}
	}
	return reply, nil
}

// turnBatch queues the statements that store a turn in one round trip: a
// batch runs as one implicit transaction, so the turn is stored whole or not
// at all. convID is the conversation's id (made beforehand when the turn
// starts it), mine the assistant message's; the rows written are read into
// conv and reply.
func (e *Engine) turnBatch(st *storing, convID, mine uuid.UUID, meta json.RawMessage, conv *conversations.Conversation,
	reply *Reply) (*pgx.Batch, error) {
	t, a := st.t, st.a
	b := &pgx.Batch{}
	if st.newConv != nil {
		nc := *st.newConv
		nc.ID = convID
		if err := conversations.QueueCreate(b, nc, conv); err != nil {
			return nil, err
		}
	}
	if err := conversations.QueueAppendMessage(b, conversations.NewMessage{ID: uuid.New(), TurnKey: t.Key,
		ConversationID: convID, AuthorID: &t.UserID, Role: conversations.RoleUser, Content: st.text}, &reply.UserMessage); err != nil {
		return nil, err
	}
	if err := conversations.QueueAppendMessage(b, conversations.NewMessage{ID: mine, TurnKey: t.Key,
		ConversationID: convID, Role: conversations.RoleAssistant, Content: a.text, Metadata: meta,
		PromptTokens: a.usage.PromptTokens, CompletionTokens: a.usage.CompletionTokens,
		TotalTokens: a.usage.TotalTokens, CostMicroUSD: a.usage.CostMicroUSD}, &reply.AssistantMessage); err != nil {
		return nil, err
	}
	if a.eventID != 0 {
		usage.QueueMarkStored(b, a.eventID, convID, mine)
	} else if err := usage.QueueRecord(b, a.event(t, convID, mine, usage.OutcomeStored, e.now())); err != nil {
		return nil, err
	}
	if st.adm != nil {
		e.cfg.Budget.QueueSettle(b, *st.adm)
	}
	if st.claim != nil {
		st.claim.queueStoreClaim(b)
	}
	return b, nil
}

// storeFailed handles a turn whose storing transaction failed with err;
// mine is the id of the assistant message that transaction wrote (if it
// committed after all, its COMMIT unanswered). The paid answer is kept for the retry (or recorded as
// unstored, or as a duplicate when the same turn was stored meanwhile), and
// a turn stored by someone else is answered with what they stored.
func (e *Engine) storeFailed(ctx context.Context, st *storing, mine uuid.UUID, convID uuid.UUID, err error) (Reply, error) {
	duplicate := errors.Is(err, conversations.ErrTurnStored)
	fresh := st.a.paid && st.a.eventID == 0 // a kept answer is on the ledger already, and stays on the claim
	switch {
	case !fresh:
	case !duplicate && st.claim != nil:
		switch e.keepAnswer(ctx, st.claim, st.t, st.a, st.answered, st.adm) {
		case keptDone:
			st.settled = true
		case keptLost:
			// The claim is gone: the transaction committed after all (its
			// COMMIT went unanswered), or a holder whose lease this one
			// outlived stored the turn.
			r, ok, lerr := storedReply(ctx, e.cfg.DB, st.t.Key)
			if lerr == nil && ok && r.AssistantMessage.ID == mine {
				st.claim.stored, st.settled = true, true
				*st.outcome = "answered"
				e.cfg.Metrics.usage(st.a.usage)
				r.Replayed = false
				return r, nil
			}
			duplicate = lerr == nil && ok
			st.settled = e.recordUnstored(ctx, st.t, st.a, unstoredOutcome(duplicate), st.adm)
		}
	default:
		st.settled = e.recordUnstored(ctx, st.t, st.a, unstoredOutcome(duplicate), st.adm)
	}
	if duplicate {
		// The same turn was stored concurrently (a holder whose claim
		// lapsed raced this one): answer with what was stored.
		r, ok, lerr := storedReply(ctx, e.cfg.DB, st.t.Key)
		if lerr == nil && ok {
			*st.outcome = "replayed"
			return r, nil
		}
	}
	e.cfg.Metrics.error("store")
	return Reply{}, fmt.Errorf("store turn in conversation %s: %w", convID, err)
}

// unstoredOutcome is the ledger outcome of a paid answer that was not
// stored: a duplicate when the same turn was stored by another delivery.
func unstoredOutcome(duplicate bool) string {
	if duplicate {
		return usage.OutcomeDuplicate
	}
	return usage.OutcomeUnstored
}

// unstoredTimeout bounds recording a paid call whose turn was not stored;
// it runs even when the turn's context is done.
const unstoredTimeout = 5 * time.Second

// recordUnstored puts a paid model call whose turn is not stored on the
// ledger by itself, in its own transaction with the budget's settlement
// (adm, nil when no budget applies), and reports whether it did: the
// provider bills the call either way, so the ledger, the summaries and the
// budgets must count it. A failure is logged with the figures, for
// reconciliation by hand.
func (e *Engine) recordUnstored(ctx context.Context, t Turn, a answer, outcome string, adm *usage.Admission) bool {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unstoredTimeout)
	defer cancel()
	// Not idempotent: a COMMIT that went unanswered is not tried again,
	// lest the call be recorded twice.
	err := e.retryTx(wctx, false, func(tx pgx.Tx) error {
		if err := usage.Record(wctx, tx, a.event(t, uuid.Nil, uuid.Nil, outcome, e.now())); err != nil {
			return err
		}
		if adm != nil {
			if err := e.cfg.Budget.Settle(wctx, tx, *adm); err != nil {
				return fmt.Errorf("settle budget: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		e.cfg.Metrics.error("store")
		e.log.ErrorContext(ctx, "paid model call not recorded", "user_id", t.UserID, "outcome", outcome,
			"model", a.usage.Model, "prompt_tokens", a.usage.PromptTokens, "completion_tokens", a.usage.CompletionTokens,
			"cost_micro_usd", a.usage.CostMicroUSD, "error", err)
		return false
	}
	e.cfg.Metrics.usage(a.usage)
	e.log.WarnContext(ctx, "paid model call recorded without its turn", "user_id", t.UserID, "outcome", outcome,
		"model", a.usage.Model, "cost_micro_usd", a.usage.CostMicroUSD)
	return true
}

// Writes that must not be lost to a cut connection (a paid call's ledger
// row, a kept answer) are tried again on another connection: up to txTries
// times, txRetryWait apart. The wait is longer than the second a pooled
// connection may sit idle before the pool checks it (pgxpool pings those
// idle over 1 s before handing them out), so that when the server has cut
// every connection, the dead ones are dropped rather than tried in turn.
const (
	txTries     = 4
	txRetryWait = 1100 * time.Millisecond
)

// retryTx runs fn in a transaction until it commits, trying again when it
// failed for the connection's sake (transient) before its COMMIT was sent.
// A COMMIT that went unanswered may have committed: it is tried again only
// when fn is idempotent (it finds its own earlier work and does nothing).
func (e *Engine) retryTx(ctx context.Context, idempotent bool, fn func(tx pgx.Tx) error) error {
	for try := 1; ; try++ {
		unknown, err := runTx(ctx, e.cfg.DB, fn)
		if err == nil {
			return nil
		}
		if (unknown && !idempotent) || !transient(err) || try == txTries {
			return err
		}
		e.log.InfoContext(ctx, "database write failed; trying again on another connection", "try", try, "error", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(txRetryWait):
		}
	}
}

// runTx runs fn in one transaction. commitUnknown is true when the COMMIT
// itself failed without an answer from the server, so the transaction may
// or may not have committed.
func runTx(ctx context.Context, db DB, fn func(tx pgx.Tx) error) (commitUnknown bool, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx) // a cut connection has nothing to roll back
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		var pe *pgconn.PgError
		answered := errors.As(err, &pe) || errors.Is(err, pgx.ErrTxCommitRollback)
		return !answered, fmt.Errorf("commit: %w", err)
	}
	return false, nil
}

// transient reports whether err is the connection's fault rather than the
// statement's: the connection was cut or refused, or the server ended the
// session (pg_terminate_backend, a restart, a failover). Another connection
// may succeed where this one failed.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57: operator intervention (admin or
		// crash shutdown, cannot connect now).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57")
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &ne) || errors.As(err, &ce) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
