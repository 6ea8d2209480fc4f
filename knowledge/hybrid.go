package knowledge

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Fusion: the top fusionDepth sections of the lexical ranking and of the
// ranking by meaning are fused by reciprocal rank fusion (Cormack, Clarke
// and Büttcher, 2009): a section scores the sum of 1/(rrfK + rank) over
// the rankings it is in, so agreement between the two counts most and no
// score scale has to be matched with the other's.
const (
	fusionDepth = 20
	rrfK        = 60
)

// fetchSQL reads the fused sections ($1) with snippets for the question's
// ranking query ($2; the section's beginning when it is empty).
const fetchSQL = `
SELECT s.id, d.title, s.heading_path, d.path,
       CASE WHEN $2 <> '' THEN ts_headline('english', s.content, $2::tsquery, ` + headlineOptions + `) END,
       s.content
FROM knowledge_sections s
JOIN knowledge_documents d ON d.id = s.document_id
WHERE s.id = ANY ($1::bigint[])`

// hybrid ranks by words and by meaning at once: the question's embedding
// call runs while the lexical ranking does, with its own deadline; without
// its vector (the provider failed or was slow) the search is lexical. The
// call's ledger row is written while the results are fetched, and the
// search returns once it is.
func (ix *Index) hybrid(ctx context.Context, who Asker, query string, terms []term, limit int) ([]Result, error) {
	qctx, cancel := context.WithTimeout(ctx, ix.emb.QueryTimeout)
	defer cancel()
	var q []float32
	ready := make(chan struct{}) // closed when q is set, or will never be
	done := make(chan struct{})  // closed when the call is over and on the ledger
	go func() {
		defer close(done)
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		_, err := ix.embed(qctx, who, []string{query}, func(v [][]float32) {
			q = v[0]
			once()
		})
		if err != nil {
			ix.log.WarnContext(ctx, "question embedding failed; searching runbooks by words only", "error", err)
		}
	}()
	defer func() { <-done }()

	lex, rq, gen, err := ix.lexical(ctx, terms, fusionDepth, false)
	if err != nil {
		cancel()
		return nil, err
	}
	<-ready
	var near []scoredID
	if q != nil {
		snap, err := ix.vectors.get(qctx, ix.db, ix.emb.Embedder.Space(), gen)
		if err != nil {
			ix.log.WarnContext(ctx, "section vectors not loaded; searching runbooks by words only", "error", err)
		}
		near = snap.nearest(q, fusionDepth)
	}
	return ix.fetch(ctx, fuse(lex, near, limit), rq)
}

// fuse merges the lexical results and the nearest sections by reciprocal
// rank fusion and keeps the best limit. A section keeps its lexical score
// (0 when only its meaning matched); ties go to the lexical order.
func fuse(lex []Result, near []scoredID, limit int) []Result {
	type fused struct {
		r   Result
		rrf float64
		pos int
	}
	byID := map[int64]*fused{}
	var all []*fused
	add := func(id int64, rank int, r Result) {
		f, ok := byID[id]
		if !ok {
			f = &fused{r: r, pos: len(all)}
			byID[id] = f
			all = append(all, f)
		}
		f.rrf += 1 / float64(rrfK+rank)
	}
	for i, r := range lex {
		add(r.id, i+1, r)
	}
	for i, n := range near {
		add(n.id, i+1, Result{id: n.id})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].rrf != all[j].rrf {
			return all[i].rrf > all[j].rrf
		}
		return all[i].pos < all[j].pos
	})
	out := make([]Result, 0, min(limit, len(all)))
	for _, f := range all[:min(limit, len(all))] {
		out = append(out, f.r)
	}
	return out
}

// fetch fills in the fused results' documents, snippets and text, in
// order; a section deleted meanwhile drops out.
func (ix *Index) fetch(ctx context.Context, results []Result, rankQuery string) ([]Result, error) {
	if len(results) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(results))
	for i, r := range results {
		ids[i] = r.id
	}
	rows, err := ix.db.Query(ctx, fetchSQL, ids, rankQuery)
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	got := map[int64]Result{}
	var r Result
	var snippet *string
	_, err = pgx.ForEachRow(rows, []any{&r.id, &r.Document, &r.Section, &r.Path, &snippet, &r.Content}, func() error {
		r.Section = strings.TrimPrefix(r.Section, r.Document+headingSep)
		if snippet != nil {
			r.Snippet = *snippet
		} else {
			r.Snippet = firstWords(r.Content, 30)
		}
		r.Snippet = strings.Join(strings.Fields(r.Snippet), " ")
		got[r.id] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	out := make([]Result, 0, len(results))
	for _, want := range results {
		if r, ok := got[want.id]; ok {
			r.Score = want.Score
			out = append(out, r)
		}
	}
	return out, nil
}

// firstWords is the beginning of text, at most n words: the snippet of a
// section no question word matched.
func firstWords(text string, n int) string {
	f := strings.Fields(text)
	if len(f) > n {
		return strings.Join(f[:n], " ") + " …"
	}
	return strings.Join(f, " ")
}
