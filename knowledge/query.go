package knowledge

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Query bounds: a pasted log must not become a huge OR. A question gives at
// most maxQueryTerms terms and maxQueryAlts alternatives in all; longer
// text is read up to maxQueryTokens words.
const (
	maxQueryTokens = 64
	maxQueryTerms  = 32
	maxQueryAlts   = 160
	maxTermBytes   = 64
)

// Term weights. A host name, number or code is kept in the question, but it
// counts for half a word in a section's share of the question, so "disk
// full on db-sg-02" ranks the disk runbook (both words) above the database
// runbook that only names the host.
const (
	wordWeight     = 1.0
	specificWeight = 0.5
)

// term is one thing the question asks about: a word as typed, or a phrase
// of the vocabulary, with the alternatives any of which counts as a match.
type term struct {
	word   string
	alts   []alt
	weight float64
	// specific terms (host names, numbers, codes) that no section contains
	// are left out: they cannot tell sections apart.
	specific bool
	// fixable terms (plain words) that no section contains are matched
	// against title and heading words by trigram similarity (typos).
	fixable bool
}

// alt is one alternative of a term: a word or phrase, or a word whose
// stem is matched as a prefix ("crashloop" finds CrashLoopBackOff).
// Synonyms from the vocabulary are not typed: a section that has the
// question's own words ranks above one that has only their synonyms.
type alt struct {
	text   string
	prefix bool
	typed  bool
}

// tokens splits text into lower-case words the database can take: valid
// UTF-8, no NUL, trimmed of surrounding punctuation ("/var" is var, "97%"
// is 97), each at most maxTermBytes.
func tokens(q string) []string {
	q = strings.ToValidUTF8(q, " ")
	q = strings.ReplaceAll(q, "\x00", " ")
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
		out = append(out, strings.ToLower(f))
		if len(out) == maxQueryTokens {
			break
		}
	}
	return out
}

// buildTerms turns a question into search terms: vocabulary phrases and
// words become a term with all their synonyms; other words keep their
// exact form, plus their stem as a prefix when long enough and the compound
// with the next word ("clean up" also finds cleanup, "crash loop"
// CrashLoopBackOff); host names also match their siblings (db-sg-02 finds
// db-sg-01) and "504s" or "200gb" also match the bare number. Terms with
// the same alternatives are merged.
func buildTerms(v *vocabulary, q string) []term {
	words := tokens(q)
	var out []term
	index := map[string]int{} // alternatives key -> position in out
	alts := 0
	add := func(t term) {
		key := altKey(t.alts)
		if i, ok := index[key]; ok {
			out[i].weight += t.weight
			return
		}
		if len(out) == maxQueryTerms || alts+len(t.alts) > maxQueryAlts {
			return
		}
		index[key] = len(out)
		alts += len(t.alts)
		out = append(out, t)
	}
	for i := 0; i < len(words); {
		if n, entry, syn := v.match(words[i:]); n > 0 {
			t := term{word: strings.Join(words[i:i+n], " "), weight: wordWeight}
			for _, s := range syn {
				t.alts = append(t.alts, alt{text: s, typed: s == entry})
			}
			add(t)
			i += n
			continue
		}
		w := words[i]
		t := term{word: w, alts: []alt{{text: w, typed: true}}, weight: wordWeight}
		switch {
		case specific(w):
			t.weight, t.specific = specificWeight, true
			if fam := hostFamily(w); fam != "" {
				t.alts = append(t.alts, alt{text: fam, typed: true})
			}
			if n := leadingNumber(w); n != "" && n != w {
				t.alts = append(t.alts, alt{text: n, typed: true})
			}
		case isASCIIWord(w):
			t.fixable = len(w) >= 4
			if len(w) >= 5 {
				t.alts = append(t.alts, alt{text: w, prefix: true, typed: true})
			}
			if i+1 < len(words) && isASCIIWord(words[i+1]) && len(w) >= 3 && len(w)+len(words[i+1]) >= 6 {
				if n, _, _ := v.match(words[i+1:]); n == 0 {
					t.alts = append(t.alts, alt{text: w + words[i+1], prefix: true, typed: true})
				}
			}
		}
		add(t)
		i++
	}
	return out
}

// altKey identifies a term by its alternatives, in order.
func altKey(alts []alt) string {
	var b strings.Builder
	for _, a := range alts {
		if a.prefix {
			b.WriteByte('*')
		}
		if a.typed {
			b.WriteByte('=')
		}
		b.WriteString(a.text)
		b.WriteByte(0)
	}
	return b.String()
}

// specific reports whether a word looks like a name or code (db-sg-01,
// err_conn_reset, 502, v1.2) rather than prose.
func specific(w string) bool {
	return strings.ContainsAny(w, "0123456789-_./")
}

// isASCIIWord reports whether w is all a-z: what prefix and typo matching
// take (the tsquery syntax they are built with needs nothing else).
func isASCIIWord(w string) bool {
	for _, r := range w {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return w != ""
}

// hostFamily is a host name without its trailing number, when what is left
// still names a family of hosts: db-sg-02 -> db-sg, build-sg-01 ->
// build-sg; web-03 -> "" (plain "web" would match any mention of the web).
func hostFamily(w string) string {
	trimmed := strings.TrimRight(w, "0123456789")
	if trimmed == w {
		return ""
	}
	trimmed = strings.TrimRight(trimmed, "-_.")
	if !strings.Contains(trimmed, "-") || !isASCIIWord(strings.ReplaceAll(trimmed, "-", "")) {
		return ""
	}
	return trimmed
}

// leadingNumber is the number a word starts with: "504s" -> 504, "200gb"
// -> 200; "" when it starts otherwise.
func leadingNumber(w string) string {
	i := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
	}
	return w[:i]
}
