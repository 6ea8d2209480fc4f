package knowledge

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// lexemes are a text's lexemes under the english config (stemmed, stop
// words dropped) and the simple config (every token as written, lower
// case), as to_tsvector makes them.
type lexemes struct {
	english []string
	simple  []string
}

// lexemeCacheSize bounds the lexemes remembered; when full, they start
// over.
const lexemeCacheSize = 8192

// correction is a title or heading lexeme offered for a misspelt word.
type correction struct {
	lexeme   string
	sections float64
}

// termCounts is knowledge_terms at one index generation, in memory: the
// lexemes in byte order (the "C" collation of the table's key), the
// sections containing each, and the corrections found for misspelt words.
type termCounts struct {
	gen      int64
	lexemes  []string
	sections []float64
	cum      []float64 // cum[i] is the sum of sections[:i]
	fixes    map[string][]correction
}

// count is the number of sections containing lexeme x.
func (c *termCounts) count(x string) float64 {
	i := sort.SearchStrings(c.lexemes, x)
	if i < len(c.lexemes) && c.lexemes[i] == x {
		return c.sections[i]
	}
	return 0
}

// prefixCount is the sum of the counts of the lexemes starting with p.
func (c *termCounts) prefixCount(p string) float64 {
	lo := sort.SearchStrings(c.lexemes, p)
	n := sort.Search(len(c.lexemes)-lo, func(j int) bool { return !strings.HasPrefix(c.lexemes[lo+j], p) })
	return c.cum[lo+n] - c.cum[lo]
}

// statsCache remembers what analyze learns from the database, so that a
// question costs no query before its ranking in the usual case:
//
//   - the lexemes of words and phrases seen: the text search configs never
//     change while the server runs, and the vocabulary and the words people
//     use repeat;
//   - knowledge_terms, whole, for one index generation (a few MB for 50k
//     sections, read in tens of milliseconds once after each sync). Every
//     search reads the generation with its results; one that finds a newer
//     generation than its counts drops them and runs again, so no search
//     ranks with stale counts, on any replica.
type statsCache struct {
	mu      sync.Mutex
	lex     map[string]lexemes
	counts  *termCounts // nil: to be read
	loading sync.Mutex  // one reader of knowledge_terms at a time
}

// observe records the generation a search saw; a new one drops the counts.
func (c *statsCache) observe(gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts != nil && c.counts.gen != gen {
		c.counts = nil
	}
}

// termsSQL reads knowledge_terms and, in the same snapshot, its generation.
const termsSQL = `
SELECT (SELECT generation FROM knowledge_state), lexeme, sections
FROM knowledge_terms ORDER BY lexeme`

// termCounts returns the counts, reading them when they are not cached.
func (c *statsCache) termCounts(ctx context.Context, db DBTX) (*termCounts, error) {
	c.mu.Lock()
	tc := c.counts
	c.mu.Unlock()
	if tc != nil {
		return tc, nil
	}
	c.loading.Lock()
	defer c.loading.Unlock()
	c.mu.Lock()
	tc = c.counts
	c.mu.Unlock()
	if tc != nil {
		return tc, nil // read by the search this one waited for
	}
	rows, err := db.Query(ctx, termsSQL)
	if err != nil {
		return nil, fmt.Errorf("search runbooks: read term counts: %w", err)
	}
	tc = &termCounts{gen: -1, cum: []float64{0}, fixes: map[string][]correction{}}
	var gen int64
	var x string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&gen, &x, &n}, func() error {
		tc.gen = gen
		tc.lexemes = append(tc.lexemes, x)
		tc.sections = append(tc.sections, float64(n))
		tc.cum = append(tc.cum, tc.cum[len(tc.cum)-1]+float64(n))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search runbooks: read term counts: %w", err)
	}
	if tc.gen < 0 { // no lexeme at all: the generation alone
		if err := db.QueryRow(ctx, `SELECT generation FROM knowledge_state`).Scan(&tc.gen); err != nil {
			return nil, fmt.Errorf("search runbooks: %w", err)
		}
	}
	c.mu.Lock()
	c.counts = tc
	c.mu.Unlock()
	return tc, nil
}

