package usage

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apacops/opsbot/internal/testdb"
)

func TestQueueCollector(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `INSERT INTO river_job (kind, args, state, max_attempts, queue, priority)
		VALUES ('x', '{}', 'available', 5, 'default', 1), ('x', '{}', 'available', 5, 'default', 1),
		       ('x', '{}', 'retryable', 5, 'default', 1)`); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewQueueCollector(db))
	want := `
# HELP opsbot_queue_jobs River jobs by state.
# TYPE opsbot_queue_jobs gauge
opsbot_queue_jobs{state="available"} 2
opsbot_queue_jobs{state="cancelled"} 0
opsbot_queue_jobs{state="completed"} 0
opsbot_queue_jobs{state="discarded"} 0
opsbot_queue_jobs{state="pending"} 0
opsbot_queue_jobs{state="retryable"} 1
opsbot_queue_jobs{state="running"} 0
opsbot_queue_jobs{state="scheduled"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "opsbot_queue_jobs"); err != nil {
		t.Error(err)
	}
}
