package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apacops/opsbot/internal/testdb"
)

// A short run of every scenario on a freshly built opsbot: each answers
// every question exactly once, one model call and one ledger row each,
// with sane figures, and the server stops cleanly.
func TestLoadRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds opsbot and runs it under load")
	}
	bin := filepath.Join(t.TempDir(), "opsbot")
	build := exec.Command("go", "build", "-o", bin, "github.com/apacops/opsbot/cmd/opsbot")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--opsbot", bin, "--database-url", testdb.AdminURL(), "--runbooks", "../../docs/runbooks",
		"--duration", "1s", "--clients", "2", "--wait-rate", "20", "--wait-duration", "1s", "--wait-latency", "1s",
		"--settle", "200ms", "--json"}, &stdout, &stderr)
	t.Logf("report:\n%s", stderr.String())
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	if !res.Pass || res.ServerExit != 0 || len(res.Scenarios) != len(allScenarios) || res.CPUs < 1 || res.GoVersion == "" {
		t.Errorf("pass %v, server exit %d, %d scenarios, %d CPUs, %q; want a passing run of all %d", res.Pass, res.ServerExit,
			len(res.Scenarios), res.CPUs, res.GoVersion, len(allScenarios))
	}
	for _, r := range res.Scenarios {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Correct || r.Errors != 0 || r.Turns == 0 {
				t.Errorf("correct %v, %d errors, %d turns (%v); want correct, none, some", r.Correct, r.Errors, r.Turns, r.Problems)
			}
			if r.LedgerRows != r.Turns || r.ModelCalls != r.Turns || r.Posted != r.Turns || r.Requests != r.Turns {
				t.Errorf("requests %d, ledger rows %d, model calls %d, posted %d; want each = %d turns", r.Requests, r.LedgerRows,
					r.ModelCalls, r.Posted, r.Turns)
			}
			if r.E2EP50Ms <= 0 || r.E2EP99Ms < r.E2EP50Ms || r.TurnsPerSec <= 0 || r.PeakRSS <= 0 || r.RSS <= 0 {
				t.Errorf("e2e p50 %v p99 %v, %v turns/s, RSS %d peak %d; want positive, p99 >= p50", r.E2EP50Ms, r.E2EP99Ms,
					r.TurnsPerSec, r.RSS, r.PeakRSS)
			}
			rest := r.Name == scRest1 || r.Name == scRest
			if rest != (r.AckP50Ms < 0) || (!rest && (r.AckP50Ms <= 0 || r.AckP99Ms < r.AckP50Ms)) {
				t.Errorf("ack p50 %v p99 %v; want n/a (-1) for REST only, else positive", r.AckP50Ms, r.AckP99Ms)
			}
			if r.Name == scSlackWait && r.E2EP50Ms < 1000 {
				t.Errorf("slack-wait e2e p50 %v ms, want at least the model's 1 s", r.E2EP50Ms)
			}
		})
	}
	if len(res.Pgbench) == 2 {
		if r := res.Scenarios[0]; r.P50Txns <= 0 || r.Ratio <= 0 || r.PgbenchC != 1 {
			t.Errorf("rest-1: p50 %v pgbench txns, ratio %v to -c %d; want positive, against one client", r.P50Txns, r.Ratio, r.PgbenchC)
		}
	}
}
