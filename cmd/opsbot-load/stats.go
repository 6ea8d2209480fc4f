package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// sorted returns the durations so far, ascending.
func (l *latencies) sorted() []time.Duration {
	l.mu.Lock()
	out := slices.Clone(l.d)
	l.mu.Unlock()
	slices.Sort(out)
	return out
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest value v such that at least p% of the values are
// <= v. It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// ratio is a/b, or 0 when b is not positive (no baseline: no ratio).
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// perSecond is n events over d as a rate; 0 for no time.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// inTransactions expresses a latency as a number of transactions of a
// server doing tps of them one after another (1/tps each): lat × tps.
func inTransactions(lat time.Duration, tps float64) float64 {
	return lat.Seconds() * tps
}

// ms is a duration in milliseconds, for reports.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
