package knowledge

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Result is one runbook section that matched a search, with what a citation
// needs: the document's title and path, the section's heading path, the
// normalised score in [0, 1), a short snippet around the matched words and
// the section's full text (for the prompt or an extractive answer).
type Result struct {
	Document string  `json:"document"` // document title, e.g. "Database failover"
	Section  string  `json:"section"`  // heading path below the title, e.g. "Failover > Promote the replica"; the intro section repeats Document
	Path     string  `json:"path"`     // file path relative to the synced directory
	Score    float64 `json:"score"`    // lexical score; 0 for a section found by meaning alone (hybrid search)
	Snippet  string  `json:"snippet"`
	Content  string  `json:"content"`
	// LowConfidence marks a section below the answer bar (MinScore): one
	// of the closest sections, not one known to answer the question.
	LowConfidence bool `json:"low_confidence,omitempty"`

	id int64 // knowledge_sections.id
}

// maxLimit caps the results of one search.
const maxLimit = 50

// headlineOptions shape a result's snippet: up to two fragments around the
// matched words, plain text.
const headlineOptions = `'MaxFragments=2, MaxWords=30, MinWords=12, FragmentDelimiter=" … ", StartSel="", StopSel=""'`

// Candidate bounds. Ranking costs tens of microseconds a section, so a
// search ranks only the sections that contain the question's selective
// terms (candidateTerms): terms are taken rarest first while their matches
// stay within candidateBudget, and at most candidateCap sections are ranked
// whatever the counts say. On a small index every term is selective and
// every matching section is ranked.
const (
	candidateBudget = 1000
	candidateCap    = 2000
)

// shortlistSize is how many of the candidates, by ts_rank, are scored by
// ts_rank_cd, whose cost grows with the question's operands.
const shortlistSize = 100

// rankSQL ranks the candidate sections for the question's terms ($1, as
// tsquery text, with their weights $2, and $8 the same terms without
// vocabulary synonyms; $10 is the weight of the question's words no
// section has).
//
// The question's query ($7) is the distinct ranking operands of its terms
// OR-ed (rankQuery), so a long natural question matches sections that
// share some of its words, and a lexeme that several synonyms share counts
// once. Candidates are the sections matching the selective terms
// (candidateTerms: $3 in full, $11 by their typed words only), OR-ed, or
// AND-ed when $4 (every term is common).
//
// The candidates are shortlisted to $12 by ts_rank, which is cheap, and
// scored by ts_rank_cd (cover density: query words close together count
// more), which is dearer a row and ranks better (it tells a question's
// topic from words it shares by chance). The shortlist's tsvectors are
// unpacked once: every function call on a compressed one decompresses it
// again. Both
// weight title (A) > heading path (B) > body (C, D). The score is
// ts_rank_cd divided by 1 + log(section length) (flag 1) so long sections
// do not win by bulk, squashed into [0, 1) (flag 32), times the section's
// share of the question: the weights of the terms it matches over all
// weights, so a section matching most of the question beats one repeating
// a single word. The share is the mean of two: with synonyms, and with
// the question's own words only, so the section that says "ENOSPC" ranks
// above the one that only talks about full volumes. ts_headline runs only
// on the rows returned, and only when $9 (hybrid search fetches the rows
// it keeps). The index generation (statsCache) comes with them, alone in a
// row of nulls when no section matched.
const rankSQL = `
WITH terms AS (
    SELECT x.t::tsquery AS t, nullif(x.x, '')::tsquery AS x, x.w, x.i
    FROM unnest($1::text[], $8::text[], $2::float8[]) WITH ORDINALITY AS x(t, x, w, i)
), query AS (
    SELECT $7::tsquery AS q, sum(w) + $10 AS total FROM terms
), cquery AS (
    SELECT string_agg('(' || CASE WHEN i = ANY ($3::bigint[]) THEN t ELSE x END::text || ')',
                      CASE WHEN $4 THEN ' & ' ELSE ' | ' END)::tsquery AS q
    FROM terms WHERE i = ANY ($3::bigint[]) OR i = ANY ($11::bigint[])
), candidates AS (
    SELECT s.id, s.tsv FROM knowledge_sections s
    WHERE s.tsv @@ (SELECT q FROM cquery)
    LIMIT $6
), shortlist AS MATERIALIZED (
    SELECT c.id FROM candidates c, query
    ORDER BY ts_rank('{0.1, 0.2, 0.4, 1.0}', c.tsv, query.q, 1|32) DESC
    LIMIT $12
), unpacked AS MATERIALIZED (
    SELECT sh.id, s.tsv || ''::tsvector AS v
    FROM shortlist sh JOIN knowledge_sections s ON s.id = sh.id
), scored AS (
    SELECT u.id, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', u.v, query.q, 1|32)
                 * (SELECT sum(CASE WHEN u.v @@ terms.x THEN 2 * w ELSE w END) FROM terms WHERE u.v @@ terms.t)
                 / (2 * query.total) AS score
    FROM unpacked u, query
    ORDER BY score DESC, u.id
    LIMIT $5
)
SELECT st.generation, sc.id, d.title, s.heading_path, d.path, sc.score,
       CASE WHEN $9 THEN ts_headline('english', s.content, query.q, ` + headlineOptions + `) END,
       CASE WHEN $9 THEN s.content END
FROM knowledge_state st
LEFT JOIN (scored sc
           JOIN knowledge_sections s ON s.id = sc.id
           JOIN knowledge_documents d ON d.id = s.document_id
           CROSS JOIN query) ON true
ORDER BY sc.score DESC, sc.id`

