package knowledge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/knowledge"
)

// How the engine uses the index for one turn: search, cite the sections
// that answer, or record the question as a gap.
func ExampleIndex_Search() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/opsbot")
	if err != nil {
		panic(err)
	}
	ix := knowledge.New(pool, time.Now)
	question := "payment gateway is returning 502s in ap-southeast-1"
	userID, conversationID := uuid.New(), uuid.New()

	hits, err := ix.Search(ctx, question, 3)
	if err != nil {
		panic(err)
	}
	if !ix.Answered(hits) {
		_ = ix.RecordGap(ctx, question, userID, conversationID)
		return
	}
	for _, h := range hits {
		// metadata.citations: {document, section, path, score, snippet}
		fmt.Printf("%s — %s (%s, %.2f): %s\n", h.Document, h.Section, h.Path, h.Score, h.Snippet)
	}
}
