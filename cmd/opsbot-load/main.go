// Command opsbot-load puts a real opsbot server under load and measures
// it (make bench): it creates a fresh database, starts the fake model,
// Slack and Bot Framework in this process, runs `opsbot serve` on them,
// drives REST turns, signed Slack events (HTTP and Socket Mode) and Teams
// activities for a bounded time, and reports latencies, throughput as a
// ratio of pgbench -N on the same PostgreSQL server in the same run,
// memory, SQL per turn, and whether every question was answered exactly
// once and paid for once. It targets 127.0.0.1 only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/pgbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's flags.
type options struct {
	opsbot      string
	databaseURL string
	runbooks    string
	scenarios   []string
	duration    time.Duration
	clients     int
	rate        float64
	window      int
	workers     int
	keep        bool
	json        bool

	turnsPerConversation int
	modelLatency         time.Duration
	chunkDelay           time.Duration
	waitRate             float64
	waitDuration         time.Duration
	waitLatency          time.Duration
	pgbenchDuration      time.Duration
	settle               time.Duration
}

// modelReply is how the fake model answers outside slack-wait.
func (o options) modelReply() modelfake.Reply {
	return modelfake.Reply{Chunks: modelfake.Words(modelfake.DefaultText), Usage: &modelfake.Usage{Prompt: 100, Completion: 20},
		Latency: o.modelLatency, ChunkDelay: o.chunkDelay}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("opsbot-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: opsbot-load [flags]\n\nRuns opsbot serve on a fresh database with local fakes and puts it under load.\n\n")
		fs.PrintDefaults()
	}
	defURL := os.Getenv("DATABASE_URL")
	if defURL == "" {
		defURL = "postgres://127.0.0.1:5432/postgres?sslmode=disable"
	}
	scenarios := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios: "+strings.Join(allScenarios, ", "))
	fs.StringVar(&o.opsbot, "opsbot", "bin/opsbot", "the opsbot binary to run")
	fs.StringVar(&o.databaseURL, "database-url", defURL, "a database on the PostgreSQL server to use (default $DATABASE_URL); a fresh opsbot_load_* database is made beside it")
	fs.StringVar(&o.runbooks, "runbooks", "docs/runbooks", "runbooks to sync before the load, so turns include runbook search; empty skips")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario sends")
	fs.IntVar(&o.clients, "clients", 8, "concurrent clients (REST users, Slack and Teams senders)")
	fs.Float64Var(&o.rate, "rate", 0, "requests a second per scenario, open loop; 0: each client sends its next question once the last is answered")
	fs.IntVar(&o.window, "window", 1, "Slack and Teams with --rate 0: questions each sender keeps waiting for an answer at once (1: the next once the last is answered)")
	fs.IntVar(&o.workers, "workers", 1000, "the server's OPSBOT_WORKERS (turns run at once)")
	fs.BoolVar(&o.keep, "keep", false, "keep the load database")
	fs.BoolVar(&o.json, "json", false, "write the results as JSON to stdout (the report goes to stderr)")
	fs.IntVar(&o.turnsPerConversation, "turns-per-conversation", 5, "REST: questions in a conversation before a client starts a new one")
	fs.DurationVar(&o.modelLatency, "model-latency", 0, "the fake model thinks this long before answering")
	fs.DurationVar(&o.chunkDelay, "model-chunk-delay", 0, "the fake model streams its answer word by word with this delay")
	fs.Float64Var(&o.waitRate, "wait-rate", 500, "slack-wait: events a second")
	fs.DurationVar(&o.waitDuration, "wait-duration", 2*time.Second, "slack-wait: how long events are sent")
	fs.DurationVar(&o.waitLatency, "wait-latency", 30*time.Second, "slack-wait: how long the model sleeps")
	fs.DurationVar(&o.pgbenchDuration, "pgbench-duration", 0, "each pgbench -N run (default: --duration)")
	fs.DurationVar(&o.settle, "settle", 500*time.Millisecond, "wait after the last answer before counting (late duplicates)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			return o, fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	switch {
	case len(o.scenarios) == 0:
		return o, errors.New("no scenarios")
	case o.clients < 1:
		return o, errors.New("--clients must be at least 1")
	case o.duration <= 0 || o.waitDuration <= 0:
		return o, errors.New("durations must be positive")
	case o.rate < 0 || o.waitRate <= 0:
		return o, errors.New("--rate must not be negative, --wait-rate must be positive")
	case o.window < 1:
		return o, errors.New("--window must be at least 1")
	case o.turnsPerConversation < 1:
		return o, errors.New("--turns-per-conversation must be at least 1")
	}
	if o.pgbenchDuration <= 0 {
		o.pgbenchDuration = o.duration
	}
	return o, nil
}

// result is the whole run, as --json writes it.
type result struct {
	Time       time.Time        `json:"time"`
	GoVersion  string           `json:"go_version"`
	OS         string           `json:"os"`
	Arch       string           `json:"arch"`
	CPUs       int              `json:"cpus"`
	Clients    int              `json:"clients"`
	Duration   float64          `json:"duration_seconds"`
	Workers    int              `json:"workers"`
	Pgbench    []pgbenchFigure  `json:"pgbench"`
	Scenarios  []scenarioResult `json:"scenarios"`
	ServerExit int              `json:"server_exit_code"`
	Pass       bool             `json:"pass"`
	Problems   []string         `json:"problems,omitempty"`
}

