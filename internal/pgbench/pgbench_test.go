package pgbench

import (
	"testing"
	"time"
)

// pgbench's report is read for its tps and average latency.
func TestParse(t *testing.T) {
	out := []byte(`pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: simple update>
scaling factor: 10
number of clients: 8
number of transactions actually processed: 49740
latency average = 1.608 ms
initial connection time = 12.551 ms
tps = 4974.331912 (without initial connection time)
`)
	got, err := parse("-N", 8, out)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Mode: "-N", Clients: 8, TPS: 4974.331912, Latency: 1608 * time.Microsecond}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parse("-N", 1, []byte("connection refused")); err == nil {
		t.Errorf("output without tps: no error")
	}
}
