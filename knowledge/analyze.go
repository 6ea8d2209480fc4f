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

// Cache bounds: when full, a cache starts over.
const (
	lexemeCacheSize = 8192
	statsCacheSize  = 65536
)

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

// statsCache remembers what analyze learnt from the database, so that a
// question whose words were seen before costs no query before its ranking:
//
//   - the lexemes of words and phrases: the text search configs never
//     change while the server runs, and the vocabulary and the words people
//     use repeat;
//   - the counts, for one index generation: they change only when sections
//     do, and then the generation changes. Every search reads the
//     generation with its results; one that finds a newer generation than
//     its counts empties the cache and runs again, so no search ranks with
//     stale counts, on any replica.
type statsCache struct {
	mu  sync.Mutex
	lex map[string]lexemes
	gen int64 // of the counts; -1: none cached
	stats
}

// observe records the generation a search saw; a new one drops the counts.
func (c *statsCache) observe(gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.lexemes == nil || len(c.lexemes)+len(c.stems)+len(c.fixes) > statsCacheSize {
		c.gen, c.stats = gen, newStats()
	}
}

// statsSQL learns, in one round trip, what the cache lacks: the lexemes of
// new texts ($6; $7 says which are also matched as prefixes); from
// knowledge_terms (kept exact by triggers), the sections containing each
// lexeme (those of $1 and of the new texts) and each prefix (the stems of
// $2 and of the new prefix texts, matched over the "C"-collated key); the
// corrections of the words ($3; their lexemes $5 by word number $4, or
// those of the new texts) that no section contains, by trigram similarity
// to the words of titles and headings (pg_trgm's % operator over the GIN
// index, then at least 0.4: "certifcate" is 0.64 from certificate, "leave"
// 0.375 from leak; the two most similar are kept); and the index
// generation. Rows: kind ('n' new text, 'l' lexeme, 'p' prefix, 'f' fix,
// 'g' generation), key (text, lexeme, stem, or word number), the fix, the
// count, the new text's english and simple lexemes.
const statsSQL = `
WITH new AS MATERIALIZED (
    SELECT n.t, n.prefix, tsvector_to_array(to_tsvector('english', n.t)) AS en,
           tsvector_to_array(to_tsvector('simple', n.t)) AS si
    FROM unnest($6::text[], $7::bool[]) AS n(t, prefix)
), lx AS (
    SELECT x AS lexeme FROM unnest($1::text[]) AS x
    UNION SELECT x FROM new, unnest(new.en || new.si) AS x
), st AS (
    SELECT x AS stem FROM unnest($2::text[]) AS x
    UNION SELECT x FROM new, unnest(new.en) AS x WHERE new.prefix
), fw AS (
    SELECT w.i, w.word, l.lexeme
    FROM unnest($3::text[]) WITH ORDINALITY AS w(word, i)
    JOIN unnest($4::int[], $5::text[]) AS l(i, lexeme) ON l.i = w.i
    UNION ALL
    SELECT w.i, w.word, x
    FROM unnest($3::text[]) WITH ORDINALITY AS w(word, i)
    JOIN new ON new.t = w.word AND cardinality(new.en) > 0, unnest(new.en || new.si) AS x
)
SELECT 'n', t, '', 0::bigint, en, si FROM new
UNION ALL
SELECT 'l', k.lexeme, '', k.sections, NULL, NULL FROM lx JOIN knowledge_terms k ON k.lexeme = lx.lexeme COLLATE "C"
UNION ALL
SELECT 'p', st.stem, '', (SELECT coalesce(sum(k.sections), 0) FROM knowledge_terms k
                          WHERE k.lexeme >= st.stem COLLATE "C" AND k.lexeme < (st.stem || chr(1114111)) COLLATE "C"),
       NULL, NULL
FROM st
UNION ALL
SELECT 'f', w.i::text, c.lexeme, c.sections, NULL, NULL
FROM (SELECT DISTINCT i, word FROM fw) AS w
CROSS JOIN LATERAL (
    SELECT k.lexeme, k.sections FROM knowledge_terms k
    WHERE k.headings > 0 AND k.lexeme % w.word AND similarity(k.lexeme, w.word) >= 0.4
    ORDER BY similarity(k.lexeme, w.word) DESC, k.lexeme
    LIMIT 2) c
WHERE NOT EXISTS (SELECT 1 FROM fw JOIN knowledge_terms k ON k.lexeme = fw.lexeme COLLATE "C" WHERE fw.i = w.i)
UNION ALL
SELECT 'g', '', '', generation, NULL, NULL FROM knowledge_state`

