package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type stringer string

func (s stringer) String() string { return string(s) }

// A log line that quotes user text (a message, an error wrapping a pasted
// value, a report) is written without the secrets in it.
func TestHandlerRedactsLogLines(t *testing.T) {
	const token = "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	const password = "Sup3rS3cretPw"
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewTextHandler(&buf, nil), nil))
	log = log.With("question", "why does "+token+" fail?")
	log.Info("user said: DB_PASSWORD="+password,
		"error", fmt.Errorf("connect: %w", errors.New("postgres://app:"+password+"@db:5432/app refused")),
		"report", stringer("weekly gaps: token "+token),
		slog.Group("turn", "text", "PGPASSWORD="+password+" psql"),
		"bytes", []byte("auth "+token),
		"count", 3)
	out := buf.String()
	for _, secret := range []string{token, password} {
		if strings.Contains(out, secret) {
			t.Errorf("log line holds %q: %s", secret, out)
		}
	}
	for _, want := range []string{"[REDACTED:slack-token]", "[REDACTED:password]", "count=3", "turn.text="} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %s lacks %q", out, want)
		}
	}
}
