// Package redact finds secrets that people paste into chat (tokens, keys,
// passwords, connection strings) and replaces each with a marker naming its
// kind, "[REDACTED:slack-token]", never the secret itself.
//
// It runs two rule sets through one matcher: gitleaks' maintained default
// rule set (github.com/zricethezav/gitleaks/v8, about 220 provider rules,
// with their keywords, entropy thresholds and allowlists) and opsbot's own
// rules for shapes an ops team pastes that gitleaks leaves alone (labelled
// passwords, credentials in URLs, CLI password flags, private keys cut off
// before their END line, unlabelled AWS secret keys). The package imports
// nothing from opsbot, so every package that stores or logs user text can
// use it.
package redact

import (
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Redactor replaces secrets in text. Building one compiles a few hundred
// regular expressions (about 0.1 s), so a process builds one and shares it;
// it is safe for concurrent use.
type Redactor struct {
	rules []*rule
	// kw finds every rule keyword in one pass over the lower-cased text;
	// kwRules[i] are the rules keyword i wakes.
	kw       *keywordIndex
	kwRules  [][]int
	anywhere []int // rules without keywords: they look at every text
}

// New builds a Redactor from gitleaks' default rule set and opsbot's own
// rules.
func New() (*Redactor, error) {
	gl, err := gitleaksRules()
	if err != nil {
		return nil, err
	}
	// Own rules come first: where spans of several specific (or several
	// generic) rules overlap, the marker names the earliest rule, and
	// opsbot's names are the ones its users know ("slack-token").
	return build(append(ownRules(), gl...)), nil
}

var defaultRedactor = sync.OnceValue(func() *Redactor {
	r, err := New()
	if err != nil {
		// The rule set is embedded in the binary: a failure here is a
		// broken build, not a runtime condition.
		panic("redact: load the embedded rule set: " + err.Error())
	}
	return r
})

// Default returns the process-wide Redactor, built on first use.
func Default() *Redactor { return defaultRedactor() }

// String redacts s with the Default Redactor.
func String(s string) string { return Default().Redact(s) }

func build(rules []*rule) *Redactor {
	r := &Redactor{rules: rules}
	index := map[string]int{}
	var words []string
	for i, ru := range rules {
		if len(ru.keywords) == 0 {
			r.anywhere = append(r.anywhere, i)
			continue
		}
		for _, k := range ru.keywords {
			k = strings.ToLower(k)
			n, ok := index[k]
			if !ok {
				n = len(words)
				index[k] = n
				words = append(words, k)
				r.kwRules = append(r.kwRules, nil)
			}
			if l := r.kwRules[n]; len(l) == 0 || l[len(l)-1] != i {
				r.kwRules[n] = append(l, i)
			}
		}
	}
	r.kw = newKeywordIndex(words)
	return r
}

// span is a stretch of text to replace, and the rule that found it.
type span struct {
	start, end int
	rule       int
	generic    bool // the rule's
}

// Redact returns s with every secret it recognises replaced by a marker.
// Markers already in s are left as they are, so redacting twice changes
// nothing more.
func (r *Redactor) Redact(s string) string {
	spans := r.Find(s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, sp := range spans {
		b.WriteString(s[at:sp.Start])
		b.WriteString("[REDACTED:")
		b.WriteString(sp.Kind)
		b.WriteByte(']')
		at = sp.End
	}
	b.WriteString(s[at:])
	return b.String()
}

// Finding is one secret found in a text: s[Start:End] is the secret and
// Kind the rule's name, as written in its marker.
type Finding struct {
	Start, End int
	Kind       string
}

// Find returns the secrets in s, in order and without overlaps (spans of
// different rules that overlap are merged).
func (r *Redactor) Find(s string) []Finding {
	if s == "" {
		return nil
	}
	sc := newScan(s)
	var spans []span
	for _, i := range r.anywhere {
		spans = r.rules[i].find(sc, nil, i, spans)
	}
	hits := r.kw.find(sc.lower)
	if len(hits) > 0 {
		sort.Slice(hits, func(i, j int) bool { return hits[i].pos < hits[j].pos })
		// Group the hits by rule, in text order.
		byRule := map[int][]hit{}
		var order []int
		for _, h := range hits {
			for _, i := range r.kwRules[h.word] {
				if _, ok := byRule[i]; !ok {
					order = append(order, i)
				}
				byRule[i] = append(byRule[i], h)
			}
		}
		sort.Ints(order)
		for _, i := range order {
			spans = r.rules[i].find(sc, byRule[i], i, spans)
		}
	}
	if len(spans) == 0 {
		return nil
	}
	return r.merge(s, spans)
}

// marker matches the markers Redact writes.
var marker = regexp.MustCompile(`\[REDACTED:[a-z0-9-]+\]`)

// StripMarkers replaces each marker in s by a space, for text search over
// redacted text, where a marker's words would only add noise.
func StripMarkers(s string) string {
	if !strings.Contains(s, "[REDACTED:") {
		return s
	}
	return marker.ReplaceAllLiteralString(s, " ")
}

// merge orders spans, joins those that overlap and drops those that touch
// a marker already in s (that text was redacted before).
func (r *Redactor) merge(s string, spans []span) []Finding {
	var markers [][]int
	if strings.Contains(s, "[REDACTED:") {
		markers = marker.FindAllStringIndex(s, -1)
	}
	kept := spans[:0]
	for _, sp := range spans {
		if sp.end > sp.start && !overlapsAny(sp, markers) {
			kept = append(kept, sp)
		}
	}
	sort.Slice(kept, func(i, j int) bool {
		if kept[i].start != kept[j].start {
			return kept[i].start < kept[j].start
		}
		return kept[i].end > kept[j].end
	})
	var out []Finding
	var cur span
	for i, sp := range kept {
		if i > 0 && sp.start < cur.end {
			cur.end = max(cur.end, sp.end)
			if r.outranks(sp.rule, cur.rule) {
				cur.rule = sp.rule
			}
			continue
		}
		if i > 0 {
			out = append(out, Finding{Start: cur.start, End: cur.end, Kind: r.rules[cur.rule].name})
		}
		cur = sp
	}
	if len(kept) > 0 {
		out = append(out, Finding{Start: cur.start, End: cur.end, Kind: r.rules[cur.rule].name})
	}
	return out
}

// outranks reports whether rule a should name a merged span rather than
// rule b: a provider's rule over a generic one, then the earlier rule.
func (r *Redactor) outranks(a, b int) bool {
	if ga, gb := r.rules[a].generic, r.rules[b].generic; ga != gb {
		return gb
	}
	return a < b
}

func overlapsAny(sp span, ranges [][]int) bool {
	for _, m := range ranges {
		if sp.start < m[1] && m[0] < sp.end {
			return true
		}
	}
	return false
}
