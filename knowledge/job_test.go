package knowledge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// chanNotifier hands every report to the test.
type chanNotifier struct {
	texts chan string
	err   error
}

func (n *chanNotifier) Notify(_ context.Context, text string) error {
	if n.err != nil {
		return n.err
	}
	n.texts <- text
	return nil
}

// immediately is a schedule that is always due, so the periodic job runs as
// soon as the client is elected leader.
type immediately struct{}

func (immediately) Next(t time.Time) time.Time { return t }

func TestGapReportPeriodicJobRuns(t *testing.T) {
	pool := testdb.New(t)
	ctx := context.Background()
	ix := knowledge.New(pool, time.Now)
	for _, q := range []string{"How do I page the Jakarta NOC?", "how do i page the jakarta noc"} {
		if err := ix.RecordGap(ctx, q, uuid.Nil, uuid.Nil); err != nil {
			t.Fatal(err)
		}
	}

	notifier := &chanNotifier{texts: make(chan string, 4)}
	workers := river.NewWorkers()
	river.AddWorker(workers, &knowledge.GapReportWorker{Index: ix, Notifier: notifier, Location: time.UTC})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:      workers,
		PeriodicJobs: []*river.PeriodicJob{knowledge.GapReportJob(immediately{})},
		TestOnly:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	events, cancelEvents := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	defer cancelEvents()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := client.Stop(context.Background()); err != nil {
			t.Errorf("stop river client: %v", err)
		}
	})

	select {
	case text := <-notifier.texts:
		if !strings.Contains(text, `"how do i page the jakarta noc" — asked 2×`) {
			t.Errorf("report = %q, want the grouped Jakarta question", text)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no report delivered within 30s")
	}
	select {
	case ev := <-events:
		if ev.Kind != river.EventKindJobCompleted || ev.Job.Kind != (knowledge.GapReportArgs{}).Kind() {
			t.Errorf("event %s for job %s, want job_completed for %s", ev.Kind, ev.Job.Kind, (knowledge.GapReportArgs{}).Kind())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no job event within 30s")
	}
}

func TestGapReportWorkerDeliveryFailure(t *testing.T) {
	ix := knowledge.New(testdb.New(t), func() time.Time { return fixedNow })
	boom := errors.New("slack is down")
	w := &knowledge.GapReportWorker{Index: ix, Notifier: &chanNotifier{err: boom}}
	err := w.Work(context.Background(), &river.Job[knowledge.GapReportArgs]{JobRow: &rivertype.JobRow{}, Args: knowledge.GapReportArgs{Days: 1}})
	if !errors.Is(err, boom) {
		t.Errorf("Work with a failing notifier = %v, want it to wrap %v so River retries", err, boom)
	}
}

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC) // a Tuesday
	tests := []struct {
		spec     string
		wantNext time.Time // zero: disabled
		wantErr  bool
	}{
		{"", time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC), false}, // Monday 09:00 SGT
		{"CRON_TZ=Asia/Singapore 0 9 * * 1", time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC), false},
		{"CRON_TZ=Asia/Manila 30 8 * * 1-5", time.Date(2026, 11, 24, 0, 30, 0, 0, time.UTC), false},
		{"CRON_TZ=Australia/Sydney 0 9 * * 1", time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC), false}, // AEDT, UTC+11
		{"off", time.Time{}, false},
		{"OFF", time.Time{}, false},
		{"CRON_TZ=UTC", time.Time{}, true}, // panics inside robfig/cron unguarded
		{"TZ=UTC ", time.Time{}, true},
		{"CRON_TZ=Mars/Olympus 0 9 * * 1", time.Time{}, true},
		{"0 9 * *", time.Time{}, true},
		{"every monday", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			sched, err := knowledge.ParseSchedule(tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSchedule(%q) error = %v, want error %v", tt.spec, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if tt.wantNext.IsZero() {
				if sched != nil {
					t.Errorf("ParseSchedule(%q) = %v, want nil (disabled)", tt.spec, sched)
				}
				return
			}
			if got := sched.Next(from); !got.Equal(tt.wantNext) {
				t.Errorf("ParseSchedule(%q).Next(%v) = %v, want %v", tt.spec, from, got.UTC(), tt.wantNext)
			}
		})
	}
}
