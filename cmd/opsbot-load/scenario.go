package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/sqlstats"
)

// The scenarios, in the order they run.
const (
	scRest1       = "rest-1"
	scRest        = "rest"
	scSlack       = "slack"
	scSlackSocket = "slack-socket"
	scTeams       = "teams"
	scSlackWait   = "slack-wait"
)

var allScenarios = []string{scRest1, scRest, scSlack, scSlackSocket, scTeams, scSlackWait}

// waitSenders is how many Slack users send slack-wait's events.
const waitSenders = 8

// questions are what the load asks, one after another: each finds
// sections in the sample runbooks, so turns include a real search.
var questions = []string{
	"The disk is full on /var, how do I free space?",
	"Kafka consumer lag keeps growing on the orders topic",
	"How do I renew the TLS certificate on the load balancer?",
	"A pod is in CrashLoopBackOff after the deploy",
	"The payment gateway returns 5xx errors",
	"DNS changes are not propagating",
	"How do we fail over the primary database?",
	"Who do I escalate to when on-call does not answer?",
	"How do I rotate a leaked secret?",
	"A new staff member needs VPN access",
}

// spec is one scenario to run.
type spec struct {
	name     string
	kind     string // rest, slack, socket, teams
	clients  int
	rate     float64 // requests a second; 0: each client waits for its answer before the next
	duration time.Duration
	// wait: the model sleeps, events go out open-loop, and the turns
	// waiting on the model are counted (slack-wait).
	wait bool
}

func (w *world) spec(name string) spec {
	o := w.opts
	s := spec{name: name, clients: o.clients, rate: o.rate, duration: o.duration}
	switch name {
	case scRest1:
		s.kind, s.clients = "rest", 1
	case scRest:
		s.kind = "rest"
	case scSlack:
		s.kind = "slack"
	case scSlackSocket:
		s.kind = "socket"
	case scTeams:
		s.kind = "teams"
	case scSlackWait:
		s.kind, s.clients, s.rate, s.duration, s.wait = "slack", waitSenders, o.waitRate, o.waitDuration, true
	}
	return s
}

