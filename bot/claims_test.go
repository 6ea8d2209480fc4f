package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
)

// openGateWhenWaiting closes gate once n callers wait for a claim, across
// the given engines: the model answers only when every duplicate is
// queued behind the first caller. Should they never all wait (the claim
// broken), it opens after a few seconds, and the test counts the calls.
func openGateWhenWaiting(t *testing.T, n int, gate chan struct{}, engines ...*Engine) {
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	timer := time.AfterFunc(5*time.Second, open)
	t.Cleanup(func() { timer.Stop() })
	var mu sync.Mutex
	waiting := 0
	for _, e := range engines {
		e.waiting = func(string) {
			mu.Lock()
			defer mu.Unlock()
			waiting++
			if waiting == n {
				open()
			}
		}
	}
}

// respondAll runs one Respond per engine in engines, all at once, and
// returns the replies and errors in that order.
func respondAll(engines []*Engine, turn Turn) ([]Reply, []error) {
	var wg sync.WaitGroup
	reps := make([]Reply, len(engines))
	errs := make([]error, len(engines))
	for i, e := range engines {
		wg.Go(func() { reps[i], errs[i] = e.Respond(context.Background(), turn, nil) })
	}
	wg.Wait()
	return reps, errs
}

// Ten sends of one turn at once, in one process and spread over two (two
// engines on one database share nothing but it): one model call, one
// stored reply, one ledger row, one budget admission, ten identical
// answers.
func TestRespondConcurrentSameKey(t *testing.T) {
	for _, processes := range []int{1, 2} {
		t.Run(map[int]string{1: "one process", 2: "two processes"}[processes], func(t *testing.T) {
			gate := make(chan struct{})
			llm := &fakeLLM{text: "Raced.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 2}, gate: gate}
			budget := &fakeBudget{}
			var procs []*Engine
			for range processes {
				procs = append(procs, New(Config{DB: testPool, LLM: llm, Budget: budget}))
			}
			openGateWhenWaiting(t, 9, gate, procs...)
			user := mustUser(t)
			conv := mustConversation(t, user)
			turn := Turn{UserID: user, ConversationID: conv, Text: "race", Source: "api", Key: "api:" + uuid.NewString()}
			var engines []*Engine
			for i := range 10 {
				engines = append(engines, procs[i%processes])
			}
			reps, errs := respondAll(engines, turn)
			fresh := 0
			for i := range reps {
				if errs[i] != nil {
					t.Fatalf("Respond %d: %v", i, errs[i])
				}
				if !reps[i].Replayed {
					fresh++
				}
				if reps[i].AssistantMessage.ID != reps[0].AssistantMessage.ID || reps[i].Text != "Raced." || reps[i].Usage != reps[0].Usage {
					t.Errorf("reply %d = %s %q %+v, want %s %q %+v", i, reps[i].AssistantMessage.ID, reps[i].Text, reps[i].Usage,
						reps[0].AssistantMessage.ID, "Raced.", reps[0].Usage)
				}
			}
			if n := len(llm.calls()); n != 1 {
				t.Errorf("model calls = %d, want 1", n)
			}
			if fresh != 1 {
				t.Errorf("fresh replies = %d, want 1 and 9 replayed", fresh)
			}
			if got := ledgerRows(t, user); got != 1 {
				t.Errorf("ledger rows = %d, want 1", got)
			}
			if got := messageRows(t, conv); got != 2 {
				t.Errorf("messages = %d, want 2", got)
			}
			if budget.admitted != 1 || budget.settled != 1 || budget.cancel != 0 {
				t.Errorf("budget admitted %d, settled %d, cancelled %d; want 1, 1, 0", budget.admitted, budget.settled, budget.cancel)
			}
			if n := countRows(t, `SELECT count(*) FROM turn_claims WHERE turn_key = $1`, turn.Key); n != 0 {
				t.Errorf("claims left = %d, want 0", n)
			}
		})
	}
}

// The callers that waited on a turn whose model call failed get the same
// error, without a second call; a later retry of the turn calls the model
// afresh.
func TestRespondWaitersShareTheModelFailure(t *testing.T) {
	gate := make(chan struct{})
	down := &ModelError{Kind: ModelUnavailable, Status: 503, Err: errors.New("down")}
	llm := &fakeLLM{model: "gpt-4o-mini", err: down, gate: gate}
	a, b := New(Config{DB: testPool, LLM: llm}), New(Config{DB: testPool, LLM: llm})
	openGateWhenWaiting(t, 3, gate, a, b)
	user := mustUser(t)
	conv := mustConversation(t, user)
	turn := Turn{UserID: user, ConversationID: conv, Text: "status?", Source: "slack", Key: "slack:Ev" + uuid.NewString()}
	_, errs := respondAll([]*Engine{a, a, b, b}, turn)
	for i, err := range errs {
		var me *ModelError
		if !errors.As(err, &me) || me.Kind != ModelUnavailable || me.Status != 503 {
			t.Errorf("Respond %d: %v, want the holder's unavailable (503) model error", i, err)
		}
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}

	llm.err, llm.gate = nil, nil
	llm.text, llm.usage = "Up again.", &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}
	rep, err := b.Respond(context.Background(), turn, nil)
	if err != nil || rep.Replayed || rep.Text != "Up again." {
		t.Fatalf("retry: %q replayed %v, %v; want a fresh answer", rep.Text, rep.Replayed, err)
	}
	if n := len(llm.calls()); n != 2 {
		t.Errorf("model calls = %d, want 2", n)
	}
}