// Search returns up to limit sections ranked for query, best first, as
// SearchFor with no asker (an embedding call is charged to the service
// user).
func (ix *Index) Search(ctx context.Context, query string, limit int) ([]Result, error) {
	return ix.SearchFor(ctx, Asker{}, query, limit)
}

// SearchFor returns up to limit sections ranked for query, best first,
// each marked LowConfidence when below the answer bar. Any text is
// accepted: punctuation, tsquery operators, quotes and stop words are never
// a syntax error; a query with no searchable word returns no results.
//
// With embeddings (WithEmbeddings) the ranking fuses the lexical one with
// the sections nearest the question's vector, whose embedding call is
// charged to who. If that call fails or takes longer than the query
// timeout, the search is lexical: the caller sees no error.
func (ix *Index) SearchFor(ctx context.Context, who Asker, query string, limit int) ([]Result, error) {
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, maxLimit)
	terms := buildTerms(ix.vocab, query)
	if len(terms) == 0 {
		return nil, nil
	}
	var out []Result
	var err error
	if ix.emb != nil {
		out, err = ix.hybrid(ctx, who, query, terms, limit)
	} else {
		out, _, _, err = ix.lexical(ctx, terms, limit, true)
	}
	if err != nil {
		return nil, err
	}
	ix.mark(out)
	return out, nil
}

// lexical ranks the sections by the question's words: the top limit, with
// their snippets and text when withRows. It returns the ranking query (for
// snippets of other rows) and the index generation it saw.
func (ix *Index) lexical(ctx context.Context, terms []term, limit int, withRows bool) ([]Result, string, int64, error) {
	for attempt := 0; ; attempt++ {
		an, err := ix.analyze(ctx, terms)
		if err != nil {
			return nil, "", 0, err
		}
		if len(an.terms) == 0 {
			// Nothing to rank, maybe by counts cached before a sync that
			// added the words: check the generation instead.
			var now int64
			if err := ix.db.QueryRow(ctx, `SELECT generation FROM knowledge_state`).Scan(&now); err != nil {
				return nil, "", 0, fmt.Errorf("search runbooks: %w", err)
			}
			if now != an.gen && attempt == 0 {
				ix.stats.observe(now)
				continue
			}
			return nil, "", now, nil
		}
		out, seen, err := ix.rank(ctx, an, limit, withRows)
		if err != nil {
			return nil, "", 0, err
		}
		if seen != an.gen && attempt == 0 {
			continue // the index changed under the cached counts: again, with fresh ones
		}
		return out, rankQuery(an.terms), seen, nil
	}
}

// mark sets LowConfidence on the results below the answer bar.
func (ix *Index) mark(results []Result) {
	for i := range results {
		results[i].LowConfidence = results[i].Score < ix.minScore
	}
}

// searchTerm is a term the index can match: its tsquery, weight and
// section count.
type searchTerm struct {
	query string
	exact string   // query without vocabulary synonyms; "" when none was typed
	rank  []string // operands the ranking functions score: english lexemes and corrections
	// exactSections counts the sections exact can match (at most sections).
	exactSections float64
	weight        float64
	sections      float64
	specific      bool
}

// candidates says which sections get ranked: those matching the full
// queries of the terms in full, or the typed part (exact query) of those in
// exact; OR-ed, or AND-ed when conjunction.
type candidates struct {
	full, exact []int64 // term numbers, from 1
	conjunction bool
}

