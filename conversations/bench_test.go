package conversations

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
)

// benchConversations is how many conversations the paging benchmark's user
// owns; OPSBOT_BENCH_CONVERSATIONS shrinks it for a quick run.
func benchConversations() int {
	if n, err := strconv.Atoi(os.Getenv("OPSBOT_BENCH_CONVERSATIONS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// seedUser gives one user n conversations with distinct activity times, a
// third of them with messages (so activity differs from creation).
func seedUser(b *testing.B, pool *pgxpool.Pool, n int) uuid.UUID {
	b.Helper()
	ctx := context.Background()
	var owner uuid.UUID
	err := pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('bench-owner') RETURNING id`).Scan(&owner)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO conversations (owner_id, title, source, created_at, last_message_at, message_count)
		SELECT $1, 'conversation ' || g, 'api',
		       now() - make_interval(secs => g * 60),
		       CASE WHEN g % 3 = 0 THEN now() - make_interval(secs => g * 30) END,
		       g % 17
		FROM generate_series(1, $2) g`, owner, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE conversations`); err != nil {
		b.Fatal(err)
	}
	return owner
}

// BenchmarkListCursor compares keyset page 1 with keyset page 1000 (100 rows
// a page over 100k conversations): the deep page must cost about the same.
// The offset variant of page 1000 is there for contrast.
func BenchmarkListCursor(b *testing.B) {
	pool := testdb.New(b)
	n := benchConversations()
	owner := seedUser(b, pool, n)
	s := NewStore(pool)
	ctx := context.Background()
	const limit = 100
	deep := n/limit - 1 // index of page 1000 for 100k rows

	// The cursor that starts page `deep` is the one of the row just before it.
	var before Conversation
	{
		p, err := s.List(ctx, owner, ListOptions{PageOptions: PageOptions{Limit: 1, Skip: deep*limit - 1}})
		if err != nil || len(p.Items) != 1 {
			b.Fatalf("find deep row: %v", err)
		}
		before = p.Items[0]
	}
	deepCursor := conversationCursor(before)

	run := func(b *testing.B, o ListOptions) {
		for b.Loop() {
			p, err := s.List(ctx, owner, o)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Items) != limit {
				b.Fatalf("page size: got %d, want %d", len(p.Items), limit)
			}
		}
	}
	b.Run("page=1", func(b *testing.B) { run(b, ListOptions{PageOptions: PageOptions{Limit: limit}}) })
	b.Run("page=1000/cursor", func(b *testing.B) {
		run(b, ListOptions{PageOptions: PageOptions{Limit: limit, Cursor: deepCursor}})
	})
	b.Run("page=1000/offset", func(b *testing.B) {
		run(b, ListOptions{PageOptions: PageOptions{Limit: limit, Skip: deep * limit}})
	})
}
