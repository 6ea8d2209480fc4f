package knowledge

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The shipped vocabulary parses, and the groups the issue names are in it.
func TestVocabularyFile(t *testing.T) {
	v, err := parseVocabulary(vocabularyFile)
	if err != nil {
		t.Fatalf("vocabulary.txt: %v", err)
	}
	together := [][]string{
		{"disk", "volume", "partition", "mount", "filesystem", "space", "full"},
		{"pod", "container"},
		{"cert", "certificate", "tls", "https"},
		{"replica", "standby", "secondary"},
		{"approve", "sign off"},
		{"restart", "crash", "crashloop"},
		{"cleanup", "clean up"},
	}
	for _, words := range together {
		n, entry, syn := v.match(strings.Fields(words[0]))
		if n == 0 || entry != words[0] {
			t.Errorf("%q is not in the vocabulary", words[0])
			continue
		}
		for _, w := range words[1:] {
			if !slices.Contains(syn, w) {
				t.Errorf("%q and %q are not in one group", words[0], w)
			}
		}
	}
}

func TestParseVocabularyErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"empty entry", "disk, , volume", "empty entry"},
		{"single entry", "# c\ndisk\n", "at least two entries"},
		{"duplicate", "disk, volume, Disk", `"disk" twice`},
	}
	for _, tt := range tests {
		if _, err := parseVocabulary(tt.text); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestVocabularyMatch(t *testing.T) {
	v := mustParseVocabulary("disk, volume, full\nsign off, approve\ncert, certificate\ncrash, restart\nexpire, expiry\n")
	tests := []struct {
		words []string
		n     int
		entry string
	}{
		{[]string{"disks", "are", "full"}, 1, "disk"},      // plural
		{[]string{"sign", "off", "please"}, 2, "sign off"}, // phrase, longest first
		{[]string{"certs"}, 1, "cert"},
		{[]string{"crashing"}, 1, "crash"}, // -ing
		{[]string{"expired"}, 1, "expire"}, // -ed
		{[]string{"status"}, 0, ""},        // not in it, and not shortened into it
		{[]string{"sign"}, 0, ""},          // half a phrase
	}
	for _, tt := range tests {
		n, entry, _ := v.match(tt.words)
		if n != tt.n || entry != tt.entry {
			t.Errorf("match(%q) = %d %q, want %d %q", tt.words, n, entry, tt.n, tt.entry)
		}
	}
}

func TestBuildTerms(t *testing.T) {
	v := mustParseVocabulary("disk, volume, full\nclean up, cleanup\n")
	alts := func(t term) []string {
		var out []string
		for _, a := range t.alts {
			s := a.text
			if a.prefix {
				s += "*"
			}
			if a.typed {
				s = "=" + s
			}
			out = append(out, s)
		}
		return out
	}
	tests := []struct {
		q    string
		want map[string][]string // term word -> alternatives ("=" typed, "*" prefix)
	}{
		{"disk full on db-sg-02", map[string][]string{
			"disk":     {"=disk", "volume", "full"},
			"full":     {"disk", "volume", "=full"},
			"on":       {"=on"},
			"db-sg-02": {"=db-sg-02", "=db-sg"}, // its siblings
		}},
		{"crash loop after clean up", map[string][]string{
			"crash":    {"=crash", "=crash*", "=crashloop*"}, // prefix of the compound
			"loop":     {"=loop", "=loopafter*"},
			"after":    {"=after", "=after*"},
			"clean up": {"=clean up", "cleanup"},
		}},
		{"lots of 504s on web-03, 97%", map[string][]string{
			"lots":   {"=lots", "=lotsof*"},
			"of":     {"=of"},
			"504s":   {"=504s", "=504"},
			"on":     {"=on"},
			"web-03": {"=web-03"}, // "web" alone is no family
			"97":     {"=97"},
		}},
	}
	for _, tt := range tests {
		got := map[string][]string{}
		for _, term := range buildTerms(v, tt.q) {
			got[term.word] = alts(term)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("buildTerms(%q) =\n%v\nwant\n%v", tt.q, got, tt.want)
		}
	}
	// Weights: host names, numbers and codes count half a word; the same
	// alternatives twice make one term of both weights.
	terms := buildTerms(v, "disk disk db-sg-02")
	if len(terms) != 2 || terms[0].weight != 2 || terms[1].weight != 0.5 || !terms[1].specific || terms[0].specific {
		t.Errorf("buildTerms weights = %+v, want disk 2, db-sg-02 0.5 and specific", terms)
	}
	if n := len(buildTerms(v, strings.Repeat("disk volume partition alpha beta gamma ", 40)+strings.Repeat("w", 3))); n > maxQueryTerms {
		t.Errorf("%d terms, want at most %d", n, maxQueryTerms)
	}
}
