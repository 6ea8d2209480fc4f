//go:build faults

package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/testdb"
)

// The model's answer in these tests: the fake's default, 100 prompt and 20
// completion tokens, which cost 100 x 0.15 + 20 x 0.60 = 27 micro-USD at
// gpt-4o-mini's built-in prices.
const faultCallCost = 27

// answerNow is the model answering at once.
func answerNow() modelfake.Reply {
	return modelfake.Reply{Chunks: modelfake.Words(modelfake.DefaultText), Usage: &modelfake.Usage{Prompt: 100, Completion: 20}}
}

// A server killed (SIGKILL) after it acked a Slack event and while the
// model was still thinking: after a restart the question is answered
// exactly once. The job the dead server left running is rescued by the new
// one once it is past its own timeout (the model's deadline, 2 s here, and
// a minute to store and post; OPSBOT_RESCUE_AFTER is set below it, so the
// turn's timeout is what counts), the dead holder's claim on the turn has
// lapsed by then, and the model is asked again. The first call, cut before
// any words, cost nothing.
func TestFaultKilledAfterAck(t *testing.T) {
	t.Parallel() // it mostly waits for River's rescuer
	f := newFaultEnv(t, modelfake.Reply{Hang: true}, answerNow())
	env := map[string]string{"OPSBOT_MODEL_TIMEOUT": "2s", "OPSBOT_RESCUE_AFTER": "2s"}
	first := f.start("first", env)
	m := newMention(1, "is db-sg-01 healthy?")
	f.mustSend(first.base, m)
	waitUntil(t, 30*time.Second, "the model to be asked", func() bool { return f.model.InFlight() == 1 })
	first.kill(t)
	killed := time.Now()
	if n := len(f.replies(m)); n != 0 {
		t.Fatalf("replies before the restart = %d, want 0", n)
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'running'`); n != 1 {
		t.Fatalf("running jobs after the kill = %d, want the one the dead server had", n)
	}

	f.start("second", env)
	// The rescuer looks every 30 s: the job is past its 62 s timeout at
	// one of its looks within 62 to 92 s of the kill (plus the new
	// server's wait for the dead one's leadership to lapse).
	waitUntil(t, 150*time.Second, "the reply after the restart", func() bool { return len(f.replies(m)) > 0 })
	t.Logf("answered %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	waitUntil(t, 30*time.Second, "the job to complete", func() bool {
		return f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'completed'`) == 1
	})
	time.Sleep(time.Second) // a second reply would come now
	got := f.replies(m)
	if len(got) != 1 || !strings.Contains(got[0].Markdown+got[0].Text, "Check the runbook first.") {
		t.Errorf("replies = %+v, want the answer once", got)
	}
	if n := f.model.CallsFor(m.text); n != 2 {
		t.Errorf("model calls = %d, want 2 (the one cut by the kill, the rerun)", n)
	}
	if n := f.count(`SELECT attempt FROM river_job WHERE kind = 'opsbot_turn'`); n != 2 {
		t.Errorf("job attempts = %d, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE turn_key = $1`, "slack:"+m.id); n != 2 {
		t.Errorf("messages = %d, want the question and the answer", n)
	}
	if n := f.count(`SELECT count(*) FROM usage_events WHERE outcome = 'stored' AND cost_micro_usd = $1`, faultCallCost) +
		100*f.count(`SELECT count(*) FROM usage_events WHERE outcome <> 'stored'`); n != 1 {
		t.Errorf("ledger: got %d, want one stored row of %d micro-USD and nothing else", n, faultCallCost)
	}
}

