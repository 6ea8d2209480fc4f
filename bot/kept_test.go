package bot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
)

// keptRow is a turn's ledger row as the kept-answer tests read it.
type keptRow struct {
	id             int64
	outcome        string
	conv, msg      bool
	cost           int64
	prompt, compl  int
	msgIsTurnReply bool // message_id is the turn's stored assistant message
}

func keptRows(tb testing.TB, db *pgxpool.Pool, user uuid.UUID, key string) []keptRow {
	tb.Helper()
	rows, err := db.Query(context.Background(), `SELECT u.id, u.outcome, u.conversation_id IS NOT NULL, u.message_id IS NOT NULL,
		u.cost_micro_usd, u.prompt_tokens, u.completion_tokens,
		EXISTS (SELECT FROM messages m WHERE m.id = u.message_id AND m.turn_key = $2 AND m.role = 'assistant'
			AND m.conversation_id = u.conversation_id)
		FROM usage_events u WHERE u.user_id = $1 ORDER BY u.id`, user, key)
	if err != nil {
		tb.Fatalf("read ledger: %v", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (k keptRow, err error) {
		err = r.Scan(&k.id, &k.outcome, &k.conv, &k.msg, &k.cost, &k.prompt, &k.compl, &k.msgIsTurnReply)
		return k, err
	})
	if err != nil {
		tb.Fatalf("read ledger: %v", err)
	}
	return out
}

func countOn(tb testing.TB, db *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("count: %v", err)
	}
	return n
}

