package bot

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

var testPool *pgxpool.Pool

func TestMain(m *testing.M) { os.Exit(testdb.RunMain(m, &testPool)) }

// fakeLLM answers with a fixed text and usage: at once, or when gate is
// closed.
type fakeLLM struct {
	mu     sync.Mutex
	reqs   []Request
	text   string
	model  string
	usage  *ProviderUsage
	err    error
	chunks []string
	// partial is the text that came before err (a stream cut off).
	partial string
	gate    chan struct{}
}

func (f *fakeLLM) Complete(ctx context.Context, req Request, onDelta func(string)) (Completion, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return Completion{}, ctx.Err()
		}
	}
	if f.err != nil {
		if f.partial != "" && onDelta != nil {
			onDelta(f.partial)
		}
		return Completion{Text: f.partial, Model: f.model}, f.err
	}
	text := f.text
	if len(f.chunks) > 0 {
		text = strings.Join(f.chunks, "")
	}
	if onDelta != nil {
		if len(f.chunks) > 0 {
			for _, c := range f.chunks {
				onDelta(c)
			}
		} else {
			onDelta(text)
		}
	}
	return Completion{Text: text, FinishReason: "stop", Model: f.model, Usage: f.usage}, nil
}

func (f *fakeLLM) calls() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// fakeRetriever returns fixed sections and records gaps and askers.
type fakeRetriever struct {
	mu     sync.Mutex
	hits   []knowledge.Result
	gaps   []string
	askers []knowledge.Asker
}

func (f *fakeRetriever) SearchFor(ctx context.Context, who knowledge.Asker, query string, limit int) ([]knowledge.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.askers = append(f.askers, who)
	return f.hits[:min(limit, len(f.hits))], nil
}

func (f *fakeRetriever) RecordGap(ctx context.Context, q string, userID, convID uuid.UUID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gaps = append(f.gaps, q)
	return nil
}

// fakeBudget admits or refuses and counts admissions, settlements and
// cancellations.
type fakeBudget struct {
	mu                        sync.Mutex
	refuse                    error
	warning                   string
	admitted, settled, cancel int
}

func (f *fakeBudget) Admit(ctx context.Context, userID uuid.UUID) (usage.Admission, error) {
	if f.refuse != nil {
		return usage.Admission{}, f.refuse
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admitted++
	return usage.Admission{ID: 7, Warning: f.warning}, nil
}

func (f *fakeBudget) Settle(ctx context.Context, tx usage.DBTX, a usage.Admission) error {
	if a.ID != 7 {
		return errors.New("settled a foreign admission")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settled++
	return nil
}

// QueueSettle counts the settlement when the batch reaches it.
func (f *fakeBudget) QueueSettle(b *pgx.Batch, a usage.Admission) {
	b.Queue(`SELECT $1::bigint`, a.ID).Exec(func(pgconn.CommandTag) error {
		return f.Settle(context.Background(), nil, a)
	})
}

func (f *fakeBudget) Cancel(ctx context.Context, a usage.Admission) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancel++
	return nil
}

func mustUser(tb testing.TB) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	if err := testPool.QueryRow(context.Background(), `INSERT INTO users (handle) VALUES ($1) RETURNING id`,
		"u-"+uuid.NewString()).Scan(&id); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return id
}

func mustConversation(tb testing.TB, owner uuid.UUID) uuid.UUID {
	tb.Helper()
	c, err := conversations.NewStore(testPool).Create(context.Background(),
		conversations.NewConversation{OwnerID: owner, Source: conversations.SourceAPI})
	if err != nil {
		tb.Fatalf("create conversation: %v", err)
	}
	return c.ID
}

func countRows(tb testing.TB, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := testPool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("count: %v", err)
	}
	return n
}

func ledgerRows(tb testing.TB, user uuid.UUID) int {
	return countRows(tb, `SELECT count(*) FROM usage_events WHERE user_id = $1`, user)
}

func messageRows(tb testing.TB, conv uuid.UUID) int {
	return countRows(tb, `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv)
}
