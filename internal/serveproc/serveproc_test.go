package serveproc

import (
	"slices"
	"testing"
)

// A server gets this process's environment less opsbot's own variables,
// then what the caller sets.
func TestEnviron(t *testing.T) {
	base := []string{"PATH=/usr/bin", "HOME=/root", "DATABASE_URL=postgres://prod", "OPSBOT_ADDR=0.0.0.0:80", "SLACK_BOT_TOKEN=xoxb-real",
		"OPENAI_API_KEY=sk-real", "AZURE_OPENAI_ENDPOINT=x", "TEAMS_APP_ID=y", "PGPORT=5433"}
	got := Environ(base, map[string]string{"DATABASE_URL": "postgres://scratch"})
	slices.Sort(got)
	want := []string{"DATABASE_URL=postgres://scratch", "HOME=/root", "PATH=/usr/bin", "PGPORT=5433"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