// newPool opens another pool on the database at url, closed at cleanup:
// a process started after a fault.
func newPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// Every connection to the database is cut while the transaction that
// stores a turn is open (its messages written, its ledger row waiting on a
// lock). Nothing of the turn is left behind but its paid call, on the
// ledger once as unstored, with the answer kept on the claim — which is
// all there is if no retry ever comes. The retry, in another process,
// stores that answer without calling the model or the budget again, and
// the ledger row becomes the stored turn's.
func TestRespondKeepsTheAnswerWhenTheDatabaseIsCut(t *testing.T) {
	ctx := context.Background()
	pool, url := testdb.NewWithURL(t)
	var user uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('ana') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	// 1000 x 0.15 + 500 x 0.60 = 450 micro-USD.
	llm := &fakeLLM{text: "Cordon, then drain.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}
	b := &fakeBudget{}
	turn := Turn{UserID: user, Text: "how do I drain k8s-sg-04?", Source: "api", Key: "api:" + uuid.NewString()}

	cut, err := testdb.CutOnWrite(ctx, url, "usage_events")
	if err != nil {
		t.Fatal(err)
	}
	cutDone := make(chan error, 1)
	go func() {
		n, err := cut.Wait(ctx, 1)
		if err == nil && n == 0 {
			err = errors.New("no connection was cut")
		}
		cutDone <- err
	}()
	_, err = New(Config{DB: pool, LLM: llm, Budget: b}).Respond(ctx, turn, nil)
	if cerr := <-cutDone; cerr != nil {
		t.Fatal(cerr)
	}
	if err == nil {
		t.Fatal("Respond stored the turn though its connection was cut")
	}

	// The process that ran it is gone; a new one looks.
	check := newPool(t, url)
	if n := countOn(t, check, `SELECT count(*) FROM conversations WHERE owner_id = $1`, user) +
		countOn(t, check, `SELECT count(*) FROM messages WHERE turn_key = $1`, turn.Key); n != 0 {
		t.Fatalf("conversations + messages after the cut = %d, want 0", n)
	}
	got := keptRows(t, check, user, turn.Key)
	if len(got) != 1 || got[0].outcome != "unstored" || got[0].conv || got[0].msg || got[0].cost != 450 {
		t.Fatalf("ledger after the cut = %+v, want one unstored row costing 450 micro-USD", got)
	}
	paid := got[0].id
	if n := countOn(t, check, `SELECT count(*) FROM turn_claims WHERE turn_key = $1 AND answer IS NOT NULL
		AND usage_event_id = $2 AND expires_at <= now()`, turn.Key, paid); n != 1 {
		t.Fatalf("released claims keeping the answer = %d, want 1", n)
	}

	rep, err := New(Config{DB: check, LLM: llm, Budget: b}).Respond(ctx, turn, nil)
	if err != nil || rep.Replayed || rep.Text != "Cordon, then drain." || rep.Usage.CostMicroUSD != 450 {
		t.Fatalf("retry: %q replayed %v cost %d, %v; want the kept answer stored now", rep.Text, rep.Replayed, rep.Usage.CostMicroUSD, err)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	want := []keptRow{{id: paid, outcome: "stored", conv: true, msg: true, cost: 450, prompt: 1000, compl: 500, msgIsTurnReply: true}}
	if got := keptRows(t, check, user, turn.Key); !slices.Equal(got, want) {
		t.Errorf("ledger after the retry = %+v, want %+v", got, want)
	}
	if n := countOn(t, check, `SELECT count(*) FROM messages WHERE turn_key = $1`, turn.Key); n != 2 {
		t.Errorf("messages = %d, want the question and the answer", n)
	}
	if n := countOn(t, check, `SELECT count(*) FROM turn_claims WHERE turn_key = $1`, turn.Key); n != 0 {
		t.Errorf("claims left = %d, want 0", n)
	}
	if b.admitted != 1 || b.settled != 1 || b.cancel != 0 {
		t.Errorf("budget admitted %d, settled %d, cancelled %d; want 1, 1, 0", b.admitted, b.settled, b.cancel)
	}
	// A third try replays what is stored.
	if rep, err := New(Config{DB: check, LLM: llm}).Respond(ctx, turn, nil); err != nil || !rep.Replayed {
		t.Errorf("third try: replayed %v, %v; want the stored reply", rep.Replayed, err)
	}
}

// A caller waiting on the claim of a turn whose holder could not store its
// answer (the holder's context ended between the answer and the store: a
// shutdown) takes the claim over with the answer and stores it: one model
// call for both callers, one ledger row.
func TestRespondWaiterStoresTheKeptAnswer(t *testing.T) {
	gate := make(chan struct{})
	llm := &fakeLLM{text: "Failed over.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 100, CompletionTokens: 20}, gate: gate}
	first, waiter := New(Config{DB: testPool, LLM: llm}), New(Config{DB: testPool, LLM: llm})
	openGateWhenWaiting(t, 1, gate, first, waiter)
	user := mustUser(t)
	conv := mustConversation(t, user)
	turn := Turn{UserID: user, ConversationID: conv, Text: "fail over db-2", Source: "slack", Key: "slack:Ev" + uuid.NewString()}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	first.afterModel = func(context.Context) { stop() }

	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, firstErr = first.Respond(ctx, turn, nil)
	}()
	// The first caller holds the claim (it is with the model) before the
	// waiter comes.
	for len(llm.calls()) == 0 {
		time.Sleep(time.Millisecond)
	}
	var streamed string
	rep, err := waiter.Respond(context.Background(), turn, func(d string) { streamed += d })
	<-done
	if !errors.Is(firstErr, context.Canceled) {
		t.Errorf("first caller: %v, want its context's end", firstErr)
	}
	if err != nil || rep.Replayed || rep.Text != "Failed over." || streamed != "Failed over." {
		t.Fatalf("waiter: %q (streamed %q) replayed %v, %v; want the kept answer, stored by the waiter", rep.Text, streamed, rep.Replayed, err)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	// 100 x 0.15 + 20 x 0.60 = 27 micro-USD.
	got := keptRows(t, testPool, user, turn.Key)
	if len(got) != 1 || got[0].outcome != "stored" || !got[0].msgIsTurnReply || got[0].cost != 27 {
		t.Errorf("ledger = %+v, want one stored row of 27 micro-USD for the turn's reply", got)
	}
	if n := messageRows(t, conv); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
}

// transient tells a cut connection (worth a try on another one) from a
// statement the database refused or a caller that gave up.
func TestTransient(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testPool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := testPool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countRows(t, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	_, cutErr := conn.Exec(ctx, `SELECT 1`)
	_, closedErr := conn.Exec(ctx, `SELECT 1`)
	_, refusedErr := testPool.Exec(ctx, `SELECT 1/0`)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, cancelErr := testPool.Exec(cancelled, `SELECT 1`)
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"terminated by the server", cutErr, true},
		{"used after the cut", closedErr, true},
		{"division by zero", refusedErr, false},
		{"caller gone", cancelErr, false},
		{"our own", errors.New("record usage: model is required"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			if got := transient(tt.err); got != tt.want {
				t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// The turn is stored in one batch, one implicit transaction: when its last
// write fails (here a trigger refuses the stored ledger row), the
// conversation and both messages written before it in the batch are gone
// too, and the paid answer is kept for the retry, which stores it.
func TestStoreIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	pool := testdb.New(t)
	var user uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('ana') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION refuse_stored() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.outcome = 'stored' THEN RAISE EXCEPTION 'ledger refused'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_stored BEFORE INSERT ON usage_events FOR EACH ROW EXECUTE FUNCTION refuse_stored();`); err != nil {
		t.Fatal(err)
	}
	llm := &fakeLLM{text: "Cordon, then drain.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1000, CompletionTokens: 500}}
	b := &fakeBudget{}
	turn := Turn{UserID: user, Text: "how do I drain k8s-sg-04?", Source: "api", Key: "api:" + uuid.NewString()}
	e := New(Config{DB: pool, LLM: llm, Budget: b})
	if _, err := e.Respond(ctx, turn, nil); err == nil || !strings.Contains(err.Error(), "ledger refused") {
		t.Fatalf("Respond = %v, want the refused ledger row's error", err)
	}
	if n := countOn(t, pool, `SELECT count(*) FROM conversations WHERE owner_id = $1`, user) +
		countOn(t, pool, `SELECT count(*) FROM messages WHERE turn_key = $1`, turn.Key); n != 0 {
		t.Fatalf("conversations + messages after the refused store = %d, want 0", n)
	}
	if got := keptRows(t, pool, user, turn.Key); len(got) != 1 || got[0].outcome != "unstored" || got[0].cost != 450 {
		t.Fatalf("ledger after the refused store = %+v, want one unstored row costing 450 micro-USD", got)
	}
	if b.settled != 1 {
		t.Errorf("budget settled %d times, want once (with the unstored row)", b.settled)
	}

	if _, err := pool.Exec(ctx, `DROP TRIGGER refuse_stored ON usage_events`); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Respond(ctx, turn, nil)
	if err != nil || rep.Replayed || rep.Text != "Cordon, then drain." {
		t.Fatalf("retry: %q replayed %v, %v; want the kept answer stored", rep.Text, rep.Replayed, err)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	if n := countOn(t, pool, `SELECT count(*) FROM messages WHERE turn_key = $1`, turn.Key); n != 2 {
		t.Errorf("messages = %d, want the question and the answer", n)
	}
	if got := keptRows(t, pool, user, turn.Key); len(got) != 1 || got[0].outcome != "stored" || !got[0].msgIsTurnReply {
		t.Errorf("ledger after the retry = %+v, want the one row, stored, naming the answer", got)
	}
}
