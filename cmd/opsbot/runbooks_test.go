package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/internal/fakes/embedfake"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// runOn runs the binary's run() against the database at dbURL.
func runOn(t *testing.T, dbURL string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("DATABASE_URL", dbURL)
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunbooksSyncCommand(t *testing.T) {
	// Its own database: a sync mirrors one directory and would remove what
	// other tests indexed.
	_, dbURL := testdb.NewWithURL(t)
	dir := t.TempDir()
	for _, name := range []string{"disk-full.md", "kafka-consumer-lag.md", "dns-propagation.md"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "docs", "runbooks", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "core-dump.txt"), []byte("ELF\x00\x01"), 0o644); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		before  func()
		wantOut []string
	}{
		{"first sync", func() {}, []string{
			"[4/4] kafka-consumer-lag.md",
			"3 indexed (", "0 unchanged, 0 removed, 1 skipped",
			"indexed  disk-full.md",
			"skipped  core-dump.txt: binary",
		}},
		{"second sync", func() {}, []string{"0 indexed (0 sections), 3 unchanged, 0 removed, 1 skipped"}},
		{"after a delete", func() {
			if err := os.Remove(filepath.Join(dir, "dns-propagation.md")); err != nil {
				t.Fatal(err)
			}
		}, []string{"0 indexed (0 sections), 2 unchanged, 1 removed", "removed  dns-propagation.md"}},
	}
	for _, st := range steps {
		st.before()
		code, out, errOut := runOn(t, dbURL, "runbooks", "sync", dir)
		if code != 0 {
			t.Fatalf("%s: exit %d, stderr %s", st.name, code, errOut)
		}
		for _, want := range st.wantOut {
			if !strings.Contains(out, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", st.name, want, out)
			}
		}
		if st.name == "first sync" && !strings.Contains(errOut, "runbook skipped") {
			t.Errorf("%s: stderr lacks the skip warning:\n%s", st.name, errOut)
		}
	}
}