// lookupSQL learns, in one round trip, the lexemes of new texts ($1) and
// the corrections of words ($2) that no section contains: known so from
// the counts ($3 true), or, for new texts, checked here against
// knowledge_terms. Corrections are by trigram similarity to the words of
// titles and headings (pg_trgm's % operator over the GIN index, then at
// least 0.4: "certifcate" is 0.64 from certificate, "leave" 0.375 from
// leak); the two most similar are kept. Rows: kind ('n' new text, 'f'
// fix), key (the text, or the word's number), the fix and its count, the
// new text's english and simple lexemes.
const lookupSQL = `
WITH new AS MATERIALIZED (
    SELECT t, tsvector_to_array(to_tsvector('english', t)) AS en, tsvector_to_array(to_tsvector('simple', t)) AS si
    FROM unnest($1::text[]) AS t
), fw AS (
    SELECT w.i, w.word FROM unnest($2::text[], $3::bool[]) WITH ORDINALITY AS w(word, absent, i)
    WHERE w.absent OR EXISTS (
        SELECT 1 FROM new WHERE new.t = w.word AND cardinality(new.en) > 0
        AND NOT EXISTS (SELECT 1 FROM unnest(new.en || new.si) AS x JOIN knowledge_terms k ON k.lexeme = x COLLATE "C"))
)
SELECT 'n', t, '', 0::bigint, en, si FROM new
UNION ALL
SELECT 'f', fw.i::text, c.lexeme, c.sections, NULL, NULL
FROM fw CROSS JOIN LATERAL (
    SELECT k.lexeme, k.sections FROM knowledge_terms k
    WHERE k.headings > 0 AND k.lexeme % fw.word AND similarity(k.lexeme, fw.word) >= 0.4
    ORDER BY similarity(k.lexeme, fw.word) DESC, k.lexeme
    LIMIT 2) c`

// digitsOnly reports whether t is a number, whose lexemes are itself under
// both configs: no query needed to learn them.
func digitsOnly(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return t != ""
}

