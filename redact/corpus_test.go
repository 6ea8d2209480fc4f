package redact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusCase is one "=== name" block of a corpus file.
type corpusCase struct {
	name    string
	secrets []string // must not survive redaction
	marker  string   // the marker kind the output must show, when given
	text    string
}

// readCorpus parses testdata/NAME: blocks start with "=== name", then
// "secret: v" and "marker: k" header lines, then the text. Lines before
// the first block are comments.
func readCorpus(tb testing.TB, name string) []corpusCase {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	var out []corpusCase
	var cur *corpusCase
	var body []string
	flush := func() {
		if cur != nil {
			cur.text = strings.Join(body, "\n")
			out = append(out, *cur)
		}
	}
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "=== "):
			flush()
			cur, body = &corpusCase{name: strings.TrimPrefix(line, "=== ")}, nil
		case cur == nil:
		case body == nil && strings.HasPrefix(line, "secret: "):
			cur.secrets = append(cur.secrets, strings.TrimPrefix(line, "secret: "))
		case body == nil && strings.HasPrefix(line, "marker: "):
			cur.marker = strings.TrimPrefix(line, "marker: ")
		default:
			body = append(body, line)
		}
	}
	flush()
	return out
}

// Every kind of secret in the corpus is redacted: its value is gone and a
// marker stands in its place.
func TestSecretCorpus(t *testing.T) {
	cases := readCorpus(t, "secrets.txt")
	if len(cases) < 50 {
		t.Fatalf("secret corpus has %d kinds, want at least 50", len(cases))
	}
	r := Default()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.secrets) == 0 || c.text == "" {
				t.Fatalf("corpus case %q has no secret or no text", c.name)
			}
			got := r.Redact(c.text)
			for _, s := range c.secrets {
				if !strings.Contains(c.text, s) {
					t.Fatalf("corpus case %q: its text does not contain its secret %q", c.name, s)
				}
				if strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q, still holds %q", c.text, got, s)
				}
			}
			if !strings.Contains(got, "[REDACTED:") {
				t.Errorf("Redact(%q) = %q, want a marker", c.text, got)
			}
			if c.marker != "" && !strings.Contains(got, "[REDACTED:"+c.marker+"]") {
				t.Errorf("Redact(%q) = %q, want marker [REDACTED:%s]", c.text, got, c.marker)
			}
		})
	}
}

// Ordinary ops text passes through untouched: the sample runbooks, and
// commit hashes, UUIDs, host names, kubectl, SQL and log output.
func TestCleanCorpus(t *testing.T) {
	r := Default()
	check := func(t *testing.T, text string) {
		t.Helper()
		for _, f := range r.Find(text) {
			t.Errorf("found %s in clean text: %q (in %q)", f.Kind, text[f.Start:f.End], lineAt(text, f.Start))
		}
	}
	cases := readCorpus(t, "clean.txt")
	if len(cases) == 0 {
		t.Fatal("clean corpus is empty")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, c.text) })
	}
	runbooks, err := filepath.Glob(filepath.Join("..", "docs", "runbooks", "*.md"))
	if err != nil || len(runbooks) == 0 {
		t.Fatalf("no sample runbooks found (%v)", err)
	}
	for _, p := range runbooks {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			check(t, string(b))
		})
	}
}

func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}