// A claim whose holder died (its lease lapsed, nobody renews it) is taken
// over: at once when it has lapsed already, after the lease otherwise.
func TestRespondTakesOverALapsedClaim(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lapse time.Duration
	}{{"already lapsed", -time.Minute}, {"lapsing while waited on", 300 * time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			llm := &fakeLLM{text: "Taken over.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}}
			e := New(Config{DB: testPool, LLM: llm})
			waited := false
			e.waiting = func(string) { waited = true }
			user := mustUser(t)
			turn := Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "hi", Source: "teams", Key: "teams:" + uuid.NewString()}
			if _, err := testPool.Exec(ctx, `INSERT INTO turn_claims (turn_key, holder, expires_at)
				VALUES ($1, gen_random_uuid(), now() + $2::float8 * interval '1 second')`, turn.Key, tt.lapse.Seconds()); err != nil {
				t.Fatal(err)
			}
			rep, err := e.Respond(ctx, turn, nil)
			if err != nil || rep.Text != "Taken over." || rep.Replayed {
				t.Fatalf("Respond: %q replayed %v, %v; want a fresh answer", rep.Text, rep.Replayed, err)
			}
			if wantWait := tt.lapse > 0; waited != wantWait {
				t.Errorf("waited = %v, want %v", waited, wantWait)
			}
		})
	}
}