// Every database connection of a server is cut (pg_terminate_backend)
// while it stores two turns, a Slack question and a REST one: each storing
// transaction is open, its messages written, its ledger row waiting on a
// lock the test holds. No partial rows remain; the Slack turn's job is
// retried and the REST client sends its request again with the same
// Idempotency-Key, and each retry stores the answer the first attempt paid
// for: one model call, one ledger row and one reply per turn.
func TestFaultDatabaseCutMidTurn(t *testing.T) {
	f := newFaultEnv(t, answerNow())
	srv := f.start("server", nil)
	token, convs := f.apiUser("cut", 1)
	const question, idem = "what does error 504 on lb-02 mean?", "retry-me-1"
	cut, err := testdb.CutOnWrite(t.Context(), f.dbURL, "usage_events")
	if err != nil {
		t.Fatal(err)
	}
	m := newMention(1, "restart nginx on web-sg-03?")
	f.mustSend(srv.base, m)
	first := make(chan apiTurn, 1)
	go func() { first <- ask(srv.base, token, convs[0], question, idem) }()
	n, err := cut.Wait(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %d connections with both turns mid-store", n)
	f.db.Reset() // the test's own connections were cut too
	// The thread's conversation was found or started before the model was
	// asked; the turns' messages went with the cut transactions.
	if n := f.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("messages right after the cut = %d, want 0", n)
	}
	if r := <-first; r.status != http.StatusInternalServerError {
		t.Errorf("REST turn during the cut: %d %q, want 500", r.status, r.detail)
	}
	if r := ask(srv.base, token, convs[0], question, idem); r.status != http.StatusCreated || r.answer != modelfake.DefaultText {
		t.Errorf("REST retry: %d %q %v, want 201 and the answer", r.status, r.answer, r.err)
	}

	waitUntil(t, 60*time.Second, "the job to complete", func() bool {
		return f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'completed'`) == 1
	})
	got := f.replies(m)
	if len(got) != 1 || !strings.Contains(got[0].Markdown+got[0].Text, modelfake.DefaultText) {
		t.Errorf("replies = %+v, want the answer once", got)
	}
	for _, q := range []string{m.text, question} {
		if n := f.model.CallsFor(q); n != 1 {
			t.Errorf("%q: model calls = %d, want 1", q, n)
		}
	}
	if n := f.count(`SELECT attempt FROM river_job WHERE kind = 'opsbot_turn'`); n != 2 {
		t.Errorf("job attempts = %d, want 2 (the cut one, the retry)", n)
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 4 || f.count(`SELECT count(DISTINCT turn_key) FROM messages`) != 2 {
		t.Errorf("messages = %d, want a question and an answer for each of the two turns", n)
	}
	if n := f.count(`SELECT count(*) FROM conversations`); n != 2 {
		t.Errorf("conversations = %d, want the thread's and the REST one", n)
	}
	if n := f.count(`SELECT count(*) FROM usage_events u JOIN messages m ON m.id = u.message_id
		WHERE u.outcome = 'stored' AND u.cost_micro_usd = $1 AND m.role = 'assistant'`, faultCallCost); n != 2 ||
		f.count(`SELECT count(*) FROM usage_events`) != 2 {
		t.Errorf("ledger: %d rows, want exactly two, the stored replies', of %d micro-USD", f.count(`SELECT count(*) FROM usage_events`), faultCallCost)
	}
	if n := f.count(`SELECT count(*) FROM turn_claims`); n != 0 {
		t.Errorf("claims left = %d, want 0", n)
	}
}

// A model that never answers: each turn gives up at its deadline after a
// bounded number of tries (the first words are awaited for
// OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT, and one silent attempt is retried at
// most once within twice that), and the person is told — in Slack once,
// over the API with a 503 — and nothing is stored or charged.
func TestFaultModelHangs(t *testing.T) {
	f := newFaultEnv(t, modelfake.Reply{Hang: true})
	// Silent for 2 x 500 ms is the end, long before the 30 s deadline of an
	// answer that flows.
	srv := f.start("server", map[string]string{"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT": "500ms", "OPSBOT_MODEL_TIMEOUT": "30s"})
	token, convs := f.apiUser("hung", 1)
	ms := []mention{newMention(1, "why is kafka-sg lagging?"), newMention(2, "who is on call?")}
	start := time.Now()
	for _, m := range ms {
		f.mustSend(srv.base, m)
	}
	res := ask(srv.base, token, convs[0], "rotate the TLS cert on lb-01", "")
	if took := time.Since(start); res.status != http.StatusServiceUnavailable || !strings.Contains(res.detail, "did not answer in time") ||
		took > 5*time.Second {
		t.Errorf("API turn: %d %q after %s; want 503 saying the model did not answer in time, within 2 x 500ms and a margin",
			res.status, res.detail, took)
	}
	for _, m := range ms {
		waitUntil(t, 5*time.Second, "the person to be told", func() bool { return len(f.replies(m)) > 0 })
	}
	t.Logf("told within %s", time.Since(start).Round(10*time.Millisecond))
	time.Sleep(time.Second) // anything more would come now
	for _, m := range ms {
		got := f.replies(m)
		if len(got) != 1 || !strings.Contains(got[0].Text, "did not answer in time") {
			t.Errorf("%s: replies %+v, want one notice that the model did not answer in time", m.id, got)
		}
		if n := f.model.CallsFor(m.text); n < 1 || n > 2 {
			t.Errorf("%s: model calls = %d, want 1 or 2", m.id, n)
		}
	}
	if n := f.model.CallsFor("rotate the TLS cert on lb-01"); n < 1 || n > 2 {
		t.Errorf("API turn: model calls = %d, want 1 or 2", n)
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'completed' AND attempt = 1`); n != len(ms) {
		t.Errorf("jobs completed at their first attempt = %d, want %d (an outage is told, not retried)", n, len(ms))
	}
	if n := f.count(`SELECT count(*) FROM messages`) + f.count(`SELECT count(*) FROM usage_events`); n != 0 {
		t.Errorf("messages + ledger rows = %d, want 0", n)
	}
}

// A storm of 429s from Slack on every call that posts or finds a reply,
// each with Retry-After: 1. Turns are asked one after another; the first
// meets five 429s on chat.postMessage, more than one post waits out, so its
// job fails and River retries it, which first looks for an earlier post
// (conversations.replies, also rate-limited) and then posts. Every
// question is answered exactly once, and no call that was told to come
// back is made again before its Retry-After has passed.
func TestFaultSlackRateLimitStorm(t *testing.T) {
	f := newFaultEnv(t, modelfake.Reply{Chunks: modelfake.Words(modelfake.DefaultText), ChunkDelay: 50 * time.Millisecond,
		Usage: &modelfake.Usage{Prompt: 100, Completion: 20}})
	storm := map[string]int{
		slackfake.MethodPostMessage: 5, // one more than a post waits out
		slackfake.MethodStartStream: 3, // the streamed answer of the first three turns never starts
		slackfake.MethodReplies:     3, // the retry's look for an earlier post
		slackfake.MethodStopStream:  3, // the fourth turn's streamed answer, finished
	}
	var faults []slackfake.Fault
	for method, n := range storm {
		faults = append(faults, slackfake.RateLimit(method, n, time.Second))
	}
	f.slack.SetFault(func(method string, w http.ResponseWriter) bool {
		for _, fault := range faults {
			if fault(method, w) {
				return true
			}
		}
		return false
	})
	srv := f.start("server", nil)
	start := time.Now()
	var ms []mention
	for i := range 4 {
		m := newMention(i+1, fmt.Sprintf("question %d under a rate limit", i+1))
		ms = append(ms, m)
		f.mustSend(srv.base, m)
		waitUntil(t, 60*time.Second, "the reply to "+m.id, func() bool {
			return f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'completed'`) == i+1
		})
	}
	t.Logf("four turns through the storm in %s", time.Since(start).Round(100*time.Millisecond))
	for _, m := range ms {
		got := f.replies(m)
		if len(got) != 1 || !strings.Contains(got[0].Markdown+got[0].Text, "Check the runbook first.") {
			t.Errorf("%s: replies %+v, want the answer once", m.id, got)
		}
	}
	for method, n := range storm {
		calls := f.slack.Calls(method)
		if len(calls) <= n {
			t.Errorf("%s: %d calls, want more than the %d rate-limited ones", method, len(calls), n)
			continue
		}
		// The first n calls got the 429; the next call for the same
		// channel is the one that came back.
		for i, limited := range calls[:n] {
			for _, next := range calls[i+1:] {
				if next.Form.Get("channel") != limited.Form.Get("channel") {
					continue
				}
				if gap := next.At.Sub(limited.At); gap < time.Second {
					t.Errorf("%s in %s: called again %s after a 429 with Retry-After: 1", method, limited.Form.Get("channel"), gap)
				}
				break
			}
		}
	}
	if n := f.count(`SELECT attempt FROM river_job WHERE kind = 'opsbot_turn' AND args->>'key' = $1`, "slack:"+ms[0].id); n != 2 {
		t.Errorf("first turn's job attempts = %d, want 2 (its first post gave up)", n)
	}
	if n := f.model.Calls(); n != len(ms) {
		t.Errorf("model calls = %d, want %d (a retried post does not ask again)", n, len(ms))
	}
	if n := f.count(`SELECT count(*) FROM usage_events WHERE outcome = 'stored'`); n != len(ms) || f.count(`SELECT count(*) FROM usage_events`) != n {
		t.Errorf("ledger rows = %d stored, want %d and nothing else", n, len(ms))
	}
}

// SIGTERM while 100 turns are in flight: 60 Slack questions (acked; 32 with
// the model at once, the rest queued) and 40 REST turns waiting on the
// model. Those whose model answers within the grace complete — the REST
// turns all do — and the chat jobs still with the model after River's 20 s
// grace are cancelled and handed back. The next server answers everything
// that is left: every turn answered once, none lost, none doubled, counted
// at the fake Slack, in the REST responses and in the database.
func TestFaultSIGTERMWithTurnsInFlight(t *testing.T) {
	const chats, apis, quickChats = 60, 40, 20
	f := newFaultEnv(t, answerNow())
	slow := modelfake.Reply{Latency: 2 * time.Second, Chunks: modelfake.Words(modelfake.DefaultText), Usage: &modelfake.Usage{Prompt: 100, Completion: 20}}
	ms := make([]mention, chats)
	for i := range ms {
		ms[i] = newMention(i+1, fmt.Sprintf("chat question %d", i+1))
		if i < quickChats {
			f.model.Script(ms[i].text, slow)
		} else {
			f.model.Script(ms[i].text, modelfake.Reply{Hang: true}) // until the restart
		}
	}
	questions := make([]string, apis)
	for i := range questions {
		questions[i] = fmt.Sprintf("api question %d", i+1)
		f.model.Script(questions[i], slow)
	}
	// A silent model is waited on longer than River's grace.
	env := map[string]string{"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT": "60s", "OPSBOT_MODEL_TIMEOUT": "2m"}
	first := f.start("first", env)
	token, convs := f.apiUser("sigterm", apis)

	var wg sync.WaitGroup
	sent := make(chan mention, chats)
	for _, m := range ms {
		sent <- m
	}
	close(sent)
	for range 8 {
		wg.Go(func() {
			for m := range sent {
				if status, err := m.send(first.base, 0); err != nil || status != http.StatusOK {
					t.Errorf("event %s: %d %v, want 200", m.id, status, err)
				}
			}
		})
	}
	wg.Wait()
	results := make([]apiTurn, apis)
	for i := range results {
		wg.Go(func() { results[i] = ask(first.base, token, convs[i], questions[i], "") })
	}
	waitUntil(t, 60*time.Second, "every REST turn and 32 chat turns with the model", func() bool {
		asked := 0
		for _, q := range questions {
			asked += min(f.model.CallsFor(q), 1)
		}
		return asked == apis && f.model.Calls() >= apis+32
	})
	answered := 0
	for _, m := range ms {
		answered += min(len(f.replies(m)), 1)
	}
	t.Logf("SIGTERM with %d of %d chat turns answered and the %d REST turns with the model", answered, chats, apis)
	stopped := time.Now()
	if code := first.term(t, 150*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0", code)
	}
	t.Logf("the first server exited %s after SIGTERM", time.Since(stopped).Round(100*time.Millisecond))
	wg.Wait()
	for i, r := range results {
		if r.err != nil || r.status != http.StatusCreated || r.answer != modelfake.DefaultText {
			t.Errorf("REST turn %d: %d %q %v, want 201 and the answer", i+1, r.status, r.answer, r.err)
		}
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state NOT IN ('completed', 'available', 'retryable')`); n != 0 {
		t.Errorf("turn jobs neither done nor handed back after the shutdown = %d, want 0", n)
	}
	handedBack := f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state <> 'completed'`)
	cut := 0 // hanging turns the first server was running: the model was asked
	for _, m := range ms[quickChats:] {
		cut += f.model.CallsFor(m.text)
	}
	t.Logf("%d chat turns handed back to the queue, %d of them cut at the end of the grace", handedBack, cut)
	// At least 32 - 20 of the jobs running at SIGTERM were hanging ones.
	if handedBack < chats-quickChats || cut < 32-quickChats {
		t.Errorf("chat turns handed back = %d (%d cut while running), want the %d hanging ones (at least %d cut)",
			handedBack, cut, chats-quickChats, 32-quickChats)
	}

	for _, m := range ms[quickChats:] {
		f.model.Script(m.text, answerNow())
	}
	f.start("second", env)
	waitUntil(t, 90*time.Second, "every chat turn answered", func() bool {
		return f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'completed'`) == chats
	})
	time.Sleep(time.Second) // a second reply would come now
	for _, m := range ms {
		if got := f.replies(m); len(got) != 1 || !strings.Contains(got[0].Markdown+got[0].Text, modelfake.DefaultText) {
			t.Errorf("%s: replies %+v, want the answer once", m.id, got)
		}
	}
	if n := len(f.slack.ReplyCounts()); n != chats {
		t.Errorf("threads with replies = %d, want %d", n, chats)
	}
	for i, m := range ms {
		if n := f.model.CallsFor(m.text); n < 1 || n > 2 || (i < quickChats && n != 1) {
			t.Errorf("%s: model calls = %d, want 1 (2 for a hanging one cut by the shutdown)", m.id, n)
		}
	}
	for _, q := range questions {
		if n := f.model.CallsFor(q); n != 1 {
			t.Errorf("%q: model calls = %d, want 1", q, n)
		}
	}
	if n := f.count(`SELECT count(DISTINCT turn_key) FROM messages`); n != chats+apis ||
		f.count(`SELECT count(*) FROM messages`) != 2*(chats+apis) {
		t.Errorf("turns stored = %d in %d messages, want %d turns of 2 messages", n, f.count(`SELECT count(*) FROM messages`), chats+apis)
	}
	if n := f.count(`SELECT count(*) FROM usage_events WHERE outcome = 'stored' AND cost_micro_usd = $1`, faultCallCost); n != chats+apis ||
		f.count(`SELECT count(*) FROM usage_events`) != n {
		t.Errorf("ledger: %d stored rows of %d micro-USD among %d, want %d and nothing else", n, faultCallCost,
			f.count(`SELECT count(*) FROM usage_events`), chats+apis)
	}
}

