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

	"github.com/apacops/opsbot/internal/scratchdb"
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

// scale is pgbench's -s: 10 makes a million accounts, enough that eight
// clients rarely touch the same rows.
const scale = 10

// Bench is a scratch database initialised for pgbench (pgbench -i), on
// which several runs can be made. Close drops it.
type Bench struct {
	adminURL string
	dbURL    string
}

// Open creates a scratch database on the server of adminURL and
// initialises it at scale 10.
func Open(ctx context.Context, adminURL string) (*Bench, error) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return nil, ErrNotInstalled
	}
	dbURL, err := scratchdb.Create(ctx, adminURL, "opsbot_pgbench_")
	if err != nil {
		return nil, err
	}
	b := &Bench{adminURL: adminURL, dbURL: dbURL}
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", strconv.Itoa(scale), dbURL).CombinedOutput(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return b, nil
}

// Close drops the scratch database.
func (b *Bench) Close() error {
	return scratchdb.Drop(context.Background(), b.adminURL, b.dbURL)
}

// Run runs pgbench in mode ("-N" or "-S") with clients clients (and as
// many threads) for d, in whole seconds, at least one.
func (b *Bench) Run(ctx context.Context, mode string, clients int, d time.Duration) (Result, error) {
	secs := max(1, int(d/time.Second))
	c := strconv.Itoa(clients)
	out, err := exec.CommandContext(ctx, "pgbench", mode, "-c", c, "-j", c, "-T", strconv.Itoa(secs), b.dbURL).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("pgbench %s: %w\n%s", mode, err, out)
	}
	return parse(mode, clients, out)
}

// parse reads the figures from pgbench's report.
func parse(mode string, clients int, out []byte) (Result, error) {
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

// Run creates a scratch database on the test server (testdb.AdminURL),
// initialises it, runs pgbench in mode ("-N" or "-S") with clients
// clients for d, and drops the database.
func Run(ctx context.Context, mode string, clients int, d time.Duration) (Result, error) {
	b, err := Open(ctx, testdb.AdminURL())
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = b.Close() }()
	return b.Run(ctx, mode, clients, d)
}
