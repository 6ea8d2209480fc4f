package conversations_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/conversations"
)

// mustIdleConversation creates a conversation whose last activity was at.
func mustIdleConversation(tb testing.TB, db *pgxpool.Pool, owner uuid.UUID, at time.Time) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := db.QueryRow(context.Background(), `
		INSERT INTO conversations (owner_id, title, source, created_at, updated_at, last_message_at)
		VALUES ($1, 'old', 'api', $2, $2, $2) RETURNING id`, owner, at).Scan(&id)
	if err != nil {
		tb.Fatalf("create conversation: %v", err)
	}
	return id
}

func TestArchiveIdle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	owner := mustUser(t, "archive-"+uuid.NewString()[:8]).ID
	idle := mustIdleConversation(t, pool, owner, now.Add(-31*24*time.Hour))
	recent := mustIdleConversation(t, pool, owner, now.Add(-29*24*time.Hour))
	h := &conversations.Housekeeping{DB: pool, Now: func() time.Time { return now }}

	n, err := h.ArchiveIdle(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("archived %d, want at least the idle one", n)
	}
	store := conversations.NewStore(pool)
	if c, _ := store.Get(ctx, owner, idle); c.ArchivedAt == nil {
		t.Errorf("idle conversation not archived")
	}
	if c, _ := store.Get(ctx, owner, recent); c.ArchivedAt != nil {
		t.Errorf("recent conversation archived")
	}
	msgs, err := store.Recent(ctx, idle, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Role != "system" || msgs[0].Content != conversations.AutoArchiveNotice(30) {
		t.Errorf("got messages %+v, want the one auto-archive notice", msgs)
	}
	// Undo: unarchive, and the notice counts as activity, so it stays open.
	if _, err := store.Unarchive(ctx, owner, idle); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ArchiveIdle(ctx, 30); err != nil {
		t.Fatal(err)
	}
	if c, _ := store.Get(ctx, owner, idle); c.ArchivedAt != nil {
		t.Errorf("unarchived conversation archived again at once")
	}
}

func TestPurgeMessages(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	owner := mustUser(t, "purge-"+uuid.NewString()[:8]).ID
	conv := mustIdleConversation(t, pool, owner, now)
	var oldMsg, newMsg uuid.UUID
	for _, m := range []struct {
		at  time.Time
		dst *uuid.UUID
	}{{now.Add(-91 * 24 * time.Hour), &oldMsg}, {now.Add(-89 * 24 * time.Hour), &newMsg}} {
		if err := pool.QueryRow(ctx, `INSERT INTO messages (conversation_id, role, content, created_at)
			VALUES ($1, 'assistant', 'x', $2) RETURNING id`, conv, m.at).Scan(m.dst); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE conversations SET message_count = 2 WHERE id = $1`, conv); err != nil {
		t.Fatal(err)
	}
	// The old message's spend, on the ledger.
	if _, err := pool.Exec(ctx, `INSERT INTO usage_events (user_id, conversation_id, message_id, source, model, cost_micro_usd, occurred_at)
		VALUES ($1, $2, $3, 'api', 'gpt-4o', 777, $4)`, owner, conv, oldMsg, now.Add(-91*24*time.Hour)); err != nil {
		t.Fatal(err)
	}

	h := &conversations.Housekeeping{DB: pool}
	n, err := h.PurgeMessagesBefore(ctx, now.Add(-90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("deleted %d, want at least 1", n)
	}
	var left []uuid.UUID
	rows, _ := pool.Query(ctx, `SELECT id FROM messages WHERE conversation_id = $1`, conv)
	for rows.Next() {
		var id uuid.UUID
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if rows.Err() != nil || len(left) != 1 || left[0] != newMsg {
		t.Errorf("messages left %v, want only %v", left, newMsg)
	}
	var count int
	var msgID *uuid.UUID
	var cost int64
	if err := pool.QueryRow(ctx, `SELECT c.message_count, u.message_id, u.cost_micro_usd
		FROM conversations c JOIN usage_events u ON u.conversation_id = c.id WHERE c.id = $1`, conv).Scan(&count, &msgID, &cost); err != nil {
		t.Fatalf("ledger row gone? %v", err)
	}
	if count != 1 || msgID != nil || cost != 777 {
		t.Errorf("got message_count %d, ledger message %v cost %d; want 1, NULL, 777 (ledger kept)", count, msgID, cost)
	}
}

func TestHousekeepingConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		c       conversations.HousekeepingConfig
		wantErr bool
		jobs    int
	}{
		{"defaults with archive", conversations.HousekeepingConfig{AutoArchiveDays: 30}, false, 1},
		{"retention only", conversations.HousekeepingConfig{ArchiveSchedule: "off", AutoArchiveDays: 30, RetentionDays: 90}, false, 1},
		{"both", conversations.HousekeepingConfig{AutoArchiveDays: 30, RetentionDays: 90}, false, 2},
		{"nothing", conversations.HousekeepingConfig{}, false, 0},
		{"bare CRON_TZ", conversations.HousekeepingConfig{RetentionSchedule: "CRON_TZ=UTC"}, true, 0},
		{"negative days", conversations.HousekeepingConfig{RetentionDays: -1}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &conversations.Housekeeping{Config: tt.c}
			jobs, err := h.PeriodicJobs()
			if (err != nil) != tt.wantErr || (tt.c.Validate() != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if len(jobs) != tt.jobs {
				t.Errorf("got %d jobs, want %d", len(jobs), tt.jobs)
			}
		})
	}
}
