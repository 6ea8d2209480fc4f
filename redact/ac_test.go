package redact

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

type occurrence struct{ end, n, word int }

// naiveOccurrences is the reference: every position where a word starts,
// by strings.HasPrefix, with the number of the word's first copy.
func naiveOccurrences(words []string, text string) []occurrence {
	var out []occurrence
	for i := range len(text) + 1 {
		for w, word := range words {
			if word == "" || slices.Index(words, word) != w {
				continue
			}
			if strings.HasPrefix(text[i:], word) {
				out = append(out, occurrence{i + len(word), len(word), w})
			}
		}
	}
	return out
}

func sortOccurrences(o []occurrence) {
	slices.SortFunc(o, func(a, b occurrence) int {
		if a.end != b.end {
			return a.end - b.end
		}
		return a.n - b.n
	})
}

// Over a small alphabet, words overlap, nest and share suffixes in every
// way; the automaton must report exactly what the naive search finds.
func TestMatcherFindsWhatANaiveSearchFinds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "abc"
	word := func(max int) string {
		b := make([]byte, r.IntN(max)+1)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for round := range 1000 {
		// Half the rounds on a wide alphabet with many words, so states
		// have more edges than the matcher scans without a binary search.
		n := r.IntN(12) + 1
		alphabet = "abc"
		if round%2 == 1 {
			alphabet, n = "abcdefghijklmnopqrstuvwxyz0123456789_-", 200
		}
		words := make([]string, n)
		for i := range words {
			words[i] = word(5)
		}
		if round%7 == 0 {
			words = append(words, "", words[0]) // an empty word and a duplicate
		}
		text := word(40) + word(40)
		m := newMatcher(words)
		var got []occurrence
		m.walk(text, func(end, n, w int) bool {
			got = append(got, occurrence{end, n, w})
			return true
		})
		want := naiveOccurrences(words, text)
		sortOccurrences(got)
		sortOccurrences(want)
		if !slices.Equal(got, want) {
			t.Fatalf("words %q in %q:\n got %v\nwant %v", words, text, got, want)
		}
		if m.any(text) != (len(want) > 0) {
			t.Fatalf("any(%q) with %q = %v, want %v", text, words, m.any(text), len(want) > 0)
		}
	}
}

func TestMatcherOnTheRuleKeywords(t *testing.T) {
	m := newMatcher([]string{"xoxb-", "ghp_", "password", "pass"})
	var got []occurrence
	m.walk("db password: x; token xoxb-1", func(end, n, w int) bool {
		got = append(got, occurrence{end, n, w})
		return true
	})
	// "pass" ends at 7, "password" at 11, "xoxb-" at 27.
	want := []occurrence{{7, 4, 3}, {11, 8, 2}, {27, 5, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
