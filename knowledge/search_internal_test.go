package knowledge

import (
	"reflect"
	"strings"
	"testing"
)

func TestCandidateTerms(t *testing.T) {
	tests := []struct {
		name     string
		sections []float64 // rarest first, as analyze returns them
		want     []int64
		wantConj bool
	}{
		{"small index: every term", []float64{0, 0, 0}, []int64{1, 2, 3}, false},
		{"common terms left out", []float64{3, 400, 2100, 2200}, []int64{1, 2}, false},
		{"budget reached exactly", []float64{500, 500, 600}, []int64{1, 2}, false},
		{"every term common: all of them AND-ed", []float64{1200, 4000}, []int64{1, 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := make([]searchTerm, len(tt.sections))
			for i, n := range tt.sections {
				terms[i].sections = n
			}
			got, conj := candidateTerms(terms)
			if !reflect.DeepEqual(got, tt.want) || conj != tt.wantConj {
				t.Errorf("candidateTerms = %v, %v; want %v, %v", got, conj, tt.want, tt.wantConj)
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
