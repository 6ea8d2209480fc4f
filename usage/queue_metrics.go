package usage

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// jobStates are River's job states, all reported (zero included) so a
// dashboard's series never vanish.
var jobStates = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

// QueueCollector reports River's queue depth, opsbot_queue_jobs{state}, read
// from river_job at scrape time.
type QueueCollector struct {
	db      DBTX
	timeout time.Duration
	desc    *prometheus.Desc
	errs    prometheus.Counter
}

var _ prometheus.Collector = (*QueueCollector)(nil)

// NewQueueCollector returns the collector; register it on the /metrics
// registry.
func NewQueueCollector(db DBTX) *QueueCollector {
	return &QueueCollector{
		db:      db,
		timeout: 3 * time.Second,
		desc:    prometheus.NewDesc("opsbot_queue_jobs", "River jobs by state.", []string{"state"}, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opsbot_queue_scrape_errors_total", Help: "Failed reads of the River queue depth.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	c.errs.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errs.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts := map[string]float64{}
	rows, err := c.db.Query(ctx, `SELECT state::text, count(*) FROM river_job GROUP BY 1`)
	if err != nil {
		c.errs.Inc()
		return
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			c.errs.Inc()
			return
		}
		counts[state] = float64(n)
	}
	if rows.Err() != nil {
		c.errs.Inc()
		return
	}
	for _, s := range jobStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, counts[s], s)
	}
}
