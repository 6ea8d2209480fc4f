package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
)

// mb is bytes in MiB.
func mb(b int64) float64 { return float64(b) / (1 << 20) }

// describe says what a scenario did, in words.
func describe(sp spec, o options) string {
	switch {
	case sp.wait:
		return fmt.Sprintf("signed Slack events over HTTP, %.0f/s for %s, the model sleeping %s", sp.rate, sp.duration, o.waitLatency)
	}
	var what string
	switch sp.kind {
	case "rest":
		what = fmt.Sprintf("REST turns, %d questions per conversation", o.turnsPerConversation)
	case "slack":
		what = "signed Slack events over HTTP (app_mention and DM message), each a new thread"
	case "socket":
		what = "Slack events over Socket Mode, each a new thread"
	case "teams":
		what = "Teams channel messages mentioning the bot, each a new reply chain"
	}
	rate := rateText(sp.rate)
	if sp.kind != "rest" && sp.rate <= 0 && o.window > 1 {
		rate = fmt.Sprintf("each client keeping %d questions waiting for answers", o.window)
	}
	clients := fmt.Sprintf("%d clients", sp.clients)
	if sp.clients == 1 {
		clients = "1 client"
	}
	return fmt.Sprintf("%s; %s, %s, %s", what, clients, sp.duration, rate)
}

// printScenario writes one scenario's block of the report.
func printScenario(w io.Writer, r scenarioResult, sp spec, o options) {
	fmt.Fprintf(w, "%s — %s\n", r.Name, describe(sp, o))
	fmt.Fprintf(w, "  requests %d, errors %d, turns answered %d in %.1f s: %.1f turns/s", r.Requests, r.Errors, r.Turns, r.Seconds, r.TurnsPerSec)
	if r.PgbenchTPS > 0 {
		fmt.Fprintf(w, " = %.3f × pgbench -N -c %d (%.0f tps)", r.Ratio, r.PgbenchC, r.PgbenchTPS)
	}
	fmt.Fprintln(w)
	if r.AckP50Ms >= 0 {
		fmt.Fprintf(w, "  ack p50 %.2f ms, p99 %.2f ms; ", r.AckP50Ms, r.AckP99Ms)
	} else {
		fmt.Fprintf(w, "  ")
	}
	fmt.Fprintf(w, "end-to-end p50 %.2f ms, p99 %.2f ms", r.E2EP50Ms, r.E2EP99Ms)
	if r.P50Txns > 0 {
		fmt.Fprintf(w, " (p50 = %.1f pgbench -N transactions)", r.P50Txns)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  model calls %d, posted replies %d, ledger rows %d\n", r.ModelCalls, r.Posted, r.LedgerRows)
	if r.StmtsPerTurn >= 0 {
		fmt.Fprintf(w, "  per turn: %.1f SQL statements, %.1f round trips, %.2f ms in queries\n", r.StmtsPerTurn, r.RTPerTurn, r.QueryMsTurn)
	} else {
		fmt.Fprintf(w, "  per turn: SQL statements n/a, round trips n/a (the server has no /debug/sql)\n")
	}
	fmt.Fprintf(w, "  server RSS: %.1f MB now, %.1f MB at most during the scenario (sampled), %.1f MB peak since start (VmHWM)",
		mb(r.RSS), mb(r.MaxRSS), mb(r.PeakRSS))
	if r.MaxWaiting > 0 {
		fmt.Fprintf(w, "; up to %d model calls in flight", r.MaxWaiting)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if r.Correct {
		fmt.Fprintf(w, "  correctness PASS: %d questions, each answered exactly once; model calls = turns = ledger rows\n\n", r.Turns)
	} else {
		fmt.Fprintf(w, "  correctness FAIL: %s\n\n", strings.Join(r.Problems, "; "))
	}
}

// printSummary writes the table of every scenario and the verdict.
func printSummary(w io.Writer, res *result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tturns\tturns/s\t× pgbench -N\tack p50\tack p99\te2e p50\te2e p99\tstmts/turn\tRT/turn\tRSS max MB\tcorrect\t")
	na := func(v float64, f string) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf(f, v)
	}
	for _, r := range res.Scenarios {
		ratio := "n/a"
		if r.PgbenchTPS > 0 {
			ratio = fmt.Sprintf("%.3f (c%d)", r.Ratio, r.PgbenchC)
		}
		ok := "PASS"
		if !r.Correct {
			ok = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%.2f\t%.2f\t%s\t%s\t%.1f\t%s\t\n", r.Name, r.Turns, r.TurnsPerSec, ratio,
			na(r.AckP50Ms, "%.2f"), na(r.AckP99Ms, "%.2f"), r.E2EP50Ms, r.E2EP99Ms, na(r.StmtsPerTurn, "%.1f"), na(r.RTPerTurn, "%.1f"),
			mb(r.MaxRSS), ok)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "(latencies in ms; e2e is send to reply posted at the fake, or the REST response)\n")
	fmt.Fprintf(w, "server stopped with SIGTERM: exit %d\n", res.ServerExit)
	if res.Pass {
		fmt.Fprintf(w, "CORRECTNESS PASS: every question answered exactly once, one model call and one ledger row each\n")
	} else {
		fmt.Fprintf(w, "CORRECTNESS FAIL:\n  %s\n", strings.Join(res.Problems, "\n  "))
	}
}

// progress shows a running scenario on stderr: a bar redrawn in place
// on a terminal, plain lines otherwise.
type progress struct {
	w   io.Writer
	tty bool

	mu     sync.Mutex
	name   string
	status string
	stop   chan struct{}
	done   chan struct{}
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// start shows a scenario sending for d; counts gives the questions sent
// and answered so far.
func (p *progress) start(name string, d time.Duration, counts func() (sent, answered int64)) {
	p.mu.Lock()
	p.name, p.status = name, "sending"
	p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "%s: sending for %s\n", name, d)
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(p.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			el := time.Since(begin)
			frac := min(float64(el)/float64(d), 1)
			const width = 30
			fill := int(frac * width)
			s, a := counts()
			p.mu.Lock()
			status := p.status
			p.mu.Unlock()
			fmt.Fprintf(p.w, "\r\033[K%-12s [%s%s] %5.1fs  sent %d  answered %d  %s", name, strings.Repeat("=", fill),
				strings.Repeat(" ", width-fill), el.Seconds(), s, a, status)
			select {
			case <-p.stop:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
}

// phase names what the scenario does now.
func (p *progress) phase(s string) {
	p.mu.Lock()
	p.status = s
	name := p.name
	p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %s\n", name, s)
	}
}

// end clears the bar.
func (p *progress) end() {
	if p.tty && p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}