// get returns the lexemes of texts (prefix: matched as a prefix too) and
// the counts analyze needs for them and for the correctable words, from
// the cache and, for what it lacks, from the database (then cached); and
// the generation of the counts: -1 when they may mix two.
func (c *statsCache) get(ctx context.Context, db DBTX, texts []string, prefix map[string]bool, fixWords []string) (map[string]lexemes, stats, int64, error) {
	lex := make(map[string]lexemes, len(texts))
	out := newStats()
	var newTexts []string
	var newPrefix []bool
	c.mu.Lock()
	for _, t := range texts {
		if _, seen := lex[t]; seen {
			continue
		}
		l, ok := c.lex[t]
		lex[t] = l
		if !ok {
			newTexts = append(newTexts, t)
			newPrefix = append(newPrefix, prefix[t])
		}
	}
	// What the cache lacks of the known texts' counts.
	cachedGen, cached := c.gen, 0
	var needLex, needStems, needWords, needFixLex []string
	var needFixWord []int32
	for t, l := range lex {
		if _, known := c.lex[t]; !known {
			continue
		}
		for _, x := range append(append([]string(nil), l.english...), l.simple...) {
			if n, ok := c.lexemes[x]; ok {
				out.lexemes[x] = n
				cached++
			} else {
				needLex = append(needLex, x)
			}
		}
		if !prefix[t] {
			continue
		}
		for _, x := range l.english {
			if n, ok := c.stems[x]; ok {
				out.stems[x] = n
				cached++
			} else {
				needStems = append(needStems, x)
			}
		}
	}
	for _, w := range fixWords {
		l, known := c.lex[w]
		if known && len(l.english) == 0 {
			continue // stop words: nothing to correct
		}
		if f, ok := c.fixes[w]; ok && known {
			out.fixes[w] = f
			cached++
			continue
		}
		needWords = append(needWords, w)
		if known {
			for _, x := range append(append([]string(nil), l.english...), l.simple...) {
				needFixWord = append(needFixWord, int32(len(needWords)))
				needFixLex = append(needFixLex, x)
			}
		}
	}
	c.mu.Unlock()
	if len(newTexts)+len(needLex)+len(needStems)+len(needWords) == 0 {
		return lex, out, cachedGen, nil
	}

	rows, err := db.Query(ctx, statsSQL, needLex, needStems, needWords, needFixWord, needFixLex, newTexts, newPrefix)
	if err != nil {
		return nil, out, 0, fmt.Errorf("search runbooks: %w", err)
	}
	fetched := newStats()
	for _, w := range needWords {
		fetched.fixes[w] = nil
	}
	gen := int64(-1)
	var kind, key, fix string
	var n int64
	var en, si []string
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &fix, &n, &en, &si}, func() error {
		switch kind {
		case "n":
			lex[key] = lexemes{english: en, simple: si}
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
		return nil, out, 0, fmt.Errorf("search runbooks: %w", err)
	}
	// Lexemes no section has are not returned: they count 0.
	for _, x := range needLex {
		if _, ok := fetched.lexemes[x]; !ok {
			fetched.lexemes[x] = 0
		}
	}
	for _, t := range newTexts {
		l := lex[t]
		for _, x := range append(append([]string(nil), l.english...), l.simple...) {
			if _, ok := fetched.lexemes[x]; !ok {
				fetched.lexemes[x] = 0
			}
		}
	}

	c.observe(gen)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lex == nil || len(c.lex)+len(newTexts) > lexemeCacheSize {
		c.lex = make(map[string]lexemes, lexemeCacheSize)
	}
	for _, t := range newTexts {
		c.lex[t] = lex[t]
	}
	keep := c.gen == gen
	for k, v := range fetched.lexemes {
		out.lexemes[k] = v
		if keep {
			c.lexemes[k] = v
		}
	}
	for k, v := range fetched.stems {
		out.stems[k] = v
		if keep {
			c.stems[k] = v
		}
	}
	for k, v := range fetched.fixes {
		out.fixes[k] = v
		if keep {
			c.fixes[k] = v
		}
	}
	if cached > 0 && gen != cachedGen {
		return lex, out, -1, nil
	}
	return lex, out, gen, nil
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
	prefix := map[string]bool{}
	for _, t := range terms {
		for _, a := range t.alts {
			texts = append(texts, a.text)
			prefix[a.text] = prefix[a.text] || a.prefix
		}
		if t.fixable {
			fixWords = append(fixWords, t.word)
		}
	}
	lex, st, gen, err := ix.stats.get(ctx, ix.db, texts, prefix, fixWords)
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