func TestRunbooksGapsCommand(t *testing.T) {
	pool, dbURL := testdb.NewWithURL(t)
	ix := knowledge.New(pool, time.Now)
	for _, q := range []string{"How do I reboot the Jakarta firewall?", "how do I reboot the jakarta firewall"} {
		if err := ix.RecordGap(context.Background(), q, uuid.Nil, uuid.Nil); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runOn(t, dbURL, "runbooks", "gaps", "--days", "7")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"Questions our runbooks could not answer", `"how do I reboot the jakarta firewall" — asked 2×`, "+08"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestRunbooksCommandLine(t *testing.T) {
	_, dbURL := testdb.NewWithURL(t)
	tests := []struct {
		name     string
		env      string // OPSBOT_GAPS_SCHEDULE
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no subcommand", "", []string{"runbooks"}, 2, "runbooks sync DIR"},
		{"unknown subcommand", "", []string{"runbooks", "reindex"}, 2, `unknown runbooks command "reindex"`},
		{"sync without dir", "", []string{"runbooks", "sync"}, 2, "exactly one directory"},
		{"sync of a file", "", []string{"runbooks", "sync", "runbooks.go"}, 1, "not a directory"},
		{"days out of range", "", []string{"runbooks", "gaps", "--days", "0"}, 2, "want 1 to 366"},
		{"bare CRON_TZ schedule", "CRON_TZ=UTC", []string{"runbooks", "gaps"}, 2, "OPSBOT_GAPS_SCHEDULE"},
		{"schedule off", "off", []string{"runbooks", "gaps"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OPSBOT_GAPS_SCHEDULE", tt.env)
			code, _, errOut := runOn(t, dbURL, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("run %v = %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// textNotifier passes reports to the test.
type textNotifier chan string

func (n textNotifier) Notify(_ context.Context, text string) error {
	n <- text
	return nil
}

func TestGapReportJobsWiring(t *testing.T) {
	pool := testdb.New(t)
	tests := []struct {
		schedule     string
		wantPeriodic int
	}{
		{knowledge.DefaultGapSchedule, 1},
		{"off", 0},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			cfg := Config{TimeZone: "Asia/Manila", GapsSchedule: tt.schedule}
			got, err := gapReportJobs(cfg, knowledge.New(pool, time.Now), textNotifier(make(chan string)), river.NewWorkers())
			if err != nil || len(got) != tt.wantPeriodic {
				t.Errorf("gapReportJobs = %d periodic jobs, %v; want %d", len(got), err, tt.wantPeriodic)
			}
		})
	}

	// The worker it registers runs on the serve River client and delivers
	// through the notifier.
	ix := knowledge.New(pool, time.Now)
	if err := ix.RecordGap(context.Background(), "Who approves firewall changes in Cebu?", uuid.Nil, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	reports := make(textNotifier, 1)
	workers := river.NewWorkers()
	if _, err := gapReportJobs(Config{TimeZone: "Asia/Manila", GapsSchedule: "off"}, knowledge.New(pool, time.Now), reports, workers); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	jobs, err := newRiver(pool, workers, 1, nil, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopRiver(jobs, log) })
	if _, err := jobs.Insert(context.Background(), knowledge.GapReportArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case text := <-reports:
		if !strings.Contains(text, "Who approves firewall changes in Cebu?") || !strings.Contains(text, "PST") {
			t.Errorf("report = %q, want the Cebu question with Manila times", text)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no gap report within 30s")
	}
}

// With a provider configured, runbooks sync embeds the sections through
// it, each call on the usage ledger of the service user; a provider that
// fails leaves the words indexed and says so; "off" turns embeddings off.
func TestRunbooksSyncEmbeds(t *testing.T) {
	pool, dbURL := testdb.NewWithURL(t)
	fake := embedfake.New(t)
	t.Setenv("OPENAI_BASE_URL", fake.URL())
	dir := t.TempDir()
	for _, name := range []string{"disk-full.md", "kafka-consumer-lag.md"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "docs", "runbooks", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := runOn(t, dbURL, "runbooks", "sync", dir)
	calls := fake.Calls()
	if code != 0 || len(calls) != 1 {
		t.Fatalf("exit %d, %d embedding calls; stderr %s", code, len(calls), errOut)
	}
	tokens := 0
	for _, in := range calls[0].Inputs {
		tokens += embedfake.Tokens(in)
	}
	if want := fmt.Sprintf("embeddings: %d sections embedded", len(calls[0].Inputs)); !strings.Contains(out, want) {
		t.Errorf("stdout lacks %q:\n%s", want, out)
	}
	var handle, source, model string
	var prompt int
	var cost int64
	if err := pool.QueryRow(context.Background(), `SELECT u.handle, e.source, e.model, e.prompt_tokens, e.cost_micro_usd
		FROM usage_events e JOIN users u ON u.id = e.user_id`).Scan(&handle, &source, &model, &prompt, &cost); err != nil {
		t.Fatalf("ledger: %v", err)
	}
	// $0.02 per 1M tokens: 0.02 micro-USD a token, rounded half up.
	if handle != "system:runbooks" || source != "embedding" || model != "text-embedding-3-small" ||
		prompt != tokens || cost != (int64(tokens)*2+50)/100 {
		t.Errorf("ledger row = %s %s %s %d tokens %d micro-USD; want system:runbooks embedding text-embedding-3-small %d tokens %d",
			handle, source, model, prompt, cost, tokens, (int64(tokens)*2+50)/100)
	}

	if err := os.WriteFile(filepath.Join(dir, "new.md"), []byte("# New\n\nSomething new.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake.Fail(http.StatusServiceUnavailable)
	code, out, errOut = runOn(t, dbURL, "runbooks", "sync", dir)
	if code != 0 || !strings.Contains(out, "1 indexed") || !strings.Contains(out, "searched by words until the next sync") {
		t.Errorf("sync with a failing provider: exit %d, stdout %s, stderr %s; want the file indexed and the failure told", code, out, errOut)
	}

	fake.Fail(0)
	t.Setenv("OPSBOT_EMBEDDING_MODEL", "off")
	before := len(fake.Calls())
	if code, _, errOut := runOn(t, dbURL, "runbooks", "sync", dir); code != 0 || len(fake.Calls()) != before {
		t.Errorf("sync with embeddings off: exit %d, %d new calls, stderr %s; want none", code, len(fake.Calls())-before, errOut)
	}
}
