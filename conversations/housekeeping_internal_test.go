package conversations

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
)

// recordingPurger is a CopyPurger that remembers the cutoff it was given.
type recordingPurger struct {
	mu     sync.Mutex
	cutoff time.Time
}

func (p *recordingPurger) PurgeQuestionsBefore(_ context.Context, cutoff time.Time) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutoff = cutoff
	return 3, nil
}

// TestHousekeepingOnceAcrossInstances runs two River clients on one
// database, both with the archive and retention jobs due at one instant:
// each is enqueued and worked exactly once, and the retention purge also
// empties the other stores of people's words, with the messages' cutoff.
func TestHousekeepingOnceAcrossInstances(t *testing.T) {
	db := testdb.New(t)
	now := time.Date(2026, 11, 20, 3, 30, 0, 0, time.UTC)
	p := &recordingPurger{}
	h := &Housekeeping{DB: db, Config: HousekeepingConfig{AutoArchiveDays: 30, RetentionDays: 30},
		Now: func() time.Time { return now }, Copies: []CopyPurger{p}}
	due := &testriver.Soon{}
	for range 2 {
		workers := river.NewWorkers()
		if err := h.AddWorkers(workers); err != nil {
			t.Fatal(err)
		}
		testriver.Start(t, db, testriver.Config(workers, h.periodicJobs(due, due)))
	}
	kinds := []string{ArchiveIdleArgs{}.Kind(), RetentionArgs{}.Kind()}
	testriver.WaitFor(t, "both jobs completed", func() bool {
		return testriver.JobCount(t, db, kinds[0], "completed") == 1 && testriver.JobCount(t, db, kinds[1], "completed") == 1
	})
	time.Sleep(2 * time.Second) // room for a duplicate to show up, if there were one
	for _, k := range kinds {
		if n := testriver.JobCount(t, db, k, ""); n != 1 {
			t.Errorf("%s: got %d jobs, want 1 across both instances", k, n)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if want := now.Add(-30 * 24 * time.Hour); !p.cutoff.Equal(want) {
		t.Errorf("copies purged before %v, want %v", p.cutoff, want)
	}
}
