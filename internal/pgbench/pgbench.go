// Package pgbench runs PostgreSQL's pgbench against a scratch database on
// the same server as opsbot's, so benchmarks and the load tool can report
// their figures as ratios of what the server itself does in the same run.
package pgbench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/apacops/opsbot/internal/testdb"
)

// Result is one pgbench run.
type Result struct {
	Mode    string // "-N" (simple writes) or "-S" (select only)
	Clients int
	TPS     float64
	// Latency is pgbench's average transaction latency.
	Latency time.Duration
}

// String renders the run as the figure a note quotes.
func (r Result) String() string {
	return fmt.Sprintf("pgbench %s -c %d: %.0f tps, %.3f ms/txn", r.Mode, r.Clients, r.TPS, float64(r.Latency.Microseconds())/1000)
}

// ErrNotInstalled is returned when there is no pgbench binary.
var ErrNotInstalled = errors.New("pgbench is not installed (Debian: postgresql-client)")

var (
	tpsLine     = regexp.MustCompile(`tps = ([0-9.]+)`)
	latencyLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// Run creates a scratch database on the test server (testdb.AdminURL),
// initialises it at scale 10, runs pgbench in mode ("-N" or "-S") with
// clients clients for d, and drops the database.
func Run(ctx context.Context, mode string, clients int, d time.Duration) (Result, error) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return Result{}, ErrNotInstalled
	}
	dbURL, err := testdb.Create(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = testdb.Drop(context.Background(), dbURL) }()
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "10", dbURL).CombinedOutput(); err != nil {
		return Result{}, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	secs := max(1, int(d/time.Second))
	c := strconv.Itoa(clients)
	out, err := exec.CommandContext(ctx, "pgbench", mode, "-c", c, "-j", c, "-T", strconv.Itoa(secs), dbURL).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("pgbench %s: %w\n%s", mode, err, out)
	}
	r := Result{Mode: mode, Clients: clients}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("no tps in pgbench output:\n%s", out)
	}
	r.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := latencyLine.FindSubmatch(out); m != nil {
		ms, _ := strconv.ParseFloat(string(m[1]), 64)
		r.Latency = time.Duration(ms * float64(time.Millisecond))
	}
	return r, nil
}