// Two replicas against one database. Both take turns: chat events go to
// each in turn and their jobs are worked by both (a replica runs 32 at
// once, and the model takes 2 s), REST turns are answered by the replica
// asked. Each Slack event delivered to both replicas at once is answered
// once. The daily digest, scheduled every minute here, runs once: only the
// elected leader enqueues it.
func TestFaultTwoReplicas(t *testing.T) {
	t.Parallel() // it mostly waits for the digest's minute
	const chats, redelivered, apis = 40, 10, 10
	f := newFaultEnv(t, modelfake.Reply{Latency: 2 * time.Second, Chunks: modelfake.Words(modelfake.DefaultText),
		Usage: &modelfake.Usage{Prompt: 100, Completion: 20}})
	env := map[string]string{"OPSBOT_DIGEST_SCHEDULE": "* * * * *", "OPSBOT_DIGEST_SLACK_CHANNEL": "CDIGEST"}
	replicas := []*replica{f.start("a", env), f.start("b", env)}
	token, convs := f.apiUser("replicas", apis)
	started := time.Now()

	var wg sync.WaitGroup
	var ms []mention
	for i := range chats {
		m := newMention(i+1, fmt.Sprintf("question %d", i+1))
		ms = append(ms, m)
		wg.Go(func() { f.mustSend(replicas[i%2].base, m) })
	}
	for i := range redelivered {
		m := newMention(chats+i+1, fmt.Sprintf("redelivered question %d", i+1))
		ms = append(ms, m)
		for r, rep := range replicas {
			wg.Go(func() {
				if status, err := m.send(rep.base, r); err != nil || status != http.StatusOK {
					t.Errorf("event %s to %s: %d %v, want 200", m.id, rep.name, status, err)
				}
			})
		}
	}
	results := make([]apiTurn, apis)
	for i := range results {
		wg.Go(func() { results[i] = ask(replicas[i%2].base, token, convs[i], fmt.Sprintf("api question %d", i+1), "") })
	}
	wg.Wait()
	waitUntil(t, 60*time.Second, "every chat turn answered", func() bool {
		return f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn' AND state = 'completed'`) == len(ms)
	})
	t.Logf("%d chat and %d REST turns on two replicas in %s", len(ms), apis, time.Since(started).Round(100*time.Millisecond))
	for i, r := range results {
		if r.err != nil || r.status != http.StatusCreated || r.answer != modelfake.DefaultText {
			t.Errorf("REST turn %d on %s: %d %q %v, want 201 and the answer", i+1, replicas[i%2].name, r.status, r.answer, r.err)
		}
	}
	time.Sleep(time.Second) // a second reply would come now
	for _, m := range ms {
		if got := f.replies(m); len(got) != 1 {
			t.Errorf("%s: %d replies, want 1", m.id, len(got))
		}
		if n := f.model.CallsFor(m.text); n != 1 {
			t.Errorf("%s: model calls = %d, want 1", m.id, n)
		}
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn'`); n != len(ms) ||
		f.count(`SELECT count(*) FROM inbound_events`) != len(ms) {
		t.Errorf("turn jobs = %d, inbound events = %d; want %d each", n, f.count(`SELECT count(*) FROM inbound_events`), len(ms))
	}
	var workedBy []int
	rows, err := f.db.Query(t.Context(), `SELECT count(*) FROM river_job WHERE kind = 'opsbot_turn'
		GROUP BY attempted_by[array_length(attempted_by, 1)] ORDER BY 1`)
	if err == nil {
		for rows.Next() {
			var n int
			if err = rows.Scan(&n); err != nil {
				break
			}
			workedBy = append(workedBy, n)
		}
		rows.Close()
	}
	if err != nil || len(workedBy) != 2 {
		t.Errorf("chat turns by replica: %v (%v), want some on each of the two", workedBy, err)
	}
	t.Logf("chat turns worked per replica: %v", workedBy)
	if n := f.count(`SELECT count(*) FROM usage_events WHERE outcome = 'stored'`); n != len(ms)+apis ||
		f.count(`SELECT count(*) FROM usage_events`) != n {
		t.Errorf("ledger rows = %d stored, want %d and nothing else", n, len(ms)+apis)
	}

	digests := func() int {
		n := 0
		for _, c := range f.slack.Calls(slackfake.MethodPostMessage) {
			if c.Form.Get("channel") == "CDIGEST" {
				n++
			}
		}
		return n
	}
	waitUntil(t, 90*time.Second, "the digest", func() bool { return digests() > 0 })
	t.Logf("the digest came %s after the replicas started", time.Since(started).Round(100*time.Millisecond))
	time.Sleep(2 * time.Second) // a second digest would come now
	if n, jobs := digests(), f.count(`SELECT count(*) FROM river_job WHERE kind = 'usage_digest'`); n != 1 || jobs != 1 {
		t.Errorf("digests posted = %d from %d jobs, want 1 and 1", n, jobs)
	}
}