// pgbenchFigure is one pgbench -N run.
type pgbenchFigure struct {
	Mode      string  `json:"mode"`
	Clients   int     `json:"clients"`
	TPS       float64 `json:"tps"`
	LatencyMs float64 `json:"latency_ms"`
}

// run is the command; it returns the exit code: 0 when every scenario
// was correct and the server stopped cleanly, 1 otherwise, 2 for bad
// flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "opsbot-load: %v\n", err)
		return 2
	}
	if _, err := os.Stat(o.opsbot); err != nil {
		fmt.Fprintf(stderr, "opsbot-load: %v (build it with make build, or pass --opsbot)\n", err)
		return 2
	}
	out := stdout
	if o.json {
		out = stderr
	}
	res, err := load(ctx, o, out, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "opsbot-load: %v\n", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "opsbot-load: %v\n", err)
			return 1
		}
	}
	if !res.Pass {
		return 1
	}
	return 0
}

// load runs the scenarios and reports them to out as they finish.
func load(ctx context.Context, o options, out, stderr io.Writer) (*result, error) {
	res := &result{Time: time.Now().UTC(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Clients: o.clients, Duration: o.duration.Seconds(), Workers: o.workers}
	fmt.Fprintf(out, "opsbot-load %s: %s %s/%s, %d CPUs; %s per scenario, %d clients, %s\n", res.Time.Format(time.RFC3339),
		res.GoVersion, res.OS, res.Arch, res.CPUs, o.duration, o.clients, rateText(o.rate))

	// pgbench first, on an idle server: the ceiling the turns are
	// compared with.
	pg1, pgN := pgbenchBaseline(ctx, o, out)
	for _, p := range []*pgbench.Result{pg1, pgN} {
		if p != nil {
			res.Pgbench = append(res.Pgbench, pgbenchFigure{Mode: p.Mode, Clients: p.Clients, TPS: p.TPS, LatencyMs: ms(p.Latency)})
		}
	}

	w, err := newWorld(ctx, o, stderr)
	if err != nil {
		return nil, err
	}
	defer w.close(context.Background())
	fmt.Fprintf(out, "server: %s serve (pid %d) on %s, database %s%s, OPSBOT_WORKERS=%d, server log %s (removed after a passing run unless --keep)\n\n", o.opsbot, w.srv.Pid(),
		strings.TrimPrefix(w.srv.Base, "http://"), w.dbName, map[bool]string{true: " (kept)", false: ""}[o.keep], o.workers, w.srvLog.Name())

	prog := newProgress(stderr)
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		sp := w.spec(name)
		r, err := w.run(ctx, sp, prog)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		base := pgN
		if sp.clients == 1 {
			base = pg1
		}
		if base != nil && !sp.wait {
			r.PgbenchC, r.PgbenchTPS = base.Clients, base.TPS
			r.Ratio = ratio(r.TurnsPerSec, base.TPS)
		}
		if pg1 != nil && sp.clients == 1 && sp.kind == "rest" {
			r.P50Txns = inTransactions(time.Duration(r.E2EP50Ms*float64(time.Millisecond)), pg1.TPS)
		}
		res.Scenarios = append(res.Scenarios, r)
		printScenario(out, r, sp, o)
		if !r.Correct {
			res.Problems = append(res.Problems, name+": "+strings.Join(r.Problems, "; "))
		}
	}
	if ctx.Err() != nil {
		res.Problems = append(res.Problems, "interrupted")
	}

	code, err := w.stop()
	res.ServerExit = code
	switch {
	case err != nil:
		res.Problems = append(res.Problems, fmt.Sprintf("server: %v", err))
	case code != 0:
		res.Problems = append(res.Problems, fmt.Sprintf("server exited %d after SIGTERM (log: %s)", code, w.srvLog.Name()))
	}
	res.Pass = len(res.Problems) == 0
	printSummary(out, res)
	if res.Pass && !o.keep {
		_ = os.Remove(w.srvLog.Name())
	} else {
		fmt.Fprintf(out, "server log kept: %s\n", w.srvLog.Name())
	}
	return res, nil
}

// pgbenchBaseline runs pgbench -N for one client and for --clients on a
// scratch database; nil figures when pgbench cannot run (reported).
func pgbenchBaseline(ctx context.Context, o options, out io.Writer) (one, many *pgbench.Result) {
	b, err := pgbench.Open(ctx, o.databaseURL)
	if err != nil {
		fmt.Fprintf(out, "pgbench: %v; no ratios\n", err)
		return nil, nil
	}
	defer func() { _ = b.Close() }()
	for _, c := range []int{1, o.clients} {
		if c == o.clients && one != nil && c == 1 {
			many = one
			break
		}
		r, err := b.Run(ctx, "-N", c, o.pgbenchDuration)
		if err != nil {
			fmt.Fprintf(out, "pgbench: %v; no ratios\n", err)
			return nil, nil
		}
		if c == 1 {
			one = &r
		} else {
			many = &r
		}
	}
	fmt.Fprintf(out, "%s\n%s\n", one, many)
	return one, many
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "each client sending its next question once the last is answered"
	}
	return fmt.Sprintf("%.0f requests/s open loop", rate)
}