// lookup returns the lexemes of texts and the corrections of the words of
// fixWords that no section contains (by tc), from the cache and, for what
// it lacks, from the database in one round trip (then cached).
func (c *statsCache) lookup(ctx context.Context, db DBTX, tc *termCounts, texts, fixWords []string) (map[string]lexemes, map[string][]correction, error) {
	lex := make(map[string]lexemes, len(texts))
	var newTexts []string
	c.mu.Lock()
	for _, t := range texts {
		if _, seen := lex[t]; seen {
			continue
		}
		switch l, ok := c.lex[t]; {
		case ok:
			lex[t] = l
		case digitsOnly(t):
			lex[t] = lexemes{english: []string{t}, simple: []string{t}}
		default:
			lex[t] = lexemes{}
			newTexts = append(newTexts, t)
		}
	}
	c.mu.Unlock()

	fixes := map[string][]correction{}
	var askWords []string
	var absent []bool
	isNew := map[string]bool{}
	for _, t := range newTexts {
		isNew[t] = true
	}
	c.mu.Lock()
	for _, w := range fixWords {
		if f, ok := tc.fixes[w]; ok {
			fixes[w] = f
			continue
		}
		if isNew[w] {
			askWords, absent = append(askWords, w), append(absent, false)
			continue
		}
		l := lex[w]
		if len(l.english) == 0 || !allAbsent(tc, l) {
			continue // stop words, or a word some section has
		}
		askWords, absent = append(askWords, w), append(absent, true)
	}
	c.mu.Unlock()
	if len(newTexts)+len(askWords) == 0 {
		return lex, fixes, nil
	}

	rows, err := db.Query(ctx, lookupSQL, newTexts, askWords, absent)
	if err != nil {
		return nil, nil, fmt.Errorf("search runbooks: %w", err)
	}
	found := map[string][]correction{}
	var kind, key, fix string
	var n int64
	var en, si []string
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &fix, &n, &en, &si}, func() error {
		switch kind {
		case "n":
			lex[key] = lexemes{english: en, simple: si}
		case "f":
			i, err := strconv.Atoi(key)
			if err != nil || i < 1 || i > len(askWords) {
				return fmt.Errorf("correction for word %q", key)
			}
			w := askWords[i-1]
			found[w] = append(found[w], correction{lexeme: fix, sections: float64(n)})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("search runbooks: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lex == nil || len(c.lex)+len(newTexts) > lexemeCacheSize {
		c.lex = make(map[string]lexemes, lexemeCacheSize)
	}
	for _, t := range newTexts {
		c.lex[t] = lex[t]
	}
	for _, w := range askWords {
		fixes[w] = found[w]
		tc.fixes[w] = found[w] // nil too: no correction, asked once
	}
	return lex, fixes, nil
}

// allAbsent reports whether no lexeme of l is in the counts.
func allAbsent(tc *termCounts, l lexemes) bool {
	for _, x := range append(append([]string(nil), l.english...), l.simple...) {
		if tc.count(x) > 0 {
			return false
		}
	}
	return true
}

// analysis is what the index can match of a question.
type analysis struct {
	terms     []searchTerm // rarest first
	unmatched float64      // weight of the question's words no section has
	gen       int64        // index generation of the counts (statsCache)
}

// analyze turns the question's terms into what the index can match: each
// term's tsquery (and the same without vocabulary synonyms) and how many
// sections it can match.
//
// An alternative is its english lexemes AND-ed (the stemmed form) OR its
// simple ones (exact tokens: host names, codes, flags; only when they
// differ), or its english stem as a prefix. A phrase counts as its rarest
// lexeme, a prefix as the sum of the lexemes it covers, and what no section
// has is left out of the queries, where every operand costs ranking time
// on every candidate. A correctable word no section contains gets the
// title and heading words most like it as alternatives. Terms of stop
// words only are dropped, and so are host names, numbers and codes no
// section contains; other words no section has only count in the share.
func (ix *Index) analyze(ctx context.Context, terms []term) (analysis, error) {
	if len(terms) == 0 {
		return analysis{}, nil
	}
	var texts, fixWords []string
	for _, t := range terms {
		for _, a := range t.alts {
			texts = append(texts, a.text)
		}
		if t.fixable {
			fixWords = append(fixWords, t.word)
		}
	}
	tc, err := ix.stats.termCounts(ctx, ix.db)
	if err != nil {
		return analysis{}, err
	}
	lex, fixes, err := ix.stats.lookup(ctx, ix.db, tc, texts, fixWords)
	if err != nil {
		return analysis{}, err
	}

	var out []searchTerm
	var unmatched float64
	for _, t := range terms {
		var all, typed, rank []string
		var sections, typedSections float64
		words := false // an alternative is more than stop words
		for _, a := range t.alts {
			l := lex[a.text]
			if len(l.english) == 0 {
				continue // stop words only
			}
			words = true
			var parts []string
			var c float64
			if a.prefix {
				for _, s := range l.english {
					c += tc.prefixCount(s)
				}
				if c > 0 {
					parts = append(parts, andLexemes(l.english, ":*"))
					rank = append(rank, operands(l.english, ":*")...)
				}
			} else {
				if c = rarest(l.english, tc); c > 0 {
					parts = append(parts, andLexemes(l.english, ""))
					rank = append(rank, operands(l.english, "")...)
				}
				if !sameSet(l.english, l.simple) && len(l.simple) > 0 {
					if cs := rarest(l.simple, tc); cs > 0 {
						parts = append(parts, andLexemes(l.simple, ""))
						c = max(c, cs)
					}
				}
			}
			if len(parts) == 0 {
				continue // no section has it: nothing to match or rank
			}
			q := "(" + strings.Join(parts, " | ") + ")"
			all = append(all, q)
			if a.typed {
				typed = append(typed, q)
				typedSections += c
			}
			sections += c
		}
		if sections == 0 {
			for _, f := range fixes[t.word] {
				// A guess at what was meant: a synonym, not the typed word.
				all = append(all, "("+quoteLexeme(f.lexeme)+")")
				rank = append(rank, quoteLexeme(f.lexeme))
				sections += f.sections
			}
		}
		switch {
		case !words && len(all) == 0, t.specific && len(all) == 0:
			// Stop words, or a host name or code no section has: not
			// part of the question as far as the runbooks go.
		case len(all) == 0:
			unmatched += t.weight // a word no section has still counts in the share
		default:
			out = append(out, searchTerm{query: strings.Join(all, " | "), exact: strings.Join(typed, " | "), rank: rank,
				weight: t.weight, sections: sections, exactSections: typedSections, specific: t.specific})
		}
	}
	// Rarest first; ties go to the more specific term (host names, codes).
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].sections != out[j].sections {
			return out[i].sections < out[j].sections
		}
		return out[i].specific && !out[j].specific
	})
	return analysis{terms: out, unmatched: unmatched, gen: tc.gen}, nil
}

// rarest is the count of a phrase: that of its rarest lexeme.
func rarest(lx []string, tc *termCounts) float64 {
	c := tc.count(lx[0])
	for _, x := range lx[1:] {
		c = min(c, tc.count(x))
	}
	return c
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]bool, len(a))
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

// andLexemes writes lexemes as a tsquery conjunction, each with suffix
// (":*" for a prefix).
func andLexemes(lx []string, suffix string) string {
	return strings.Join(operands(lx, suffix), " & ")
}

// operands writes lexemes as tsquery operands, each with suffix.
func operands(lx []string, suffix string) []string {
	out := make([]string, len(lx))
	for i, x := range lx {
		out[i] = quoteLexeme(x) + suffix
	}
	return out
}

// quoteLexeme quotes a lexeme for the tsquery input syntax: inside quotes,
// a quote is doubled and a backslash escaped, and nothing else is special.
func quoteLexeme(x string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(x) + "'"
}
