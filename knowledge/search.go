package knowledge

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Result is one runbook section that matched a search, with what a citation
// needs: the document's title and path, the section's heading path, the
// normalised score in [0, 1), a short snippet around the matched words and
// the section's full text (for the prompt or an extractive answer).
type Result struct {
	Document string  `json:"document"` // document title, e.g. "Database failover"
	Section  string  `json:"section"`  // heading path, e.g. "Database failover > Promote the replica"
	Path     string  `json:"path"`     // file path relative to the synced directory
	Score    float64 `json:"score"`
	Snippet  string  `json:"snippet"`
	Content  string  `json:"content"`
}

// Search limits: more query words than this are ignored (a pasted log would
// otherwise become a huge OR), and results are capped.
const (
	maxQueryTerms = 32
	maxTermBytes  = 64
	maxLimit      = 50
)

// searchSQL ranks sections for a list of query words.
//
// Every word becomes plainto_tsquery under the english config (stemmed, stop
// words dropped) and the simple config (exact token: host names, error
// codes, flags); all of them are OR-ed, so a long natural question matches
// sections that share some of its words. A word that is only a stop word in
// english is dropped entirely, so "how do I" matches nothing rather than
// everything. plainto_tsquery never raises a syntax error, whatever the text.
//
// The rank is ts_rank_cd with title (A) > heading path (B) > body (C, D),
// divided by 1 + log(section length) (flag 1) so long sections do not win by
// bulk, squashed into [0, 1) (flag 32), then multiplied by the share of
// query words the section contains, so a section matching most of the
// question beats one repeating a single word. Candidates are cut to the 200
// best by raw rank before the coverage re-rank, which bounds the work on a
// large index; ts_headline runs only on the rows returned.
const searchSQL = `
WITH words AS (
    SELECT plainto_tsquery('english', w) AS qe, plainto_tsquery('simple', w) AS qs
    FROM unnest($1::text[]) AS w
), terms AS (
    SELECT qe || qs AS t FROM words WHERE numnode(qe) > 0
), query AS (
    SELECT string_agg('(' || t::text || ')', ' | ')::tsquery AS q, count(*) AS n FROM terms
), candidates AS (
    SELECT s.id, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', s.tsv, query.q, 1|32) AS rank
    FROM knowledge_sections s, query
    WHERE s.tsv @@ (SELECT q FROM query)
    ORDER BY rank DESC
    LIMIT 200
), scored AS (
    SELECT c.id, c.rank * (SELECT count(*) FROM terms WHERE s.tsv @@ terms.t)::float8 / query.n AS score
    FROM candidates c JOIN knowledge_sections s ON s.id = c.id, query
    ORDER BY score DESC, c.id
    LIMIT $2
)
SELECT d.title, s.heading_path, d.path, sc.score,
       ts_headline('english', s.content, query.q,
                   'MaxFragments=2, MaxWords=30, MinWords=12, FragmentDelimiter=" … ", StartSel="", StopSel=""'),
       s.content
FROM scored sc
JOIN knowledge_sections s ON s.id = sc.id
JOIN knowledge_documents d ON d.id = s.document_id, query
ORDER BY sc.score DESC, sc.id`

// Search returns up to limit sections ranked for query, best first. Any text
// is accepted: punctuation, tsquery operators, quotes and stop words are
// never a syntax error; a query with no searchable word returns no results.
func (ix *Index) Search(ctx context.Context, query string, limit int) ([]Result, error) {
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, maxLimit)
	words := queryWords(query)
	if len(words) == 0 {
		return nil, nil
	}
	rows, err := ix.db.Query(ctx, searchSQL, words, limit)
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	var out []Result
	var r Result
	_, err = pgx.ForEachRow(rows, []any{&r.Document, &r.Section, &r.Path, &r.Score, &r.Snippet, &r.Content}, func() error {
		r.Snippet = strings.Join(strings.Fields(r.Snippet), " ")
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	return out, nil
}

// queryWords splits user text into at most maxQueryTerms distinct words the
// database can take: valid UTF-8, no NUL, trimmed of surrounding punctuation,
// each at most maxTermBytes.
func queryWords(q string) []string {
	q = strings.ToValidUTF8(q, " ")
	q = strings.ReplaceAll(q, "\x00", " ")
	seen := map[string]bool{}
	var out []string
	for _, f := range strings.Fields(q) {
		f = strings.TrimFunc(f, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})
		if f == "" {
			continue
		}
		if len(f) > maxTermBytes {
			cut := maxTermBytes
			for cut > 0 && !utf8.RuneStart(f[cut]) {
				cut--
			}
			f = f[:cut]
		}
		f = strings.ToLower(f)
		if seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, f)
		if len(out) == maxQueryTerms {
			break
		}
	}
	return out
}
