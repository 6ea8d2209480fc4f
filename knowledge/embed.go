package knowledge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/usage"
)

// Embedder turns texts into vectors that lie close when the texts mean the
// same. adapters/openai satisfies it (/v1/embeddings).
type Embedder interface {
	// Space names the vectors Embed returns (model and dimensions, such as
	// "text-embedding-3-small/256"): stored vectors are only compared with
	// a question's vector of the same space.
	Space() string
	// Embed returns one vector per text, in order.
	Embed(ctx context.Context, texts []string) (Embedding, error)
}

// Embedding is what one embedding call returned and what it cost.
type Embedding struct {
	Vectors [][]float32
	// Model is the model that answered, as priced; empty means the
	// configured one (Embeddings.Model).
	Model string
	// PromptTokens is the provider's count; 0 when it reported none, and
	// then the tokens are estimated (about 4 characters a token).
	PromptTokens int
}

// UsageSource is the usage ledger's source of embedding calls, apart from
// the chat sources.
const UsageSource = "embedding"

// DefaultQueryTimeout bounds the question's embedding in a search: past it
// the search is lexical. A person waits for the answer.
const DefaultQueryTimeout = 1500 * time.Millisecond

// embedBatch is how many sections go in one embedding call at sync (each
// at most maxSectionChars, so a batch stays far below the providers'
// per-request token limits).
const embedBatch = 64

// Embeddings turns on hybrid search: section vectors computed at Sync,
// the question's vector at search time, fused with the lexical ranking.
type Embeddings struct {
	Embedder Embedder
	// Model is the configured model name, priced when the provider names
	// none.
	Model  string
	Prices *usage.Prices // default usage.BuiltinPrices()
	// ServiceUser is charged for the calls no person asked for: Sync, and
	// a search with no Asker. Without it those calls are not made (Sync
	// reports why in EmbedFailed; such a search is lexical).
	ServiceUser uuid.UUID
	// QueryTimeout bounds the question's embedding (default
	// DefaultQueryTimeout).
	QueryTimeout time.Duration
}

// WithEmbeddings turns on hybrid search with e (see Embeddings). Without
// it, search is lexical.
func WithEmbeddings(e Embeddings) Option {
	return func(ix *Index) {
		if e.Prices == nil {
			e.Prices = usage.BuiltinPrices()
		}
		if e.QueryTimeout <= 0 {
			e.QueryTimeout = DefaultQueryTimeout
		}
		ix.emb = &e
	}
}

// Asker is who a search is for: the question's embedding is charged to
// them (uuid.Nil: to Embeddings.ServiceUser), in their conversation when
// there is one.
type Asker struct {
	UserID         uuid.UUID
	ConversationID uuid.UUID
}

// errNoPayer refuses an embedding call nobody could be charged for.
var errNoPayer = errors.New("embeddings: no user to charge (Embeddings.ServiceUser is not set)")

// embed calls the embedder and records the call on the usage ledger, for
// who (no asker: the service user; a call nobody can be charged for is not
// made). A call the ledger cannot record is logged and its vectors still
// used: the spend happened either way. ready, when not nil, gets the
// vectors before the ledger row is written, and then that row is committed
// without waiting for its WAL flush (see recordEmbedding).
func (ix *Index) embed(ctx context.Context, who Asker, texts []string, ready func([][]float32)) ([][]float32, error) {
	if who.UserID == uuid.Nil {
		who.UserID = ix.emb.ServiceUser
	}
	if who.UserID == uuid.Nil {
		return nil, errNoPayer
	}
	res, err := ix.emb.Embedder.Embed(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(res.Vectors) != len(texts) {
		return nil, fmt.Errorf("embeddings: %d vectors for %d texts", len(res.Vectors), len(texts))
	}
	for i, v := range res.Vectors {
		if !normalize(v) {
			return nil, fmt.Errorf("embeddings: vector %d is empty or not finite", i)
		}
	}
	if ready != nil {
		ready(res.Vectors)
	}
	if err := ix.recordEmbedding(context.WithoutCancel(ctx), who, texts, res, ready != nil); err != nil {
		ix.log.ErrorContext(ctx, "embedding call not on the usage ledger", "user_id", who.UserID,
			"tokens", res.PromptTokens, "error", err)
	}
	return res.Vectors, nil
}

// recordEmbedding writes the ledger row of one embedding call. For a
// question's call (lazy) the commit does not wait for the WAL flush, which
// under load costs more than the rest of a search: the turn's own
// transaction commits moments later, synchronously, and WAL is flushed in
// order, so once the turn is stored so is this row; only a crash before
// then can lose it.
func (ix *Index) recordEmbedding(ctx context.Context, who Asker, texts []string, res Embedding, lazy bool) error {
	model := res.Model
	if model == "" {
		model = ix.emb.Model
	}
	tokens, estimated := res.PromptTokens, false
	if tokens <= 0 {
		estimated = true
		for _, t := range texts {
			tokens += (utf8.RuneCountInString(t) + 3) / 4
		}
	}
	cost, known := ix.emb.Prices.Cost(model, usage.Tokens{Prompt: tokens})
	if !known {
		ix.unpriced.Do(func() {
			ix.log.WarnContext(ctx, "embedding model not in the price table; its usage is recorded at cost 0",
				"model", model, "price_version", ix.emb.Prices.Version)
		})
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev := usage.Event{UserID: who.UserID, ConversationID: who.ConversationID, Source: UsageSource,
		Model: model, PromptTokens: tokens, CostMicroUSD: cost, PriceVersion: ix.emb.Prices.Version,
		Estimated: estimated, Unpriced: !known, OccurredAt: ix.now()}
	if !lazy {
		return usage.Record(ctx, ix.db, ev)
	}
	return pgx.BeginFunc(ctx, ix.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		return usage.Record(ctx, tx, ev)
	})
}

// normalize scales v to unit length in place, so a dot product is the
// cosine; false when v has no direction or is not finite.
func normalize(v []float32) bool {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return false
	}
	inv := 1 / math.Sqrt(sum)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return true
}

