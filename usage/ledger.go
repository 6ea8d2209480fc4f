package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Ledger outcomes: what became of the turn a model call was paid for.
const (
	// OutcomeStored: the turn's messages were stored with the row.
	OutcomeStored = "stored"
	// OutcomeInterrupted: the call was cut off before the answer was
	// complete (the caller left, a deadline, a dropped stream); the tokens
	// are estimated from what had arrived.
	OutcomeInterrupted = "interrupted"
	// OutcomeUnstored: the model answered but storing the turn failed.
	OutcomeUnstored = "unstored"
	// OutcomeDuplicate: the model answered but another delivery of the same
	// turn had been stored first.
	OutcomeDuplicate = "duplicate"
)

// Event is one row of the usage ledger: one model call (or one turn answered
// without a model, with model "none").
type Event struct {
	UserID           uuid.UUID
	ConversationID   uuid.UUID // uuid.Nil when the call belongs to no conversation
	MessageID        uuid.UUID // the assistant message it paid for; uuid.Nil when none
	Source           string    // "api", "slack", "teams", "console"
	Model            string
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
	CostMicroUSD     int64
	PriceVersion     string
	// Estimated is true when the provider sent no usage and the tokens were
	// counted locally.
	Estimated bool
	// Outcome is one of the Outcome constants; empty means OutcomeStored.
	// Any other outcome belongs to no conversation and no message.
	Outcome string
	// Unpriced is true when the model was missing from the price table, so
	// CostMicroUSD is 0 for want of a price, not because the call was free.
	Unpriced   bool
	OccurredAt time.Time // zero means the database's now()
}

func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// Record appends an event to the ledger. Pass the transaction that stores
// the messages it pays for, so that both exist or neither does; a paid call
// whose turn could not be stored is recorded on its own, with its outcome.
func Record(ctx context.Context, db DBTX, e Event) error {
	_, err := RecordID(ctx, db, e)
	return err
}

// RecordID is Record that returns the new row's id: an unstored call whose
// answer is kept for a retry is later turned into the stored row
// (MarkStored) rather than recorded twice.
func RecordID(ctx context.Context, db DBTX, e Event) (int64, error) {
	sql, args, err := recordStatement(e)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := db.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("record usage for user %s: %w", e.UserID, err)
	}
	return id, nil
}

// QueueRecord is Record queued on b, for a caller that writes a turn in one
// round trip (a batch runs as one implicit transaction).
func QueueRecord(b *pgx.Batch, e Event) error {
	sql, args, err := recordStatement(e)
	if err != nil {
		return err
	}
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		var id int64
		if err := row.Scan(&id); err != nil {
			return fmt.Errorf("record usage for user %s: %w", e.UserID, err)
		}
		return nil
	})
	return nil
}

// recordStatement checks e and returns the statement that records it.
func recordStatement(e Event) (string, []any, error) {
	if e.UserID == uuid.Nil {
		return "", nil, fmt.Errorf("record usage: user is required")
	}
	if e.Model == "" {
		return "", nil, fmt.Errorf("record usage: model is required")
	}
	outcome := e.Outcome
	switch outcome {
	case "":
		outcome = OutcomeStored
	case OutcomeStored:
	case OutcomeInterrupted, OutcomeUnstored, OutcomeDuplicate:
		if e.ConversationID != uuid.Nil || e.MessageID != uuid.Nil {
			return "", nil, fmt.Errorf("record usage: a %s call belongs to no conversation or message", outcome)
		}
	default:
		return "", nil, fmt.Errorf("record usage: unknown outcome %q", outcome)
	}
	var at *time.Time
	if !e.OccurredAt.IsZero() {
		at = &e.OccurredAt
	}
	return `
		INSERT INTO usage_events (user_id, conversation_id, message_id, source, model,
			prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd, price_version, estimated, occurred_at,
			outcome, priced)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now()), $13, $14)
		RETURNING id`, []any{e.UserID, nullUUID(e.ConversationID), nullUUID(e.MessageID), e.Source, e.Model,
			e.PromptTokens, e.CompletionTokens, e.CachedTokens, e.CostMicroUSD, e.PriceVersion, e.Estimated, at,
			outcome, !e.Unpriced}, nil
}

// MarkStored makes the unstored row id (a paid call whose turn failed to
// store) the stored row of the turn that now stores its answer, in that
// turn's transaction: the call stays on the ledger once, with the figures,
// time and budget settlement it was recorded with. A row that is not an
// unstored call (any more) is an error, so that the transaction fails rather
// than store a turn without its ledger row.
func MarkStored(ctx context.Context, db DBTX, id int64, conversationID, messageID uuid.UUID) error {
	tag, err := db.Exec(ctx, markStoredSQL, id, OutcomeStored, nullUUID(conversationID), nullUUID(messageID), OutcomeUnstored)
	return markStoredResult(id, tag, err)
}

// QueueMarkStored is MarkStored queued on b (see QueueRecord).
func QueueMarkStored(b *pgx.Batch, id int64, conversationID, messageID uuid.UUID) {
	b.Queue(markStoredSQL, id, OutcomeStored, nullUUID(conversationID), nullUUID(messageID), OutcomeUnstored).
		Exec(func(tag pgconn.CommandTag) error { return markStoredResult(id, tag, nil) })
}

const markStoredSQL = `UPDATE usage_events SET outcome = $2, conversation_id = $3, message_id = $4
	WHERE id = $1 AND outcome = $5`

func markStoredResult(id int64, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("mark usage row %d stored: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("mark usage row %d stored: it is not an unstored call", id)
	}
	return nil
}
