package knowledge

import (
	"reflect"
	"strings"
	"testing"
)

func TestCandidateTerms(t *testing.T) {
	// Terms as analyze returns them: counts of all alternatives, and of
	// the typed ones (exact; -1: none typed).
	type tc struct{ n, exact float64 }
	tests := []struct {
		name     string
		terms    []tc
		want     candidates
		fallback candidates
	}{
		{"small index: every term in full", []tc{{0, -1}, {3, 1}, {5, 5}},
			candidates{full: []int64{1, 2, 3}}, candidates{full: []int64{1}}},
		{"common terms left out", []tc{{3, 3}, {400, 400}, {2100, 2100}, {2200, 2200}},
			candidates{full: []int64{1, 2}}, candidates{full: []int64{1}}},
		{"budget reached exactly", []tc{{500, 500}, {500, 500}, {600, 600}},
			candidates{full: []int64{1, 2}}, candidates{full: []int64{1}}},
		// A vocabulary term whose typed word is rare but whose synonyms are
		// common: the typed word only, while the synonyms do not fit.
		{"typed word without its common synonyms", []tc{{900, 2}, {300, 300}},
			candidates{full: []int64{2}, exact: []int64{1}}, candidates{exact: []int64{1}}},
		{"synonyms join when they fit", []tc{{40, 2}, {300, 300}},
			candidates{full: []int64{1, 2}}, candidates{exact: []int64{1}}},
		{"every part common: all terms AND-ed", []tc{{1200, 1100}, {4000, 4000}},
			candidates{full: []int64{1, 2}, conjunction: true}, candidates{exact: []int64{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := make([]searchTerm, len(tt.terms))
			for i, c := range tt.terms {
				terms[i].sections = c.n
				if c.exact >= 0 {
					terms[i].exact, terms[i].exactSections = "q", c.exact
				}
			}
			got, fallback := candidateTerms(terms)
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(fallback, tt.fallback) {
				t.Errorf("candidateTerms = %+v, fallback %+v; want %+v, %+v", got, fallback, tt.want, tt.fallback)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"How do I fix ERR_CONN_RESET on db-sg-01?", []string{"how", "do", "i", "fix", "err_conn_reset", "on", "db-sg-01"}},
		{"--force 'quoted' (paren) /var 97%", []string{"force", "quoted", "paren", "var", "97"}},
		{"&|! :* '' \x00", nil},
		{"w " + strings.Repeat("x", 100), []string{"w", strings.Repeat("x", maxTermBytes)}},
	}
	for _, tt := range tests {
		if got := tokens(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("tokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := len(tokens(strings.Repeat("word ", 1000))); got != maxQueryTokens {
		t.Errorf("tokens of 1000 words kept %d, want %d", got, maxQueryTokens)
	}
}

func TestTermCounts(t *testing.T) {
	tc := &termCounts{lexemes: []string{"crash", "crashloop", "crashloopbackoff", "crashlooping", "disk"}, cum: []float64{0}}
	for _, n := range []float64{5, 1, 3, 2, 7} {
		tc.sections = append(tc.sections, n)
		tc.cum = append(tc.cum, tc.cum[len(tc.cum)-1]+n)
	}
	tests := []struct {
		x             string
		count, prefix float64
	}{
		{"crash", 5, 5 + 1 + 3 + 2},
		{"crashloop", 1, 1 + 3 + 2},
		{"crashloopb", 0, 3},
		{"disk", 7, 7},
		{"cr", 0, 5 + 1 + 3 + 2},
		{"a", 0, 0},
		{"zebra", 0, 0},
	}
	for _, tt := range tests {
		if c, p := tc.count(tt.x), tc.prefixCount(tt.x); c != tt.count || p != tt.prefix {
			t.Errorf("%q: count %v, prefix %v; want %v, %v", tt.x, c, p, tt.count, tt.prefix)
		}
	}
}