// A holder slower than its lease keeps its claim: the lease is renewed
// while the model thinks, so a second process asking for the same turn
// after several leases waits and replays the answer instead of taking the
// claim over and paying for a second call.
func TestRespondRenewsTheLeaseOfASlowHolder(t *testing.T) {
	ctx := context.Background()
	gate := make(chan struct{})
	llm := &fakeLLM{text: "Slow but sure.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}, gate: gate}
	const lease = 300 * time.Millisecond
	holder := New(Config{DB: testPool, LLM: llm, ClaimLease: lease})
	other := New(Config{DB: testPool, LLM: llm, ClaimLease: lease})
	waited := make(chan struct{})
	other.waiting = func(string) { close(waited) }
	user := mustUser(t)
	turn := Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "hi", Source: "api", Key: "api:" + uuid.NewString()}

	first := make(chan error, 1)
	go func() {
		_, err := holder.Respond(ctx, turn, nil)
		first <- err
	}()
	for len(llm.calls()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(4 * lease) // unrenewed, the claim would have lapsed three times over
	second := make(chan Reply, 1)
	go func() {
		rep, err := other.Respond(ctx, turn, nil)
		if err != nil {
			t.Errorf("second Respond: %v", err)
		}
		second <- rep
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the second caller never waited: it took the claim over")
	}
	close(gate)
	if err := <-first; err != nil {
		t.Fatalf("holder: %v", err)
	}
	if rep := <-second; !rep.Replayed || rep.Text != "Slow but sure." {
		t.Errorf("second caller: %q replayed %v, want the holder's answer replayed", rep.Text, rep.Replayed)
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
}

// A holder that fails without a model error (here: the conversation is
// not the user's) releases the claim, so the next caller is not kept
// waiting for a lease to lapse.
func TestRespondReleasesTheClaimOnOtherErrors(t *testing.T) {
	llm := &fakeLLM{text: "never"}
	e := New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	turn := Turn{UserID: user, ConversationID: mustConversation(t, mustUser(t)), Text: "hi", Source: "api", Key: "api:" + uuid.NewString()}
	for range 2 {
		if _, err := e.Respond(context.Background(), turn, nil); !errors.Is(err, conversations.ErrNotFound) {
			t.Fatalf("Respond: %v, want conversations.ErrNotFound", err)
		}
	}
	if n := countRows(t, `SELECT count(*) FROM turn_claims WHERE turn_key = $1`, turn.Key); n != 0 {
		t.Errorf("claims left = %d, want 0", n)
	}
}

// A chat event's job running twice at once, on two workers of two
// processes, makes one model call, records one ledger row and posts once.
func TestTurnJobRunningTwiceAtOnce(t *testing.T) {
	gate := make(chan struct{})
	llm := &fakeLLM{text: "Rebooted.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 3}, gate: gate}
	a, b := New(Config{DB: testPool, LLM: llm}), New(Config{DB: testPool, LLM: llm})
	openGateWhenWaiting(t, 1, gate, a, b)
	user := mustUser(t)
	args := TurnArgs{Platform: "slack", UserID: user, Text: "reboot db-3", Source: "slack", Key: "slack:Ev" + uuid.NewString(),
		Thread: &conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: uuid.NewString()}}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	rp := &recordingReplier{}
	for i, e := range []*Engine{a, b} {
		w := NewTurnWorker(e, nil, map[string]Replier{"slack": rp}, nil)
		wg.Go(func() { errs[i] = workOnce(w, args, 1) })
	}
	wg.Wait()
	// Both runs end well: one posted, the other found it posted (or being
	// posted, which River retries until it is).
	for i, err := range errs {
		if err != nil && !strings.Contains(err.Error(), "is being posted by another run") {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if posts := rp.all(); len(posts) != 1 {
		t.Errorf("posts = %d, want 1", len(posts))
	}
	if n := len(llm.calls()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
	if n := ledgerRows(t, user); n != 1 {
		t.Errorf("ledger rows = %d, want 1", n)
	}
	if n := countRows(t, `SELECT count(*) FROM messages WHERE turn_key = $1`, args.Key); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
}

// When the holder gives up without a model error (its job was stopped),
// the caller waiting on it, in another process, takes the turn over and
// answers it.
func TestRespondWaiterTakesOverAnAbandonedTurn(t *testing.T) {
	gate := make(chan struct{})
	llm := &fakeLLM{text: "Done by the second.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}, gate: gate}
	a, b := New(Config{DB: testPool, LLM: llm}), New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	turn := Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "hi", Source: "slack", Key: "slack:Ev" + uuid.NewString()}

	actx, stopA := context.WithCancel(context.Background())
	defer stopA()
	aDone := make(chan error, 1)
	go func() {
		_, err := a.Respond(actx, turn, nil)
		aDone <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); len(llm.calls()) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	b.waiting = func(string) { stopA() } // a's job is stopped once b waits on it
	bDone := make(chan struct{})
	var rep Reply
	var err error
	go func() {
		defer close(bDone)
		rep, err = b.Respond(context.Background(), turn, nil)
	}()
	if aErr := <-aDone; aErr == nil || !errors.Is(aErr, context.Canceled) {
		t.Errorf("stopped holder: %v, want context.Canceled", aErr)
	}
	close(gate)
	<-bDone
	if err != nil || rep.Replayed || rep.Text != "Done by the second." {
		t.Fatalf("waiter: %q replayed %v, %v; want its own fresh answer", rep.Text, rep.Replayed, err)
	}
	if n := len(llm.calls()); n != 2 {
		t.Errorf("model calls = %d, want 2 (the abandoned one and the waiter's)", n)
	}
	if n := ledgerRows(t, user); n != 1 {
		t.Errorf("ledger rows = %d, want 1 (the abandoned call sent no words)", n)
	}
}

// A caller whose deadline runs out while another request of the same turn
// is still with the model hears a timeout (503 over HTTP), not a fault.
func TestWaiterDeadlineIsATimeout(t *testing.T) {
	gate := make(chan struct{})
	llm := &fakeLLM{text: "Slowly.", model: "gpt-4o-mini", usage: &ProviderUsage{PromptTokens: 1, CompletionTokens: 1}, gate: gate}
	e := New(Config{DB: testPool, LLM: llm})
	user := mustUser(t)
	turn := Turn{UserID: user, ConversationID: mustConversation(t, user), Text: "hi", Source: "api", Key: "api:" + uuid.NewString()}
	holderDone := make(chan error, 1)
	go func() {
		_, err := e.Respond(context.Background(), turn, nil)
		holderDone <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); len(llm.calls()) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := e.Respond(ctx, turn, nil)
	if f := Classify(err); f.Kind != FailModelDown {
		t.Errorf("waiter: %v classified %s, want %s", err, f.Kind, FailModelDown)
	}
	close(gate)
	if err := <-holderDone; err != nil {
		t.Errorf("holder: %v", err)
	}
}
