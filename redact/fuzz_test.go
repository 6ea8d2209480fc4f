package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRedact: whatever the text, redaction does not panic, keeps valid
// UTF-8 valid, reports ordered, non-overlapping findings inside the text,
// and is stable: redacting its own output changes nothing.
func FuzzRedact(f *testing.F) {
	for _, name := range []string{"secrets.txt", "clean.txt"} {
		for _, c := range readCorpus(f, name) {
			f.Add(c.text)
		}
	}
	r := Default()
	f.Fuzz(func(t *testing.T, s string) {
		found := r.Find(s)
		end := 0
		for _, fd := range found {
			if fd.Start < end || fd.End <= fd.Start || fd.End > len(s) {
				t.Fatalf("Find(%q): finding %+v out of order or bounds (previous end %d)", s, fd, end)
			}
			end = fd.End
		}
		out := r.Redact(s)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("Redact(%q) = %q, not valid UTF-8", s, out)
		}
		if len(found) > 0 && !strings.Contains(out, "[REDACTED:") {
			t.Fatalf("Redact(%q) = %q: findings but no marker", s, out)
		}
		if again := r.Redact(out); again != out {
			t.Fatalf("Redact is not stable on %q:\n once  %q\n twice %q", s, out, again)
		}
	})
}
