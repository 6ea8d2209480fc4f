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

// lexemeCacheSize bounds the lexeme cache; when it is full it starts over.
const lexemeCacheSize = 8192

// lexemeCache remembers the lexemes of words and phrases already seen, so
// a search asks PostgreSQL's parser and dictionaries only about new ones:
// the configs never change while the server runs, and the vocabulary and
// the words people use repeat.
type lexemeCache struct {
	mu sync.Mutex
	m  map[string]lexemes
}

// lexemesSQL is how the cache learns new texts.
const lexemesSQL = `
SELECT t, tsvector_to_array(to_tsvector('english', t)), tsvector_to_array(to_tsvector('simple', t))
FROM unnest($1::text[]) AS t`

// lookup returns the lexemes of every text, asking the database for those
// not cached.
func (c *lexemeCache) lookup(ctx context.Context, db DBTX, texts []string) (map[string]lexemes, error) {
	out := make(map[string]lexemes, len(texts))
	var missing []string
	c.mu.Lock()
	for _, t := range texts {
		if l, ok := c.m[t]; ok {
			out[t] = l
		} else if _, dup := out[t]; !dup {
			out[t] = lexemes{}
			missing = append(missing, t)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, lexemesSQL, missing)
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	var t string
	var l lexemes
	_, err = pgx.ForEachRow(rows, []any{&t, &l.english, &l.simple}, func() error {
		out[t] = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search runbooks: %w", err)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m)+len(missing) > lexemeCacheSize {
		c.m = make(map[string]lexemes, lexemeCacheSize)
	}
	for _, t := range missing {
		c.m[t] = out[t]
	}
	c.mu.Unlock()
	return out, nil
}

// statsSQL counts, from knowledge_terms (kept exact by triggers), the
// sections containing each lexeme ($1) and each prefix ($2: stems, matched
// as lexeme prefixes over the "C"-collated key); corrects the words ($3,
// with their lexemes $5 by word number $4) that no section contains
// against the words of titles and headings by trigram similarity (pg_trgm's
// % operator over the GIN index, then at least 0.4: "certifcate" is 0.64
// from certificate, "leave" 0.375 from leak; the two most similar are
// kept); and reads
// the index generation. Rows: kind ('l' lexeme, 'p' prefix, 'f' fix, 'g'
// generation), key (the lexeme, stem, or word number), the fix, the count.
const statsSQL = `
SELECT 'l', k.lexeme, '', k.sections FROM knowledge_terms k WHERE k.lexeme = ANY (($1::text[]) COLLATE "C")
UNION ALL
SELECT 'p', p.stem, '', (SELECT coalesce(sum(k.sections), 0) FROM knowledge_terms k
                         WHERE k.lexeme >= p.stem COLLATE "C" AND k.lexeme < (p.stem || chr(1114111)) COLLATE "C")
FROM unnest($2::text[]) AS p(stem)
UNION ALL
SELECT 'f', w.i::text, c.lexeme, c.sections
FROM unnest($3::text[]) WITH ORDINALITY AS w(word, i)
CROSS JOIN LATERAL (
    SELECT k.lexeme, k.sections FROM knowledge_terms k
    WHERE k.headings > 0 AND k.lexeme % w.word AND similarity(k.lexeme, w.word) >= 0.4
    ORDER BY similarity(k.lexeme, w.word) DESC, k.lexeme
    LIMIT 2) c
WHERE NOT EXISTS (SELECT 1 FROM unnest($4::int[], $5::text[]) AS l(i, lexeme)
                  JOIN knowledge_terms k ON k.lexeme = l.lexeme COLLATE "C" WHERE l.i = w.i)
UNION ALL
SELECT 'g', '', '', generation FROM knowledge_state`

// statsCacheSize bounds the cached counts; when full, the cache starts over.
const statsCacheSize = 65536

// correction is a title or heading lexeme offered for a misspelt word.
type correction struct {
	lexeme   string
	sections float64
}

// stats are the counts analyze needs: sections per lexeme and per prefix,
// and the corrections of words no section contains.
type stats struct {
	lexemes map[string]float64
	stems   map[string]float64
	fixes   map[string][]correction
}

func newStats() stats {
	return stats{lexemes: map[string]float64{}, stems: map[string]float64{}, fixes: map[string][]correction{}}
}

// statsCache keeps stats for one index generation: they change only when
// sections do, and then the generation changes. Every search reads the
// generation with its results; one that finds a newer generation than its
// stats empties the cache and runs again, so no search ranks with stale
// counts, on any replica.
type statsCache struct {
	mu  sync.Mutex
	gen int64 // -1: nothing cached
	stats
}

// observe records the generation a search saw; a new one drops the cache.
func (c *statsCache) observe(gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.lexemes == nil || len(c.lexemes)+len(c.stems)+len(c.fixes) > statsCacheSize {
		c.gen, c.stats = gen, newStats()
	}
}

// get returns the stats of the given keys, from the cache and from the
// database for those not cached (then cached), and the generation they
// belong to: -1 when they may mix two.
func (c *statsCache) get(ctx context.Context, db DBTX, lexemes, stems []string, fixWords []string, fixLexemes [][]string) (stats, int64, error) {
	out := newStats()
	var needLex, needStems, needWords, needFixLex []string
	var needFixWord []int32
	c.mu.Lock()
	cachedGen, cached := c.gen, 0
	for _, x := range lexemes {
		if n, ok := c.lexemes[x]; ok {
			out.lexemes[x] = n
			cached++
		} else {
			needLex = append(needLex, x)
		}
	}
	for _, x := range stems {
		if n, ok := c.stems[x]; ok {
			out.stems[x] = n
			cached++
		} else {
			needStems = append(needStems, x)
		}
	}
	for i, w := range fixWords {
		if f, ok := c.fixes[w]; ok {
			out.fixes[w] = f
			cached++
			continue
		}
		needWords = append(needWords, w)
		for _, x := range fixLexemes[i] {
			needFixWord = append(needFixWord, int32(len(needWords)))
			needFixLex = append(needFixLex, x)
		}
	}
	c.mu.Unlock()
	if len(needLex)+len(needStems)+len(needWords) == 0 {
		return out, cachedGen, nil
	}

	fetched := newStats()
	for _, x := range needLex {
		fetched.lexemes[x] = 0 // a lexeme no section has is not returned
	}
	for _, w := range needWords {
		fetched.fixes[w] = nil
	}
	rows, err := db.Query(ctx, statsSQL, needLex, needStems, needWords, needFixWord, needFixLex)
	if err != nil {
		return out, 0, fmt.Errorf("search runbooks: %w", err)
	}
	gen := int64(-1)
	var kind, key, fix string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &fix, &n}, func() error {
		switch kind {
		case "l":
			fetched.lexemes[key] = float64(n)
		case "p":
			fetched.stems[key] = float64(n)
		case "f":
			i, err := strconv.Atoi(key)
			if err != nil || i < 1 || i > len(needWords) {
				return fmt.Errorf("correction for word %q", key)
			}
			w := needWords[i-1]
			fetched.fixes[w] = append(fetched.fixes[w], correction{lexeme: fix, sections: float64(n)})
		case "g":
			gen = n
		}
		return nil
	})
	if err != nil {
		return out, 0, fmt.Errorf("search runbooks: %w", err)
	}
	c.observe(gen)
	c.mu.Lock()
	defer c.mu.Unlock()
	cache := c.gen == gen
	for k, v := range fetched.lexemes {
		out.lexemes[k] = v
		if cache {
			c.lexemes[k] = v
		}
	}
	for k, v := range fetched.stems {
		out.stems[k] = v
		if cache {
			c.stems[k] = v
		}
	}
	for k, v := range fetched.fixes {
		out.fixes[k] = v
		if cache {
			c.fixes[k] = v
		}
	}
	if cached > 0 && gen != cachedGen {
		return out, -1, nil
	}
	return out, gen, nil
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
	var texts []string
	for _, t := range terms {
		for _, a := range t.alts {
			texts = append(texts, a.text)
		}
	}
	lex, err := ix.lexemes.lookup(ctx, ix.db, texts)
	if err != nil {
		return analysis{}, err
	}
	var allLex, stems, fixWords []string
	var fixLex [][]string
	for _, t := range terms {
		for _, a := range t.alts {
			l := lex[a.text]
			if a.prefix {
				stems = append(stems, l.english...)
			} else {
				allLex = append(append(allLex, l.english...), l.simple...)
			}
		}
		if l := lex[t.word]; t.fixable && len(l.english) > 0 {
			fixWords = append(fixWords, t.word)
			fixLex = append(fixLex, append(append([]string(nil), l.english...), l.simple...))
		}
	}
	st, gen, err := ix.stats.get(ctx, ix.db, allLex, stems, fixWords, fixLex)
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
					c += st.stems[s]
				}
				if c > 0 {
					parts = append(parts, andLexemes(l.english, ":*"))
					rank = append(rank, operands(l.english, ":*")...)
				}
			} else {
				if c = rarest(l.english, st.lexemes); c > 0 {
					parts = append(parts, andLexemes(l.english, ""))
					rank = append(rank, operands(l.english, "")...)
				}
				if !sameSet(l.english, l.simple) && len(l.simple) > 0 {
					if cs := rarest(l.simple, st.lexemes); cs > 0 {
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
			for _, f := range st.fixes[t.word] {
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
	return analysis{terms: out, unmatched: unmatched, gen: gen}, nil
}

// rarest is the count of a phrase: that of its rarest lexeme.
func rarest(lx []string, counts map[string]float64) float64 {
	c := counts[lx[0]]
	for _, x := range lx[1:] {
		c = min(c, counts[x])
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
