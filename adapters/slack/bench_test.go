package slack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/adapters/openai"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/pgbench"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
	"github.com/apacops/opsbot/users"
)

// rssBytes is this process's resident set (VmRSS).
func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkEventAck measures what Slack waits for: a signed app_mention
// through serve's HTTP stack (httpapi with the Slack routes mounted) to its
// ack, with events sent open-loop at a fixed 500 a second while the model
// takes 30 s to answer. With workers=32 (serve's River MaxWorkers) 32 turns
// hold a model call and the rest wait in the queue; with workers=1000 every
// accepted turn, up to 1,000, is inside a model call. It reports ack p50
// and p99, the rate achieved, the turns in a model call at the end and the
// process's RSS then (this test process: the fake model, the fake Slack and
// the load generator included), beside a single-client pgbench -N
// transaction on the same server in the same run. Run it with a fixed
// count, e.g. -benchtime 2000x (4 s of events).
//
// The "inbox-only" case sends the same events' Inbox.Accept calls straight
// to the inbox at the same rate, with 32 workers: the seam's own cost (one
// transaction per event) measured beside the whole ack.
func BenchmarkEventAck(b *testing.B) {
	b.Run("inbox-only", func(b *testing.B) { benchmarkEventAck(b, 32, true) })
	for _, workers := range []int{32, 1000} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchmarkEventAck(b, workers, false) })
	}
}

func benchmarkEventAck(b *testing.B, workers int, inboxOnly bool) {
	ctx := context.Background()
	_, dbURL := testdb.NewWithURL(b)
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = 20 // serve's default pool
	db, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)

	slackAPI := slackfake.ForTest(b)
	// A model that takes 30 seconds to answer (or until the call is
	// abandoned or the fake closes).
	model := modelfake.Start(modelfake.Config{Replies: []modelfake.Reply{{Latency: 30 * time.Second, Status: http.StatusServiceUnavailable}}})
	b.Cleanup(model.Close)
	llm, err := openai.New(openai.Config{BaseURL: model.BaseURL(), APIKey: "sk-bench", MaxRetries: -1})
	if err != nil {
		b.Fatal(err)
	}
	us := users.NewStore(db, "Asia/Singapore")
	cmds := commands.New(commands.Config{DB: db, Users: us})
	app, err := New(Config{BotToken: slackfake.BotToken, SigningSecret: testSecret, APIURL: slackAPI.APIURL(), DB: db, Users: us, Commands: cmds})
	if err != nil {
		b.Fatal(err)
	}
	ws := river.NewWorkers()
	river.AddWorker(ws, bot.NewTurnWorker(bot.New(bot.Config{DB: db, LLM: llm}), cmds, map[string]bot.Replier{Platform: app}, nil))
	// River as serve configures it (cmd/opsbot/river.go): default fetch
	// intervals, which also pace River's insert notifications (a NOTIFY in
	// every accept transaction would serialise their commits).
	jobs := testriver.New(b, db, &river.Config{Workers: ws, TestOnly: true,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}}})
	if err := jobs.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = jobs.StopAndCancel(sctx)
	})
	inbox := bot.NewInbox(db, jobs)
	// Server side, the handler's own time is recorded too: the client's
	// figure adds the load generator and the HTTP round trip, which share
	// this process and its two cores.
	var hmu sync.Mutex
	var handled []time.Duration
	var mounts []httpapi.Mount
	for _, r := range app.Routes(inbox) {
		h := r.Handler
		timed := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			t0 := time.Now()
			h.ServeHTTP(w, req)
			hmu.Lock()
			handled = append(handled, time.Since(t0))
			hmu.Unlock()
		})
		mounts = append(mounts, httpapi.Mount{Method: r.Method, Path: r.Path, Handler: timed, MaxBodyBytes: r.MaxBodyBytes})
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{Log: slog.New(slog.DiscardHandler), DB: db, Users: us, Mounts: mounts}))
	b.Cleanup(srv.Close)

	// Fifty people who have talked to the bot before (cached, as in a
	// running workspace).
	const people = 50
	for i := range people {
		id := fmt.Sprintf("U%04d", i)
		slackAPI.AddPerson(id, "Person "+id, "Asia/Singapore")
		if _, err := app.person(ctx, "T0001", id); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 30 * time.Second}

	const every = 2 * time.Millisecond // 500 events a second
	var mu sync.Mutex
	durs := make([]time.Duration, 0, b.N)
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	i := 0
	for b.Loop() {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		n := i
		i++
		wg.Go(func() {
			ts := fmt.Sprintf("1764100000.%06d", n)
			const question = "pod api-7 keeps restarting after the deploy, what should I check?"
			if inboxOnly {
				user, _ := app.person(ctx, "T0001", fmt.Sprintf("U%04d", n%people))
				th := conversations.ThreadKey{Platform: Platform, Tenant: "T0001", Channel: "C0BENCH", Thread: ts}
				t0 := time.Now()
				_, err := inbox.Accept(ctx, "EvB"+strconv.Itoa(n), bot.TurnArgs{Platform: Platform, UserID: user, Thread: &th,
					Text: question, Source: conversations.SourceSlack, Meta: map[string]string{metaUser: "U0000", metaUserTeam: "T0001", metaTS: ts}})
				d := time.Since(t0)
				if err != nil {
					failed.Add(1)
				}
				mu.Lock()
				durs = append(durs, d)
				mu.Unlock()
				return
			}
			body := slackfake.EventCallback("T0001", "EvB"+strconv.Itoa(n), slackfake.AppMention(fmt.Sprintf("U%04d", n%people), "C0BENCH", ts, "", question))
			req, _ := http.NewRequest(http.MethodPost, srv.URL+PathEvents, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			slackfake.SignRequest(req, testSecret, body, time.Now())
			t0 := time.Now()
			resp, err := client.Do(req)
			d := time.Since(t0)
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
			mu.Lock()
			durs = append(durs, d)
			mu.Unlock()
		})
	}
	elapsed := time.Since(start) // sending, at the fixed rate
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d deliveries not acked with 200", f, i)
	}
	// Let the workers take what they can, then look at the process.
	deadline := time.Now().Add(30 * time.Second)
	for model.InFlight() < min(workers, i) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	runtime.GC()
	rss := rssBytes()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	slices.Sort(durs)
	pctOf := func(ds []time.Duration, p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	pct := func(p float64) time.Duration { return pctOf(durs, p) }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "ack-p99-ms")
	if len(handled) > 0 {
		slices.Sort(handled)
		b.ReportMetric(float64(pctOf(handled, 0.50).Microseconds())/1000, "handler-p50-ms")
		b.ReportMetric(float64(pctOf(handled, 0.99).Microseconds())/1000, "handler-p99-ms")
	}
	b.ReportMetric(float64(i)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(model.InFlight()), "turns-in-model")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.Logf("%d events in %s; %d turns in a model call, %d goroutines", i, elapsed.Round(time.Millisecond), model.InFlight(), runtime.NumGoroutine())

	base, err := pgbench.Run(ctx, "-N", 1, 5*time.Second)
	if err != nil {
		b.Logf("no baseline: %v", err)
		return
	}
	b.Logf("%s; ack p50 = %.2f pgbench -N transactions, p99 = %.2f", base,
		float64(pct(0.50))/float64(base.Latency), float64(pct(0.99))/float64(base.Latency))
	b.ReportMetric(float64(base.Latency.Microseconds())/1000, "pgbench-N-ms")
	b.ReportMetric(float64(pct(0.99))/float64(base.Latency), "p99/pgbench-N")
}
