// Package knowledge holds the team's runbooks as searchable sections: it
// indexes a directory of Markdown and plain-text files into PostgreSQL (one
// row per heading, full-text searchable with both stemmed and exact tokens),
// answers searches with ranked, citable sections (by the words of an ops
// vocabulary, and with embeddings also by meaning), and records the
// questions the runbooks could not answer for a weekly gap report.
package knowledge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what the index needs from a pool or a transaction. Begin on a
// transaction opens a savepoint, so Sync also works inside a caller's
// transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// DefaultMinScore is the score a best section must reach for a question to
// count as answered. Scores are normalised into [0, 1): a question whose
// distinctive words appear in a section title lands well above it; a
// question sharing one incidental body word with a section stays below.
const DefaultMinScore = 0.2

// DefaultMaxFileSize is the largest file Sync indexes; bigger files are
// skipped with a warning (runbooks are prose, not logs or dumps).
const DefaultMaxFileSize = 1 << 20

// Index is the runbook index on PostgreSQL.
type Index struct {
	db          DBTX
	now         func() time.Time
	log         *slog.Logger
	minScore    float64
	maxFileSize int64
	vocab       *vocabulary
	stats       statsCache
	emb         *Embeddings // nil: lexical search only
	vectors     vectorCache
	unpriced    sync.Once // the warning about an embedding model without a price
}

// Option changes a default of New.
type Option func(*Index)

// WithMinScore sets the threshold of Answered (default DefaultMinScore).
func WithMinScore(s float64) Option { return func(ix *Index) { ix.minScore = s } }

// WithMaxFileSize sets the largest file Sync indexes (default DefaultMaxFileSize).
func WithMaxFileSize(n int64) Option { return func(ix *Index) { ix.maxFileSize = n } }

// WithLogger sets where Sync logs skipped files (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(ix *Index) { ix.log = l } }

// New returns an index on a pool (or a transaction); now is the clock used
// for indexed_at and gap times (time.Now in production).
func New(db DBTX, now func() time.Time, opts ...Option) *Index {
	ix := &Index{db: db, now: now, log: slog.Default(), minScore: DefaultMinScore, maxFileSize: DefaultMaxFileSize,
		vocab: mustParseVocabulary(vocabularyFile)}
	for _, o := range opts {
		o(ix)
	}
	return ix
}

// MinScore is the score a result needs for its question to count as answered.
func (ix *Index) MinScore() float64 { return ix.minScore }

// Answered reports whether results (as returned by Search) hold a section
// good enough to answer from: one whose score reaches MinScore. When it is
// false the results are only the closest sections (marked LowConfidence)
// and the caller should RecordGap.
func (ix *Index) Answered(results []Result) bool {
	for _, r := range results {
		if r.Score >= ix.minScore {
			return true
		}
	}
	return false
}
