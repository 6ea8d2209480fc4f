package bot

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

// DB is what the engine needs from the database: reads, transactions, and
// batches, which store a turn in one round trip. *pgxpool.Pool satisfies
// it.
type DB interface {
	conversations.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Retriever finds runbook sections for a question and remembers the
// questions it could not answer. *knowledge.Index satisfies it. A nil
// Retriever means the bot has no runbooks. SearchFor charges whatever the
// search costs (the question's embedding in hybrid search) to who.
type Retriever interface {
	SearchFor(ctx context.Context, who knowledge.Asker, query string, limit int) ([]knowledge.Result, error)
	RecordGap(ctx context.Context, question string, userID, conversationID uuid.UUID) error
}

// answerJudge is implemented by retrievers that know when their hits are
// good enough to count as an answer (*knowledge.Index does); otherwise any
// hit counts.
type answerJudge interface {
	Answered(results []knowledge.Result) bool
}

// Budget bounds spend. Admit is asked before the model is called and refuses
// with a *usage.BudgetExceededError when a budget is used up; its admission
// says whether a budget applies at all (then the model must be priced).
// Settle runs inside the transaction that records the turn's ledger row
// (QueueSettle in the batch that does); Cancel releases an admission whose
// turn failed before it cost anything. A nil Budget means no budgets.
type Budget interface {
	Admit(ctx context.Context, userID uuid.UUID) (usage.Admission, error)
	Settle(ctx context.Context, tx usage.DBTX, a usage.Admission) error
	QueueSettle(b *pgx.Batch, a usage.Admission)
	Cancel(ctx context.Context, a usage.Admission) error
}
