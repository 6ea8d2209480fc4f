package knowledge

import (
	"context"
	"fmt"
	"sort"
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
	Section  string  `json:"section"`  // heading path below the title, e.g. "Failover > Promote the replica"; the intro section repeats Document
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

// Candidate bounds. Ranking costs tens of microseconds a section, so a
// search ranks only the sections that contain the question's selective
// words: words are taken rarest first while their estimated matches stay
// within candidateBudget, and at most candidateCap sections are ranked
// whatever the estimates say. On a small index every word is selective and
// every matching section is ranked.
const (
	candidateBudget = 1000
	candidateCap    = 2000
)

// wordStatsSQL estimates, for each query word, whether it is searchable at
// all (not only an english stop word) and how many sections contain it,
// from the planner's statistics: ANALYZE keeps the most common lexemes of
// tsv with their frequencies. A word missing from that list is rarer than
// all of them and counts as half the least frequency listed (as the
// planner does); a word of several lexemes (db-sg-01) is as rare as its
// rarest part. Before the first ANALYZE every word counts as 0.
const wordStatsSQL = `
WITH st AS (
    SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs,
           most_common_elem_freqs[array_length(most_common_elem_freqs, 1) - 2] AS minfreq
    FROM pg_stats
    WHERE schemaname = current_schema() AND tablename = 'knowledge_sections' AND attname = 'tsv'
), tuples AS (
    SELECT greatest(reltuples, 0) AS n FROM pg_class WHERE oid = 'knowledge_sections'::regclass
)
SELECT w,
       numnode(plainto_tsquery('english', w)) > 0,
       coalesce((SELECT min(coalesce(st.freqs[array_position(st.elems, lx)], st.minfreq / 2))
                 FROM unnest(tsvector_to_array(to_tsvector('english', w))) AS lx), 0)
       * (SELECT n FROM tuples)
FROM unnest($1::text[]) AS w LEFT JOIN st ON true`

// searchSQL ranks the candidate sections for a list of query words.
//
// Every word becomes plainto_tsquery under the english config (stemmed)
// OR the simple config (exact token: host names, error codes, flags; only
// when it differs, since every duplicate costs ranking time); the
// terms are OR-ed ($1), so a long natural question matches sections that
// share some of its words. plainto_tsquery never raises a syntax error,
// whatever the text. Candidates are the sections matching the selective
// words ($2), OR-ed, or AND-ed when $3 (every word is common).
//
// The candidates are shortlisted to 100 by ts_rank, which is cheap, and
// scored by ts_rank_cd (cover density: query words close together count
// more), which is about five times dearer a row and ranks better. Both
// weight title (A) > heading path (B) > body (C, D). The score is
// ts_rank_cd divided by 1 + log(section length) (flag 1) so long sections
// do not win by bulk, squashed into [0, 1) (flag 32), times the share of
// query words the section contains, so a section matching most of the
// question beats one repeating a single word. ts_headline runs only on the
// rows returned.
const searchSQL = `
WITH words AS (
    SELECT w, plainto_tsquery('english', w) AS qe, plainto_tsquery('simple', w) AS qs
    FROM unnest($1::text[]) AS w
), terms AS (
    SELECT w, CASE WHEN qe = qs THEN qe ELSE qe || qs END AS t FROM words
), query AS (
    SELECT string_agg('(' || t::text || ')', ' | ')::tsquery AS q, count(*) AS n FROM terms
), cquery AS (
    SELECT string_agg('(' || t::text || ')', CASE WHEN $3 THEN ' & ' ELSE ' | ' END)::tsquery AS q
    FROM terms WHERE w = ANY ($2::text[])
), candidates AS (
    SELECT s.id, s.tsv FROM knowledge_sections s
    WHERE s.tsv @@ (SELECT q FROM cquery)
    LIMIT $5
), shortlist AS (
    SELECT c.id, c.tsv FROM candidates c, query
    ORDER BY ts_rank('{0.1, 0.2, 0.4, 1.0}', c.tsv, query.q, 1|32) DESC
    LIMIT 100
), scored AS (
    SELECT c.id, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', c.tsv, query.q, 1|32)
                 * (SELECT count(*) FROM terms WHERE c.tsv @@ terms.t)::float8 / query.n AS score
    FROM shortlist c, query
    ORDER BY score DESC, c.id
    LIMIT $4
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
	words, err := ix.searchableWords(ctx, queryWords(query))
	if err != nil || len(words) == 0 {
		return nil, err
	}
	all := make([]string, len(words))
	for i, w := range words {
		all[i] = w.word
	}
	cands, conjunction := candidateWords(words)
	out, err := ix.rank(ctx, all, cands, conjunction, limit)
	if err == nil && len(out) == 0 && conjunction {
		// Every word is common and no section has them all: rank the
		// sections with the rarest word instead.
		out, err = ix.rank(ctx, all, cands[:1], false, limit)
	}
	return out, err
}

// wordStat is a searchable query word and its estimated section count.
type wordStat struct {
	word string
	rows float64
}

// searchableWords drops stop words and estimates how common the rest are,
// rarest first.
func (ix *Index) searchableWords(ctx context.Context, words []string) ([]wordStat, error) {
	if len(words) == 0 {
		return nil, nil
	}
	rows, err := ix.db.Query(ctx, wordStatsSQL, words)
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	var out []wordStat
	var ws wordStat
	var searchable bool
	_, err = pgx.ForEachRow(rows, []any{&ws.word, &searchable, &ws.rows}, func() error {
		if searchable {
			out = append(out, ws)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	// Ties (words the statistics do not list) go to the more specific word:
	// host names, codes and flags first, then longer words.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].rows != out[j].rows {
			return out[i].rows < out[j].rows
		}
		if si, sj := specific(out[i].word), specific(out[j].word); si != sj {
			return si
		}
		return len(out[i].word) > len(out[j].word)
	})
	return out, nil
}

// specific reports whether a word looks like a name or code (db-sg-01,
// err_conn_reset, 502, v1.2) rather than prose.
func specific(w string) bool {
	return strings.ContainsAny(w, "0123456789-_./")
}

// candidateWords picks the words whose sections get ranked: the rarest
// words while their estimated matches fit candidateBudget. When even the
// rarest word is too common, all words are returned to be AND-ed.
func candidateWords(words []wordStat) (cands []string, conjunction bool) {
	var sum float64
	for _, w := range words {
		if sum+w.rows > candidateBudget && len(cands) > 0 {
			break
		}
		sum += w.rows
		cands = append(cands, w.word)
	}
	if sum <= candidateBudget {
		return cands, false
	}
	cands = cands[:0]
	for _, w := range words {
		cands = append(cands, w.word)
	}
	return cands, true
}

// rank runs searchSQL.
func (ix *Index) rank(ctx context.Context, all, cands []string, conjunction bool, limit int) ([]Result, error) {
	rows, err := ix.db.Query(ctx, searchSQL, all, cands, conjunction, limit, candidateCap)
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	var out []Result
	var r Result
	_, err = pgx.ForEachRow(rows, []any{&r.Document, &r.Section, &r.Path, &r.Score, &r.Snippet, &r.Content}, func() error {
		r.Snippet = strings.Join(strings.Fields(r.Snippet), " ")
		r.Section = strings.TrimPrefix(r.Section, r.Document+headingSep)
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