// encodeVector is the stored form: little-endian float32.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// decodeVector appends the floats of a stored vector to dst.
func decodeVector(dst []float32, b []byte) []float32 {
	for i := 0; i+4 <= len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst
}

// missingEmbeddingsSQL lists the distinct section texts the embedding space
// $1 has no vector for, at most $2.
const missingEmbeddingsSQL = `
SELECT DISTINCT ON (s.embed_sha) s.embed_sha, s.heading_path, s.content
FROM knowledge_sections s
WHERE NOT EXISTS (SELECT 1 FROM knowledge_embeddings e WHERE e.space = $1 AND e.sha = s.embed_sha)
ORDER BY s.embed_sha
LIMIT $2`

// embedSections computes the vectors of every section text the embedding
// space has none for (new and changed sections: an unchanged text keeps its
// vector, whatever file it moved to), one batch a call, each call on the
// ledger under the service user. Vectors no section uses any more are
// deleted. Every round stores the texts it listed (or finds them stored by
// a concurrent sync), so the next round lists others until none is left.
func (ix *Index) embedSections(ctx context.Context) (int, error) {
	space := ix.emb.Embedder.Space()
	done := 0
	for {
		rows, err := ix.db.Query(ctx, missingEmbeddingsSQL, space, embedBatch)
		if err != nil {
			return done, fmt.Errorf("list sections to embed: %w", err)
		}
		var shas [][]byte
		var texts []string
		var sha []byte
		var path, content string
		_, err = pgx.ForEachRow(rows, []any{&sha, &path, &content}, func() error {
			shas = append(shas, append([]byte(nil), sha...))
			texts = append(texts, embedText(path, content))
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("list sections to embed: %w", err)
		}
		if len(texts) == 0 {
			_, err := ix.db.Exec(ctx, `DELETE FROM knowledge_embeddings e
				WHERE NOT EXISTS (SELECT 1 FROM knowledge_sections s WHERE s.embed_sha = e.sha)`)
			if err != nil {
				return done, fmt.Errorf("delete unused section vectors: %w", err)
			}
			return done, nil
		}
		vecs, err := ix.embed(ctx, Asker{}, texts, nil)
		if err != nil {
			return done, fmt.Errorf("embed %d runbook sections: %w", len(texts), err)
		}
		encoded := make([][]byte, len(vecs))
		for i, v := range vecs {
			encoded[i] = encodeVector(v)
		}
		_, err = ix.db.Exec(ctx, `
			INSERT INTO knowledge_embeddings (space, sha, vector)
			SELECT $1, x.sha, x.vector FROM unnest($2::bytea[], $3::bytea[]) AS x(sha, vector)
			ON CONFLICT (space, sha) DO NOTHING`, space, shas, encoded)
		if err != nil {
			return done, fmt.Errorf("store %d section vectors: %w", len(vecs), err)
		}
		done += len(vecs)
	}
}
