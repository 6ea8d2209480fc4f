package knowledge

import (
	_ "embed"
	"fmt"
	"strings"
)

// vocabularyFile is the ops vocabulary kept in the repository: one group of
// interchangeable words a line (see the file's header).
//
//go:embed vocabulary.txt
var vocabularyFile string

// vocabulary maps the words people type to groups of words that mean the
// same to people on call.
type vocabulary struct {
	groups  [][]string       // entries, each as its words joined by one space
	entries map[string][]int // an entry -> the groups it is in
	words   map[string]bool  // every word of every entry
	longest int              // most words in one entry
}

// parseVocabulary reads the vocabulary format: comment lines start with #,
// every other non-blank line is a group of at least two comma-separated
// entries.
func parseVocabulary(text string) (*vocabulary, error) {
	v := &vocabulary{entries: map[string][]int{}, words: map[string]bool{}}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var group []string
		seen := map[string]bool{}
		for _, raw := range strings.Split(line, ",") {
			words := tokens(raw)
			if len(words) == 0 {
				return nil, fmt.Errorf("vocabulary line %d: empty entry in %q", n+1, line)
			}
			e := strings.Join(words, " ")
			if seen[e] {
				return nil, fmt.Errorf("vocabulary line %d: %q twice", n+1, e)
			}
			seen[e] = true
			group = append(group, e)
			for _, w := range words {
				v.words[w] = true
			}
			v.longest = max(v.longest, len(words))
		}
		if len(group) < 2 {
			return nil, fmt.Errorf("vocabulary line %d: a group needs at least two entries: %q", n+1, line)
		}
		for _, e := range group {
			v.entries[e] = append(v.entries[e], len(v.groups))
		}
		v.groups = append(v.groups, group)
	}
	return v, nil
}

// mustParseVocabulary parses the embedded file; its test keeps it valid.
func mustParseVocabulary(text string) *vocabulary {
	v, err := parseVocabulary(text)
	if err != nil {
		panic(err)
	}
	return v
}

// base returns the form of w the vocabulary knows: w itself, or w without a
// plural, -ed or -ing ending ("certs" -> cert, "crashing" -> crash,
// "expired" -> expire). Words the vocabulary does not know come back as
// they are.
func (v *vocabulary) base(w string) string {
	if v.words[w] || len(w) <= 3 {
		return w
	}
	var forms []string
	switch {
	case strings.HasSuffix(w, "ies"):
		forms = []string{w[:len(w)-3] + "y"}
	case strings.HasSuffix(w, "es"):
		forms = []string{w[:len(w)-1], w[:len(w)-2]}
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss"):
		forms = []string{w[:len(w)-1]}
	case strings.HasSuffix(w, "ed"):
		forms = []string{w[:len(w)-1], w[:len(w)-2]}
	case strings.HasSuffix(w, "ing"):
		forms = []string{w[:len(w)-3] + "e", w[:len(w)-3]}
	}
	for _, f := range forms {
		if v.words[f] {
			return f
		}
	}
	return w
}

// match finds the longest vocabulary entry starting at words[0] and returns
// its length in words, the entry and the union of its groups' entries; 0
// when no entry starts there.
func (v *vocabulary) match(words []string) (n int, entry string, synonyms []string) {
	for n = min(v.longest, len(words)); n > 0; n-- {
		parts := make([]string, n)
		for i := range n {
			parts[i] = v.base(words[i])
		}
		entry = strings.Join(parts, " ")
		groups := v.entries[entry]
		if len(groups) == 0 {
			continue
		}
		seen := map[string]bool{}
		for _, g := range groups {
			for _, e := range v.groups[g] {
				if !seen[e] {
					seen[e] = true
					synonyms = append(synonyms, e)
				}
			}
		}
		return n, entry, synonyms
	}
	return 0, "", nil
}
