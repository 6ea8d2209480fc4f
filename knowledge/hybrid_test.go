package knowledge_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/apacops/opsbot/internal/fakes/embedfake"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

// ledgerRow is a usage_events row as the embedding tests check it.
type ledgerRow struct {
	User         uuid.UUID
	Conversation *uuid.UUID
	Source       string
	Model        string
	Prompt       int
	Completion   int
	Cost         int64
	Estimated    bool
}

func ledgerRows(tb testing.TB, h hybridIndex) []ledgerRow {
	tb.Helper()
	rows, err := h.pool.Query(context.Background(), `
		SELECT user_id, conversation_id, source, model, prompt_tokens, completion_tokens, cost_micro_usd, estimated
		FROM usage_events ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ledgerRow])
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// embeddingCost is text-embedding-3-small's price by hand: $0.02 per 1M
// tokens is 0.02 micro-USD a token, rounded half up once per call.
func embeddingCost(tokens int) int64 { return (int64(tokens)*2 + 50) / 100 }

// Every embedding call is on the usage ledger with its own source, priced
// from the price table: those of Sync under the service user, a
// question's under the asking user and conversation.
func TestEmbeddingsAreMetered(t *testing.T) {
	ctx := context.Background()
	h := mustHybridIndex(t, "testdata/runbooks")
	calls := h.fake.Calls()
	if len(calls) != 1 || len(calls[0].Inputs) != 61 {
		t.Fatalf("sync made %d calls, want 1 with the 61 section texts", len(calls))
	}
	syncTokens := 0
	for _, in := range calls[0].Inputs {
		syncTokens += embedfake.Tokens(in)
	}
	want := []ledgerRow{{User: h.service, Source: "embedding", Model: "text-embedding-3-small",
		Prompt: syncTokens, Cost: embeddingCost(syncTokens)}}
	if got := ledgerRows(t, h); !reflect.DeepEqual(got, want) {
		t.Fatalf("ledger after sync = %+v, want %+v", got, want)
	}
	if want[0].Cost == 0 {
		t.Fatalf("sync cost 0 micro-USD for %d tokens: the check proves nothing", syncTokens)
	}

	var user, conv uuid.UUID
	if err := h.pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('ana') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	if err := h.pool.QueryRow(ctx, `INSERT INTO conversations (owner_id, title, source) VALUES ($1, 't', 'api') RETURNING id`,
		user).Scan(&conv); err != nil {
		t.Fatal(err)
	}
	q := strings.Repeat("the standby database is behind the primary again after the weekend maintenance ", 4)
	if _, err := h.ix.SearchFor(ctx, knowledge.Asker{UserID: user, ConversationID: conv}, q, 3); err != nil {
		t.Fatal(err)
	}
	tokens := embedfake.Tokens(q)
	want = append(want, ledgerRow{User: user, Conversation: &conv, Source: "embedding", Model: "text-embedding-3-small",
		Prompt: tokens, Cost: embeddingCost(tokens)})
	if got := ledgerRows(t, h); !reflect.DeepEqual(got, want) {
		t.Errorf("ledger after a search = %+v, want %+v", got, want)
	}
}

// A failing or slow embeddings endpoint leaves search lexical and working:
// the same results as an index without embeddings, no error, and nothing
// on the ledger for the failed call. A sync indexes the words and says
// which sections have no vector yet.
func TestHybridFallsBackToLexical(t *testing.T) {
	ctx := context.Background()
	lexical := mustIndex(t, "testdata/runbooks")
	h := mustHybridIndex(t, "testdata/runbooks")
	slow := mustHybridIndexTimeout(t, h, 200*time.Millisecond)
	tests := []struct {
		name  string
		setup func(f *embedfake.Server)
	}{
		{"server error", func(f *embedfake.Server) { f.Fail(http.StatusInternalServerError) }},
		{"rate limited", func(f *embedfake.Server) { f.Fail(http.StatusTooManyRequests) }},
		{"slower than the query timeout", func(f *embedfake.Server) { f.Delay(5 * time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ledgerRows(t, h))
			tt.setup(h.fake)
			t.Cleanup(func() { h.fake.Fail(0); h.fake.Delay(0) })
			for _, q := range []string{"the standby is behind", "certifcate expird", "PGW-5003"} {
				want, err := lexical.Search(ctx, q, 3)
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				got, err := slow.Search(ctx, q, 3)
				if err != nil {
					t.Fatalf("Search(%q): %v, want lexical results", q, err)
				}
				if d := time.Since(t0); d > 2*time.Second {
					t.Errorf("Search(%q) took %s, want about the 200ms query timeout", q, d)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Search(%q) = %+v\nwant the lexical %+v", q, got, want)
				}
			}
			if n := len(ledgerRows(t, h)); n != before {
				t.Errorf("ledger rows %d -> %d, want no row for failed calls", before, n)
			}
		})
	}

	t.Run("sync while the endpoint fails", func(t *testing.T) {
		h := mustHybridIndex(t, "")
		h.fake.Fail(http.StatusBadGateway)
		st, err := h.ix.Sync(ctx, "testdata/runbooks", nil)
		if err != nil || len(st.Indexed) != 10 || st.Embedded != 0 || !strings.Contains(st.EmbedFailed, "502") {
			t.Fatalf("Sync = %+v, %v; want 10 files indexed and the embedding failure reported", st, err)
		}
		res, err := h.ix.Search(ctx, "patroni no leader", 1)
		if err != nil || len(res) != 1 || res[0].Path != "database-failover.md" {
			t.Errorf("Search after a sync without vectors = %+v, %v; want the failover runbook", res, err)
		}
		h.fake.Fail(0)
		if st, err := h.ix.Sync(ctx, "testdata/runbooks", nil); err != nil || st.Embedded != 61 || len(st.Indexed) != 0 {
			t.Errorf("next sync = %+v, %v; want the 61 sections embedded, no file reindexed", st, err)
		}
	})
}

// mustHybridIndexTimeout is another index on h's database and embeddings
// server with the given question timeout.
func mustHybridIndexTimeout(tb testing.TB, h hybridIndex, timeout time.Duration) *knowledge.Index {
	tb.Helper()
	emb := mustEmbedderFor(tb, h.fake)
	return knowledge.New(h.pool, func() time.Time { return fixedNow }, knowledge.WithEmbeddings(knowledge.Embeddings{
		Embedder: emb, Model: emb.Model(), ServiceUser: h.service, QueryTimeout: timeout}))
}

// Sync embeds only texts it has no vector for: an unchanged re-sync calls
// nothing, an edited section is the only text sent, and vectors no section
// uses are deleted.
func TestSyncEmbedsChangedSectionsOnly(t *testing.T) {
	ctx := context.Background()
	dir := copyRunbooks(t)
	h := mustHybridIndex(t, dir)
	if n := len(h.fake.Calls()); n != 1 {
		t.Fatalf("first sync: %d calls, want 1", n)
	}
	if st, err := h.ix.Sync(ctx, dir, nil); err != nil || st.Embedded != 0 || len(h.fake.Calls()) != 1 {
		t.Fatalf("unchanged re-sync: %+v, %v, %d calls; want nothing embedded", st, err, len(h.fake.Calls()))
	}

	path := filepath.Join(dir, "disk-full.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "A volume can be modified once every 6 hours.", "A volume can be modified once every 6 hours; plan ahead.", 1)
	mustWrite(t, path, []byte(edited))
	st, err := h.ix.Sync(ctx, dir, nil)
	if err != nil || st.Embedded != 1 {
		t.Fatalf("after editing one section: %+v, %v; want 1 section embedded", st, err)
	}
	calls := h.fake.Calls()
	if len(calls) != 2 || len(calls[1].Inputs) != 1 || !strings.HasPrefix(calls[1].Inputs[0], "Disk full on a host > Grow the EBS volume\n\n") ||
		!strings.Contains(calls[1].Inputs[0], "plan ahead") {
		t.Fatalf("calls = %+v, want one call with the edited section only", calls[1:])
	}

	if err := os.Remove(filepath.Join(dir, "kafka-consumer-lag.md")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ix.Sync(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	var vectors, texts int
	if err := h.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM knowledge_embeddings),
		(SELECT count(DISTINCT embed_sha) FROM knowledge_sections)`).Scan(&vectors, &texts); err != nil {
		t.Fatal(err)
	}
	if vectors != texts {
		t.Errorf("%d vectors for %d section texts, want one each (unused ones deleted)", vectors, texts)
	}
}

