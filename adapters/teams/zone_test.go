package teams

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/users"
)

// A Teams user's days are their own: the activity's localTimezone becomes
// their time zone, so usage counts days there.
func TestLocalTimezoneBecomesTheUsersZone(t *testing.T) {
	h := newHarness(t)
	act := h.fake.Message("1:tz-1", convPersonal, chatID, "usage 7d", false, anaAAD)
	act["localTimezone"] = "Asia/Kolkata"
	if status, body := h.post(t, act, h.token(t)); status != http.StatusOK {
		t.Fatalf("post: %d %s", status, body)
	}
	card, _ := json.Marshal(cardOf(t, h.waitFor(t, "the usage card", 1, isMessage)[0].Activity))
	if !strings.Contains(string(card), "(Asia/Kolkata)") {
		t.Errorf("usage card %s, want its days counted in Asia/Kolkata", card)
	}
	if u := h.user(t, anaAAD); u.TimeZone != "Asia/Kolkata" {
		t.Errorf("stored zone %q, want Asia/Kolkata", u.TimeZone)
	}
}

// zoneCounter is the users store, counting time zone writes.
type zoneCounter struct {
	*users.Store
	mu   sync.Mutex
	sets int
}

func (z *zoneCounter) SetTimeZone(ctx context.Context, id uuid.UUID, zone string) error {
	z.mu.Lock()
	z.sets++
	z.mu.Unlock()
	return z.Store.SetTimeZone(ctx, id, zone)
}

// The zone is written only when it changes, and a zone this server does
// not know (or "Local", which would be the server's own) leaves the
// stored one and still lets the person in.
func TestLocalTimezoneWrittenOnlyWhenChanged(t *testing.T) {
	h := newHarness(t)
	zc := &zoneCounter{Store: users.NewStore(h.db, "Asia/Singapore")}
	handler := NewHandler(HandlerConfig{Identities: zc})
	ctx := context.Background()
	steps := []struct {
		zone     string
		want     string // the zone after the activity
		wantSets int    // writes so far
	}{
		{"", "Asia/Singapore", 0},
		{"Asia/Singapore", "Asia/Singapore", 0},
		{"Asia/Kathmandu", "Asia/Kathmandu", 1},
		{"Asia/Kathmandu", "Asia/Kathmandu", 1},
		{"Mars/Olympus_Mons", "Asia/Kathmandu", 2},
		{"Local", "Asia/Kathmandu", 2},
		{strings.Repeat("Asia/", 40), "Asia/Kathmandu", 2},
		{"Australia/Eucla", "Australia/Eucla", 3},
	}
	for i, s := range steps {
		body, _ := json.Marshal(h.fake.Message("1:tz-step", convPersonal, chatID, "hi", false, anaAAD))
		in, err := parseActivity(body)
		if err != nil {
			t.Fatal(err)
		}
		in.LocalTimezone = s.zone
		u, ok, err := handler.person(ctx, in)
		if err != nil || !ok {
			t.Fatalf("step %d (%q): %v, %v", i, s.zone, ok, err)
		}
		stored := h.user(t, anaAAD).TimeZone
		zc.mu.Lock()
		sets := zc.sets
		zc.mu.Unlock()
		if u.TimeZone != s.want || stored != s.want || sets != s.wantSets {
			t.Errorf("step %d (%q): zone %q, stored %q, %d writes; want %q and %d writes", i, s.zone, u.TimeZone, stored, sets, s.want, s.wantSets)
		}
	}
}
