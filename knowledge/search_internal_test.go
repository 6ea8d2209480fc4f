package knowledge

import (
	"reflect"
	"strings"
	"testing"
)

func TestCandidateWords(t *testing.T) {
	tests := []struct {
		name     string
		words    []wordStat // rarest first, as searchableWords returns them
		want     []string
		wantConj bool
	}{
		{"small index: every word", []wordStat{{"kafka", 0}, {"lag", 0}, {"consumer", 0}}, []string{"kafka", "lag", "consumer"}, false},
		{"common words left out", []wordStat{{"ledger-writer", 3}, {"high", 400}, {"kafka", 2100}, {"lag", 2200}}, []string{"ledger-writer", "high"}, false},
		{"budget reached exactly", []wordStat{{"a1", 500}, {"b2", 500}, {"c3", 600}}, []string{"a1", "b2"}, false},
		{"every word common: all of them AND-ed", []wordStat{{"restart", 1200}, {"pod", 4000}}, []string{"restart", "pod"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, conj := candidateWords(tt.words)
			if !reflect.DeepEqual(got, tt.want) || conj != tt.wantConj {
				t.Errorf("candidateWords = %v, %v; want %v, %v", got, conj, tt.want, tt.wantConj)
			}
		})
	}
}

func TestQueryWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"How do I fix ERR_CONN_RESET on db-sg-01?", []string{"how", "do", "i", "fix", "err_conn_reset", "on", "db-sg-01"}},
		{"--force 'quoted' (paren) kafka kafka KAFKA", []string{"force", "quoted", "paren", "kafka"}},
		{"&|! :* '' \x00", nil},
		{strings.Repeat("w ", 10) + strings.Repeat("x", 100), []string{"w", strings.Repeat("x", maxTermBytes)}},
	}
	for _, tt := range tests {
		if got := queryWords(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("queryWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	many := strings.Repeat("a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb cc dd ee ff gg hh ", 2)
	if got := len(queryWords(many)); got != maxQueryTerms {
		t.Errorf("queryWords of %d distinct words kept %d, want %d", 34, got, maxQueryTerms)
	}
}