// Two replicas on one database: what one syncs, the other's next search
// finds, though it cached the counts of the same words before (lexical),
// and its section vectors (hybrid).
func TestSearchSeesAnotherReplicasSync(t *testing.T) {
	ctx := context.Background()
	dir := copyRunbooks(t)
	h := mustHybridIndex(t, dir)
	replicas := map[string]*knowledge.Index{
		"lexical": knowledge.New(h.pool, func() time.Time { return fixedNow }),
		"hybrid":  mustHybridIndexTimeout(t, h, time.Second),
	}
	// A host name no section has is left out of a search: only fresh
	// counts bring it back. Without it, "renew" alone ranks the TLS
	// runbook first.
	queries := []string{"qz-sg-07", "renew qz-sg-07"}
	for name, ix := range replicas {
		for _, q := range queries {
			if res, err := ix.Search(ctx, q, 3); err != nil || len(res) > 0 && res[0].Path == "zebracorn.md" {
				t.Fatalf("%s before the sync: %+v, %v", name, res, err)
			}
		}
	}
	mustWrite(t, filepath.Join(dir, "zebracorn.md"), []byte("# Zebracorn\n\nqz-sg-07 runs zlm. On qz-sg-07, renew with zlm.\n"))
	if _, err := h.ix.Sync(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	for name, ix := range replicas {
		for _, q := range slices.Backward(queries) {
			res, err := ix.Search(ctx, q, 3)
			if err != nil || len(res) == 0 || res[0].Path != "zebracorn.md" {
				t.Errorf("%s, %q after the other's sync: %+v, %v; want zebracorn.md first", name, q, res, err)
			}
		}
	}
}

// An embedding call nobody could be charged for is not made: Sync without a
// service user says so, and a search without an asker is lexical.
func TestEmbeddingsNeedSomeoneToCharge(t *testing.T) {
	ctx := context.Background()
	h := mustHybridIndex(t, "")
	emb := mustEmbedderFor(t, h.fake)
	ix := knowledge.New(h.pool, func() time.Time { return fixedNow }, knowledge.WithEmbeddings(knowledge.Embeddings{Embedder: emb}))
	st, err := ix.Sync(ctx, "testdata/runbooks", nil)
	if err != nil || !strings.Contains(st.EmbedFailed, "no user to charge") {
		t.Fatalf("Sync = %+v, %v; want the embedding refused for want of a user", st, err)
	}
	if res, err := ix.Search(ctx, "patroni no leader", 1); err != nil || len(res) != 1 || res[0].Path != "database-failover.md" {
		t.Errorf("Search = %+v, %v; want the lexical result", res, err)
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Errorf("embedding calls = %d, want none", n)
	}
	if rows := ledgerRows(t, h); len(rows) != 0 {
		t.Errorf("ledger = %+v, want nothing", rows)
	}
}

// An embeddings model missing from the price table is recorded at cost 0
// and flagged unpriced, like a chat model (issue 12), never passed off as
// free.
func TestUnpricedEmbeddingsAreFlagged(t *testing.T) {
	ctx := context.Background()
	h := mustHybridIndex(t, "")
	emb := mustEmbedderFor(t, h.fake)
	ix := knowledge.New(h.pool, func() time.Time { return fixedNow }, knowledge.WithEmbeddings(knowledge.Embeddings{
		Embedder: emb, Model: emb.Model(), ServiceUser: h.service, Prices: usage.NewPrices("empty", nil)}))
	if _, err := ix.Sync(ctx, "testdata/runbooks", nil); err != nil {
		t.Fatal(err)
	}
	var n int
	var cost int64
	if err := h.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(cost_micro_usd), 0) FROM usage_events
		WHERE source = 'embedding' AND NOT priced`).Scan(&n, &cost); err != nil || n != 1 || cost != 0 {
		t.Errorf("unpriced embedding rows %d costing %d (%v), want 1 costing 0", n, cost, err)
	}
}
