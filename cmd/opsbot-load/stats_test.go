package main

import (
	"io"
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond // 1..10 ms
	}
	three := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		// Nearest rank: ceil(p/100 × n), counted from 1.
		{"p50 of 1..10 is the 5th", ten, 50, 5 * time.Millisecond},
		{"p90 of 1..10 is the 9th", ten, 90, 9 * time.Millisecond},
		{"p99 of 1..10 is the 10th", ten, 99, 10 * time.Millisecond},
		{"p100 is the largest", ten, 100, 10 * time.Millisecond},
		{"p50 of three is the middle", three, 50, 20 * time.Millisecond},  // ceil(1.5) = 2
		{"p99 of three is the largest", three, 99, 30 * time.Millisecond}, // ceil(2.97) = 3
		{"p1 of three is the smallest", three, 1, 10 * time.Millisecond},  // ceil(0.03) = 1
		{"one value", []time.Duration{7 * time.Millisecond}, 99, 7 * time.Millisecond},
		{"no values", nil, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLatenciesSorted(t *testing.T) {
	var l latencies
	for _, ms := range []int{30, 10, 20} {
		l.add(time.Duration(ms) * time.Millisecond)
	}
	got := l.sorted()
	if len(got) != 3 || got[0] != 10*time.Millisecond || got[2] != 30*time.Millisecond {
		t.Errorf("got %v, want 10ms 20ms 30ms", got)
	}
}

func TestRatios(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// The figures: 505 turns/s beside pgbench -N -c 8 at 4,974 tps.
	if got := ratio(505, 4974); !near(got, 505.0/4974) || math.Abs(got-0.1015) > 0.0001 {
		t.Errorf("ratio(505, 4974) = %v, want about 0.1015", got)
	}
	if got := ratio(505, 0); got != 0 {
		t.Errorf("ratio with no baseline = %v, want 0", got)
	}
	// A 3.5 ms turn on a server doing 1,695 single-client transactions a
	// second (0.59 ms each) lasts 3.5 × 1.695 = 5.9325 of them.
	if got := inTransactions(3500*time.Microsecond, 1695); !near(got, 5.9325) {
		t.Errorf("inTransactions(3.5ms, 1695) = %v, want 5.9325", got)
	}
	if got := perSecond(505, 2*time.Second); got != 252.5 {
		t.Errorf("perSecond(505, 2s) = %v, want 252.5", got)
	}
	if got := perSecond(10, 0); got != 0 {
		t.Errorf("perSecond over no time = %v, want 0", got)
	}
	if got := ms(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("ms(1.5ms) = %v, want 1.5", got)
	}
}

func TestParseStatus(t *testing.T) {
	const status = "Name:\topsbot\nVmPeak:\t 1300000 kB\nVmHWM:\t   65536 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	got := parseStatus(status)
	if want := (memory{RSS: 40 << 20, HWM: 64 << 20}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.scenarios) != len(allScenarios) || o.duration != 10*time.Second || o.clients != 8 || o.pgbenchDuration != o.duration {
		t.Errorf("defaults %+v, want every scenario, 10s, 8 clients, pgbench for the same 10s", o)
	}
	o, err = parseFlags([]string{"--scenarios", "rest, slack-wait", "--duration", "2s"}, nil)
	if err != nil || len(o.scenarios) != 2 || o.scenarios[1] != scSlackWait || o.pgbenchDuration != 2*time.Second {
		t.Errorf("got %v %v, want rest and slack-wait, pgbench 2s", o.scenarios, err)
	}
	for _, bad := range [][]string{{"--scenarios", "rest,nope"}, {"--clients", "0"}, {"--scenarios", ","}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