// scenarioResult is what one scenario measured; -1 marks a figure the
// scenario has none of (ack latency for REST, SQL without /debug/sql).
type scenarioResult struct {
	Name         string   `json:"name"`
	Clients      int      `json:"clients"`
	Rate         float64  `json:"rate"` // 0: as fast as they go
	SendSeconds  float64  `json:"send_seconds"`
	Requests     int      `json:"requests"`
	Errors       int      `json:"errors"`
	Turns        int      `json:"turns"` // questions answered
	AckP50Ms     float64  `json:"ack_p50_ms"`
	AckP99Ms     float64  `json:"ack_p99_ms"`
	E2EP50Ms     float64  `json:"e2e_p50_ms"`
	E2EP99Ms     float64  `json:"e2e_p99_ms"`
	Seconds      float64  `json:"seconds"` // first send to last answer
	TurnsPerSec  float64  `json:"turns_per_second"`
	PgbenchC     int      `json:"pgbench_clients"`
	PgbenchTPS   float64  `json:"pgbench_tps"`
	Ratio        float64  `json:"ratio_to_pgbench"`        // turns/s ÷ pgbench -N tps at PgbenchC clients
	P50Txns      float64  `json:"p50_in_pgbench_txns"`     // e2e p50 × single-client pgbench tps (rest-1)
	ModelCalls   int      `json:"model_calls"`             // modelfake calls during the scenario
	Posted       int      `json:"posted_replies"`          // answers the fakes hold (or REST 201s)
	LedgerRows   int      `json:"ledger_rows"`             // usage_events rows written during the scenario
	StmtsPerTurn float64  `json:"statements_per_turn"`     // -1: n/a
	RTPerTurn    float64  `json:"round_trips_per_turn"`    // -1: n/a
	QueryMsTurn  float64  `json:"query_ms_per_turn"`       // -1: n/a
	PeakRSS      int64    `json:"server_peak_rss_bytes"`   // VmHWM after the scenario: since the server started
	RSS          int64    `json:"server_rss_bytes"`        // VmRSS after the scenario
	MaxRSS       int64    `json:"server_max_rss_sampled"`  // the largest VmRSS sampled during the scenario
	MaxWaiting   int      `json:"max_model_calls_waiting"` // model calls in flight at once, sampled
	Correct      bool     `json:"correct"`
	Problems     []string `json:"problems,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// snapshot is what is counted before and after a scenario.
type snapshot struct {
	modelCalls int
	ledger     int
	teamsMsgs  int
	sql        sqlstats.Stats
	sqlOK      bool
}

func (w *world) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{modelCalls: w.model.Calls(), teamsMsgs: w.teams.Counts().Messages}
	if err := w.db.QueryRow(ctx, "SELECT count(*) FROM usage_events").Scan(&s.ledger); err != nil {
		return s, fmt.Errorf("count ledger rows: %w", err)
	}
	s.sql, s.sqlOK = readSQL(ctx, w.pprof)
	return s, nil
}

// sampler watches the server's memory and the model's calls in flight
// while a scenario runs.
type sampler struct {
	maxRSS     atomic.Int64
	maxWaiting atomic.Int64
	stop       chan struct{}
	done       chan struct{}
}

func (w *world) sample() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if m := readMemory(w.srv.Pid()); m.RSS > s.maxRSS.Load() {
				s.maxRSS.Store(m.RSS)
			}
			if n := int64(w.model.InFlight()); n > s.maxWaiting.Load() {
				s.maxWaiting.Store(n)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) end() {
	close(s.stop)
	<-s.done
}

// drive calls one for duration: with rate 0, each of clients goroutines
// calls it again as soon as it returns; otherwise calls start at rate a
// second whatever the earlier ones do (open loop), spread over the
// clients. It returns once every call has returned.
func drive(ctx context.Context, clients int, rate float64, d time.Duration, one func(client int)) {
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	if rate <= 0 {
		for c := range clients {
			wg.Go(func() {
				for ctx.Err() == nil && time.Now().Before(end) {
					one(c)
				}
			})
		}
		wg.Wait()
		return
	}
	interval := time.Duration(float64(time.Second) / rate)
	for k := 0; ; k++ {
		at := start.Add(time.Duration(k) * interval)
		if !at.Before(end) || ctx.Err() != nil {
			break
		}
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() { one(k % clients) })
	}
	wg.Wait()
}

// sent is one question sent over a chat surface.
type sent struct {
	q      *question
	key    string
	thread slackfake.Thread // Slack
	conv   string           // Teams reply chain
}

// run runs one scenario and measures it.
func (w *world) run(ctx context.Context, sp spec, prog *progress) (scenarioResult, error) {
	r := scenarioResult{Name: sp.name, Clients: sp.clients, Rate: sp.rate}
	before, err := w.snapshot(ctx)
	if err != nil {
		return r, err
	}
	if sp.wait {
		w.model.SetReplies(modelfake.Reply{Chunks: modelfake.Words(modelfake.DefaultText), Usage: &modelfake.Usage{Prompt: 100, Completion: 20},
			Latency: w.opts.waitLatency})
		defer w.model.SetReplies(w.opts.modelReply())
	}
	smp := w.sample()
	var (
		acks, e2e latencies
		mu        sync.Mutex
		out       []sent
		errs      []string
		nErr      atomic.Int64
		nSent     atomic.Int64
		nDone     atomic.Int64
		restConvs = map[string]int{} // REST: turns answered per conversation
	)
	fail := func(format string, args ...any) {
		nErr.Add(1)
		mu.Lock()
		if len(errs) < 5 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	prog.start(sp.name, sp.duration, func() (int64, int64) { return nSent.Load(), nDone.Load() })
	first := time.Now()
	var last atomic.Int64 // unix nanos of the last REST answer
	closed := sp.rate <= 0

	switch sp.kind {
	case "rest":
		type clientState struct {
			conv string
			used int
		}
		states := make([]clientState, sp.clients)
		var smu sync.Mutex
		drive(ctx, sp.clients, sp.rate, sp.duration, func(c int) {
			n := w.seq.Add(1)
			smu.Lock()
			st := states[c]
			if st.conv == "" || st.used >= w.opts.turnsPerConversation {
				st = clientState{}
			}
			st.used++
			states[c] = st
			smu.Unlock()
			if st.conv == "" {
				id, err := w.createConversation(ctx, w.tokens[c])
				if err != nil {
					fail("create conversation: %v", err)
					return
				}
				st.conv = id
				smu.Lock()
				if states[c].conv == "" {
					states[c].conv = id
				} else {
					st.conv = states[c].conv // open loop: another call made one first
				}
				smu.Unlock()
			}
			nSent.Add(1)
			t0 := time.Now()
			err := w.restTurn(ctx, w.tokens[c], st.conv, questions[n%int64(len(questions))])
			if err != nil {
				fail("turn: %v", err)
				return
			}
			e2e.add(time.Since(t0))
			last.Store(time.Now().UnixNano())
			nDone.Add(1)
			mu.Lock()
			restConvs[st.conv]++
			mu.Unlock()
		})
	default:
		// With a window of k, each sender runs k questions at once.
		conc := sp.clients
		if closed {
			conc *= w.opts.window
		}
		drive(ctx, conc, sp.rate, sp.duration, func(c int) {
			c %= sp.clients
			n := w.seq.Add(1)
			s, err := w.send(ctx, sp.kind, c, n, &acks)
			nSent.Add(1)
			if err != nil {
				fail("%v", err)
				return
			}
			mu.Lock()
			out = append(out, s)
			mu.Unlock()
			if closed {
				select {
				case <-s.q.done:
					nDone.Add(1)
				case <-time.After(w.opts.turnTimeout()):
				case <-ctx.Done():
				}
			}
		})
	}
	sendEnd := time.Now()
	r.SendSeconds = sendEnd.Sub(first).Seconds()

	if sp.wait {
		w.checkWaiting(&r, len(out), smp)
	}
	// Every question sent is answered, or the drain limit passes.
	if sp.kind != "rest" {
		prog.phase("waiting for answers")
	}
	deadline := time.Now().Add(w.opts.turnTimeout())
	for sp.kind != "rest" {
		answered := 0
		for _, s := range out {
			select {
			case <-s.q.done:
				answered++
			default:
			}
		}
		nDone.Store(int64(answered))
		if answered == len(out) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Late duplicates, ledger rows and counts settle.
	time.Sleep(w.opts.settle)
	smp.end()
	prog.end()

	after, err := w.snapshot(ctx)
	if err != nil {
		return r, err
	}
	mem := readMemory(w.srv.Pid())
	r.PeakRSS, r.RSS, r.MaxRSS, r.MaxWaiting = mem.HWM, mem.RSS, smp.maxRSS.Load(), int(smp.maxWaiting.Load())
	r.ModelCalls = after.modelCalls - before.modelCalls
	r.LedgerRows = after.ledger - before.ledger
	r.Errors = int(nErr.Load())
	r.Requests = int(nSent.Load())

	lastAnswer := time.Unix(0, last.Load())
	if sp.kind == "rest" {
		r.Turns = int(nDone.Load())
		r.Posted = r.Turns
		r.AckP50Ms, r.AckP99Ms = -1, -1
		if err := w.checkREST(ctx, &r, restConvs); err != nil {
			return r, err
		}
	} else {
		replies := w.slack.ReplyCounts()
		lost, dup := 0, 0
		for _, s := range out {
			n := replies[s.thread]
			if sp.kind == "teams" {
				n = w.teams.Posted(s.conv)
			}
			r.Posted += n
			switch {
			case n == 0:
				lost++
			case n > 1:
				dup++
			}
			if !s.q.answered.IsZero() {
				r.Turns++
				e2e.add(s.q.answered.Sub(s.q.sent))
				if s.q.answered.After(lastAnswer) {
					lastAnswer = s.q.answered
				}
			}
		}
		if lost > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d of %d questions got no answer", lost, len(out)))
		}
		if dup > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d questions got more than one answer", dup))
		}
		a := acks.sorted()
		r.AckP50Ms, r.AckP99Ms = ms(percentile(a, 50)), ms(percentile(a, 99))
		keys := make([]string, len(out))
		for i, s := range out {
			keys[i] = s.key
		}
		w.answers.forget(keys)
	}
	turns := len(out)
	if sp.kind == "rest" {
		turns = r.Turns
	}
	if r.Errors > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d requests failed, e.g. %v", r.Errors, errs))
	}
	if r.ModelCalls != turns {
		r.Problems = append(r.Problems, fmt.Sprintf("model calls %d != turns %d", r.ModelCalls, turns))
	}
	if r.LedgerRows != turns {
		r.Problems = append(r.Problems, fmt.Sprintf("ledger rows %d != turns %d", r.LedgerRows, turns))
	}
	if turns == 0 {
		r.Problems = append(r.Problems, "no turns")
	}
	r.Correct = len(r.Problems) == 0

	e := e2e.sorted()
	r.E2EP50Ms, r.E2EP99Ms = ms(percentile(e, 50)), ms(percentile(e, 99))
	if lastAnswer.After(first) {
		r.Seconds = lastAnswer.Sub(first).Seconds()
		r.TurnsPerSec = perSecond(r.Turns, lastAnswer.Sub(first))
	}
	r.StmtsPerTurn, r.RTPerTurn, r.QueryMsTurn = -1, -1, -1
	if before.sqlOK && after.sqlOK && r.Turns > 0 {
		t := float64(r.Turns)
		r.StmtsPerTurn = float64(after.sql.Statements-before.sql.Statements) / t
		r.RTPerTurn = float64(after.sql.RoundTrips-before.sql.RoundTrips) / t
		r.QueryMsTurn = (after.sql.QuerySeconds - before.sql.QuerySeconds) * 1000 / t
	}
	return r, nil
}

// checkWaiting waits, in slack-wait, until the turns are all inside a
// model call, and notes how many were at once; if the server runs far
// fewer at once (its worker count), the rest are answered at once so the
// run ends in time, and the note says so.
func (w *world) checkWaiting(r *scenarioResult, n int, smp *sampler) {
	want := min(n, w.opts.workers)
	deadline := time.Now().Add(min(w.opts.waitLatency/2, 10*time.Second))
	for w.model.InFlight() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a sample with all of them waiting
	m := readMemory(w.srv.Pid())
	waiting := max(w.model.InFlight(), int(smp.maxWaiting.Load()))
	r.Notes = append(r.Notes, fmt.Sprintf("%d turns waiting on the model at once; server RSS then %.1f MB", waiting, mb(m.RSS)))
	if waiting < want/2 {
		r.Notes = append(r.Notes, fmt.Sprintf("the server ran only %d model calls at once (is OPSBOT_WORKERS=%d honoured?); the turns after them were answered at once",
			waiting, w.opts.workers))
		w.model.SetReplies(w.opts.modelReply())
	}
}

// turnTimeout is how long a question may wait for its answer.
func (o options) turnTimeout() time.Duration { return 2*o.waitLatency + time.Minute }

// send sends question n over a chat surface as sender c and records its
// ack latency in acks.
func (w *world) send(ctx context.Context, kind string, c int, n int64, acks *latencies) (sent, error) {
	text := questions[n%int64(len(questions))]
	switch kind {
	case "teams":
		id := fmt.Sprintf("load-%d", n)
		root := fmt.Sprintf("19:load-%d@thread.tacv2", n)
		conv := root + ";messageid=" + id
		act := w.teams.Message(id, "channel", root, "<at>opsbot</at> "+text, true, fmt.Sprintf("aad-load-%04d", c))
		body, _ := json.Marshal(act)
		tok, err := w.teamsToken()
		if err != nil {
			return sent{}, err
		}
		s := sent{key: teamsKey(conv), conv: conv}
		start := time.Now()
		s.q = w.answers.expect(s.key, start)
		status, err := w.post(ctx, w.srv.Base+"/api/messages", body, func(h http.Header) { h.Set("Authorization", "Bearer "+tok) })
		acks.add(time.Since(start))
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("teams activity: status %d", status)
		}
		return s, err
	default: // slack over HTTP or Socket Mode
		ts := fmt.Sprintf("1800000000.%06d", n%1000000)
		var ev map[string]any
		var th slackfake.Thread
		if n%2 == 0 {
			th = slackfake.Thread{Channel: fmt.Sprintf("CL%08d", n), TS: ts}
			ev = slackfake.AppMention(slackUser(c), th.Channel, ts, "", text)
		} else {
			th = slackfake.Thread{Channel: fmt.Sprintf("DL%08d", n), TS: ts}
			ev = slackfake.MessageEvent(slackUser(c), th.Channel, "im", ts, "", text)
		}
		body := slackfake.EventCallback(slackfake.TeamID, fmt.Sprintf("EvLoad%d", n), ev)
		s := sent{key: slackKey(th.Channel, th.TS), thread: th}
		start := time.Now()
		s.q = w.answers.expect(s.key, start)
		if kind == "socket" {
			id := fmt.Sprintf("load-env-%d", n)
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := w.slack.Send(sctx, slackfake.Envelope{ID: id, Type: "events_api", Payload: json.RawMessage(body)}); err != nil {
				return s, err
			}
			a, err := w.slack.WaitAck(sctx, id)
			if err != nil {
				return s, err
			}
			acks.add(a.At.Sub(start))
			return s, nil
		}
		status, err := w.post(ctx, w.srv.Base+"/slack/events", body, func(h http.Header) {
			slackfake.SignRequest(&http.Request{Header: h}, signingSecret, body, time.Now())
		})
		acks.add(time.Since(start))
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("slack event: status %d", status)
		}
		return s, err
	}
}

// teamsToken is a Bot Framework token for the load's activities, made
// once and kept while it is good for more than ten minutes.
func (w *world) teamsToken() (string, error) {
	w.tokMu.Lock()
	defer w.tokMu.Unlock()
	if w.tok != "" && time.Until(w.tokExp) > 10*time.Minute {
		return w.tok, nil
	}
	now := time.Now()
	tok, err := w.teams.Token(now)
	if err != nil {
		return "", err
	}
	w.tok, w.tokExp = tok, now.Add(time.Hour)
	return tok, nil
}

// post sends a JSON body and returns the status.
func (w *world) post(ctx context.Context, url string, body []byte, header func(http.Header)) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if header != nil {
		header(req.Header)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// createConversation makes a REST conversation and returns its id.
func (w *world) createConversation(ctx context.Context, token string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	status, err := w.api(ctx, token, "/api/v1/conversations", map[string]string{"title": "load"}, &out)
	if err == nil && (status != http.StatusCreated || out.ID == "") {
		err = fmt.Errorf("status %d", status)
	}
	return out.ID, err
}

// restTurn sends one question to a conversation and checks the answer.
func (w *world) restTurn(ctx context.Context, token, conv, text string) error {
	var out struct {
		AssistantMessage struct {
			Content string `json:"content"`
		} `json:"assistant_message"`
		Detail string `json:"detail"`
	}
	status, err := w.api(ctx, token, "/api/v1/conversations/"+conv+"/messages", map[string]string{"content": text}, &out)
	switch {
	case err != nil:
		return err
	case status != http.StatusCreated:
		return fmt.Errorf("status %d: %s", status, out.Detail)
	case out.AssistantMessage.Content == "":
		return fmt.Errorf("empty answer")
	}
	return nil
}

// api posts JSON to the REST API with a token and decodes the answer.
func (w *world) api(ctx context.Context, token, path string, in, out any) (int, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.srv.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil && resp.StatusCode < 300 {
		return resp.StatusCode, fmt.Errorf("decode: %w", err)
	}
	return resp.StatusCode, nil
}

// checkREST compares the assistant messages stored per conversation with
// the answers the clients got.
func (w *world) checkREST(ctx context.Context, r *scenarioResult, convs map[string]int) error {
	ids := make([]string, 0, len(convs))
	for id := range convs {
		ids = append(ids, id)
	}
	rows, err := w.db.Query(ctx, `SELECT conversation_id::text, count(*) FROM messages
		WHERE role = 'assistant' AND conversation_id = ANY($1::uuid[]) GROUP BY 1`, ids)
	if err != nil {
		return fmt.Errorf("count answers: %w", err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		stored[id] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count answers: %w", err)
	}
	bad := 0
	for id, n := range convs {
		if stored[id] != n {
			bad++
		}
	}
	if bad > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d conversations store a different number of answers than their clients got", bad))
	}
	return nil
}