// candidateTerms picks the candidates: a term's typed words and its
// synonyms are taken apart, rarest first (ties: host names and codes
// first), while their matches fit candidateBudget; a term's synonyms join
// its typed words when they fit too. When even the rarest part is too
// common, every term is AND-ed. fallback is the rarest part alone, for
// when the conjunction finds nothing.
func candidateTerms(terms []searchTerm) (c, fallback candidates) {
	type part struct {
		term  int
		exact bool
		n     float64
	}
	var parts []part
	for i, t := range terms {
		if t.exact != "" && t.exactSections < t.sections {
			parts = append(parts, part{i, true, t.exactSections})
		}
		parts = append(parts, part{i, false, t.sections})
	}
	sort.SliceStable(parts, func(i, j int) bool {
		if parts[i].n != parts[j].n {
			return parts[i].n < parts[j].n
		}
		return terms[parts[i].term].specific && !terms[parts[j].term].specific
	})
	first := parts[0]
	fallback.full = []int64{int64(first.term + 1)}
	if first.exact {
		fallback = candidates{exact: fallback.full}
	}
	var sum float64
	exact := map[int]float64{} // terms taken by their typed words: their count
	full := map[int]bool{}
	for _, p := range parts {
		add := p.n
		if !p.exact {
			add -= exact[p.term] // the synonyms join the typed words
		}
		if sum+add > candidateBudget && len(exact)+len(full) > 0 {
			break
		}
		sum += add
		if p.exact {
			exact[p.term] = p.n
		} else {
			full[p.term] = true
			delete(exact, p.term)
		}
	}
	if sum > candidateBudget {
		for i := range terms {
			c.full = append(c.full, int64(i+1))
		}
		c.conjunction = true
		return c, fallback
	}
	for i := range terms {
		switch _, isExact := exact[i]; {
		case full[i]:
			c.full = append(c.full, int64(i+1))
		case isExact:
			c.exact = append(c.exact, int64(i+1))
		}
	}
	return c, fallback
}

// rank runs rankSQL on the candidates of candidateTerms, and returns the
// index generation it saw. When every term is common and no section has
// them all, it ranks the sections with the rarest part instead.
func (ix *Index) rank(ctx context.Context, an analysis, limit int, withRows bool) ([]Result, int64, error) {
	cands, fallback := candidateTerms(an.terms)
	out, gen, err := ix.rankRows(ctx, an, cands, limit, withRows)
	if err == nil && len(out) == 0 && cands.conjunction {
		out, gen, err = ix.rankRows(ctx, an, fallback, limit, withRows)
	}
	return out, gen, err
}

// queriesOf is the query of each term.
func queriesOf(terms []searchTerm) []string {
	out := make([]string, len(terms))
	for i, t := range terms {
		out[i] = t.query
	}
	return out
}

// rankQuery ORs the distinct ranking operands of the terms: what ts_rank
// and ts_rank_cd score against. Only the english forms: the simple ones
// add the stop words and the body's unstemmed copy, and ts_rank_cd's cost
// grows faster than its operands.
func rankQuery(terms []searchTerm) string {
	seen := map[string]bool{}
	var ops []string
	for _, t := range terms {
		for _, op := range t.rank {
			if !seen[op] {
				seen[op] = true
				ops = append(ops, op)
			}
		}
	}
	return strings.Join(ops, " | ")
}

func (ix *Index) rankRows(ctx context.Context, an analysis, cands candidates, limit int, withRows bool) ([]Result, int64, error) {
	queries := queriesOf(an.terms)
	exact := make([]string, len(an.terms))
	weights := make([]float64, len(an.terms))
	for i, t := range an.terms {
		exact[i], weights[i] = t.exact, t.weight
	}
	rows, err := ix.db.Query(ctx, rankSQL, queries, weights, cands.full, cands.conjunction, limit, candidateCap, rankQuery(an.terms), exact,
		withRows, an.unmatched, cands.exact, shortlistSize)
	if err != nil {
		return nil, 0, fmt.Errorf("search runbooks: %w", err)
	}
	var out []Result
	var gen int64
	var id *int64
	var doc, section, path, snippet, content *string
	var score *float64
	_, err = pgx.ForEachRow(rows, []any{&gen, &id, &doc, &section, &path, &score, &snippet, &content}, func() error {
		if id == nil {
			return nil // no section matched: the row only carries the generation
		}
		r := Result{id: *id, Document: *doc, Section: strings.TrimPrefix(*section, *doc+headingSep), Path: *path, Score: *score}
		if withRows {
			r.Snippet, r.Content = strings.Join(strings.Fields(*snippet), " "), *content
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("search runbooks: %w", err)
	}
	ix.stats.observe(gen)
	return out, gen, nil
}
