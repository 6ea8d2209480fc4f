package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/adapters/openai"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/migrations"
	"github.com/apacops/opsbot/users"
)

// The model's token counts per call, and what they cost with the built-in
// price of gpt-4o-mini ($0.15 in, $0.60 out per million tokens):
// 1,200 × 0.15 + 300 × 0.60 = 180 + 180 = 360 micro-USD.
const (
	modelPromptTokens     = 1200
	modelCompletionTokens = 300
	costPerCallMicroUSD   = 360
)

// answer is the model's reply with text, at the usage above.
func answer(text string) modelfake.Reply {
	return modelfake.Reply{Chunks: modelfake.Words(text), Usage: &modelfake.Usage{Prompt: modelPromptTokens, Completion: modelCompletionTokens}}
}

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// defaultAnswer is the model's answer to a question no test scripted.
const defaultAnswer = "Check **disk** usage with `df -h`."

// env is the whole Slack surface on a real database and River, behind a
// local HTTP server, with the real openai adapter on a fake model and the
// real slack-go client on a fake Slack. The package shares one (building
// a database per test costs seconds); tests keep apart by using their own
// event ids, channels and threads.
type env struct {
	db      *pgxpool.Pool
	slack   *slackfake.Server
	model   *modelfake.Server
	app     *App
	replier *testReplier
	inbox   *bot.Inbox
	srv     *httptest.Server
	users   *users.Store
	river   *river.Client[pgx.Tx]
}

var (
	testPool  *pgxpool.Pool
	sharedEnv *env
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests gives the package one migrated database and one surface on it.
func runTests(m *testing.M) int {
	ctx := context.Background()
	dbURL, err := testdb.Create(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = testdb.Drop(ctx, dbURL) }()
	if testPool, err = pgxpool.New(ctx, dbURL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testPool.Close()
	if err := migrations.Migrate(ctx, testPool); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := buildEnv(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

func buildEnv(ctx context.Context) (stop func(), err error) {
	e := &env{db: testPool, slack: slackfake.Start(slackfake.Config{Record: true}),
		model: modelfake.Start(modelfake.Config{Replies: []modelfake.Reply{answer(defaultAnswer)}})}
	llm, err := openai.New(openai.Config{BaseURL: e.model.BaseURL(), APIKey: "sk-test", Model: "gpt-4o-mini", MaxRetries: -1})
	if err != nil {
		return nil, err
	}
	e.users = users.NewStore(e.db, "Asia/Singapore")
	cmds := commands.New(commands.Config{DB: e.db, Users: e.users, Gaps: knowledge.New(e.db, time.Now)})
	e.app, err = New(Config{BotToken: slackfake.BotToken, SigningSecret: testSecret, AppToken: slackfake.AppToken, APIURL: e.slack.APIURL(),
		DB: e.db, Users: e.users, Commands: cmds, PostEvery: 10 * time.Millisecond, UpdateEvery: 50 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	e.replier = &testReplier{App: e.app, crash: map[string]bool{}, noStream: map[string]bool{}, crashed: map[string]bool{}}
	workers := river.NewWorkers()
	engine := bot.New(bot.Config{DB: e.db, LLM: llm, Model: "gpt-4o-mini"})
	river.AddWorker(workers, bot.NewTurnWorker(engine, cmds, map[string]bot.Replier{Platform: e.replier}, nil))
	cfg := testriver.Config(workers, nil)
	cfg.Queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: 8}
	if e.river, err = river.NewClient(riverpgxv5.New(e.db), cfg); err != nil {
		return nil, err
	}
	if err := e.river.Start(ctx); err != nil {
		return nil, err
	}
	e.inbox = bot.NewInbox(e.db, e.river)
	mux := http.NewServeMux()
	for _, r := range e.app.Routes(e.inbox) {
		mux.Handle(r.Method+" "+r.Path, http.MaxBytesHandler(r.Handler, r.MaxBodyBytes))
	}
	e.srv = httptest.NewServer(mux)
	e.slack.AddPerson("U1ANA", "Ana Reyes", "Asia/Manila")
	e.slack.AddPerson("U2RAVI", "Ravi Kumar", "Asia/Kolkata")
	sharedEnv = e
	return func() {
		e.srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.river.Stop(sctx)
		e.slack.Close()
		e.model.Close()
	}, nil
}

// testReplier is the app as the turn worker sees it, with two switches per
// turn key: crash (post, then fail the first attempt as if the process
// died before the worker stored the ts) and noStream (answer in one piece).
type testReplier struct {
	*App
	mu       sync.Mutex
	crash    map[string]bool
	crashed  map[string]bool
	noStream map[string]bool
}

var errCrash = errors.New("the process died after posting")

func (r *testReplier) Stream(ctx context.Context, t bot.Turn) (func(string), error) {
	r.mu.Lock()
	off := r.noStream[t.Key]
	r.mu.Unlock()
	if off {
		return nil, errors.New("streaming is off for this turn")
	}
	return r.App.Stream(ctx, t)
}

func (r *testReplier) Reply(ctx context.Context, t bot.Turn, rep bot.Reply) (string, error) {
	ts, err := r.App.Reply(ctx, t, rep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && rep.Stored() && r.crash[t.Key] {
		delete(r.crash, t.Key)
		r.crashed[t.Key] = true
		return "", errCrash
	}
	return ts, err
}

func (r *testReplier) set(m map[string]bool, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m[key] = true
}

func (r *testReplier) didCrash(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.crashed[key]
}

// testEnv is the shared surface, reset to a world where nothing has
// happened yet (so tests also repeat under -count=N); at the test's end it
// checks that every Web API method called is one the manifest grants
// scopes for.
func testEnv(t *testing.T) *env {
	t.Helper()
	e := sharedEnv
	testriver.WaitFor(t, "the previous test's turns", func() bool { return e.idle(t) })
	if _, err := e.db.Exec(context.Background(), `TRUNCATE users, inbound_events, river_job CASCADE`); err != nil {
		t.Fatalf("reset the database: %v", err)
	}
	e.slack.Reset()
	e.model.Reset()
	e.app.people = newProfiles(e.app.cfg.ProfileTTL)
	e.app.mu.Lock()
	e.app.botUser, e.app.noStream = "", map[string]time.Time{}
	e.app.mu.Unlock()
	t.Cleanup(func() {
		for _, m := range e.slack.Methods() {
			if _, ok := apiScopes[m]; !ok {
				t.Errorf("called %s, which apiScopes (and so the manifest) does not know", m)
			}
		}
	})
	return e
}

// post sends a signed request as Slack does, now.
func (e *env) post(t testing.TB, path, contentType string, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	slackfake.SignRequest(req, testSecret, body, time.Now())
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// send delivers an envelope over Socket Mode.
func (e *env) send(t testing.TB, envelopeID, typ string, payload any, retry int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.slack.Send(ctx, slackfake.Envelope{ID: envelopeID, Type: typ, Payload: payload, Retry: retry}); err != nil {
		t.Fatal(err)
	}
}

// waitAck waits for an envelope's ack and returns its payload.
func (e *env) waitAck(t testing.TB, envelopeID string) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a, err := e.slack.WaitAck(ctx, envelopeID)
	if err != nil {
		t.Fatal(err)
	}
	return a.Payload
}

// response waits for the post to response_url id and returns it.
func (e *env) response(t testing.TB, id string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := e.slack.Response(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// setFault installs a fault in the fake Slack for the rest of the test.
func (e *env) setFault(t testing.TB, f slackfake.Fault) {
	e.slack.SetFault(f)
	t.Cleanup(func() { e.slack.SetFault(nil) })
}

// deliver posts an Events API callback from team T0001; retry > 0 adds
// X-Slack-Retry-Num.
func (e *env) deliver(t testing.TB, eventID string, inner map[string]any, retry int) *http.Response {
	t.Helper()
	return e.deliverFrom(t, "T0001", eventID, inner, retry)
}

func (e *env) deliverFrom(t testing.TB, team, eventID string, inner map[string]any, retry int) *http.Response {
	t.Helper()
	h := http.Header{}
	if retry > 0 {
		h.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		h.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return e.post(t, PathEvents, "application/json", slackfake.EventCallback(team, eventID, inner), h)
}

// slashForm is /opsbot as Slack posts it.
func (e *env) slashForm(user, channel, text, responseID string) url.Values {
	return url.Values{"token": {"legacy"}, "team_id": {"T0001"}, "team_domain": {"apacops"}, "channel_id": {channel},
		"channel_name": {"ops"}, "user_id": {user}, "user_name": {"someone"}, "command": {SlashCommand}, "text": {text},
		"response_url": {e.slack.ResponseURL(responseID)}, "trigger_id": {"1.2.3"}, "api_app_id": {"A0OPS"}}
}

// slash posts a signed /opsbot and decodes the answer.
func (e *env) slash(t testing.TB, user, channel, text, responseID string) map[string]any {
	t.Helper()
	resp := e.post(t, PathCommands, "application/x-www-form-urlencoded", []byte(e.slashForm(user, channel, text, responseID).Encode()), nil)
	var out map[string]any
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/opsbot %s: got %d, want 200", text, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("/opsbot %s answer: %v", text, err)
	}
	return out
}

// pressPayload is a block_actions payload: user pressed the button with
// actionID and value.
func (e *env) pressPayload(user, channel, actionID, value, responseID string) map[string]any {
	return map[string]any{
		"type": "block_actions", "team": map[string]any{"id": "T0001", "domain": "apacops"},
		"user": map[string]any{"id": user, "team_id": "T0001"}, "api_app_id": "A0OPS",
		"channel": map[string]any{"id": channel, "name": "ops"}, "response_url": e.slack.ResponseURL(responseID),
		"container": map[string]any{"type": "message", "is_ephemeral": true},
		"actions": []any{map[string]any{"type": "button", "action_id": actionID, "block_id": "b1", "value": value,
			"action_ts": "1764000100.000001", "text": map[string]any{"type": "plain_text", "text": "x"}}},
	}
}

// press posts a signed button press.
func (e *env) press(t testing.TB, user, channel, actionID, value, responseID string) *http.Response {
	t.Helper()
	payload, _ := json.Marshal(e.pressPayload(user, channel, actionID, value, responseID))
	return e.post(t, PathInteractivity, "application/x-www-form-urlencoded", []byte(url.Values{"payload": {string(payload)}}.Encode()), nil)
}

func (e *env) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// answers waits until a thread has n messages and no turn job is left to
// run, and returns the thread's messages.
func (e *env) answers(t testing.TB, channel, thread string, n int) []slackfake.Message {
	t.Helper()
	testriver.WaitFor(t, fmt.Sprintf("%d messages in thread %s", n, thread), func() bool {
		return len(e.slack.InThread(channel, thread)) >= n && e.idle(t)
	})
	return e.slack.InThread(channel, thread)
}

// mentionAnswered has Ana mention the bot in a new thread (ts) of channel
// and waits for the answer.
func (e *env) mentionAnswered(t testing.TB, eventID, channel, ts, question string) []slackfake.Message {
	t.Helper()
	e.deliver(t, eventID, slackfake.AppMention("U1ANA", channel, ts, "", question), 0)
	return e.answers(t, channel, ts, 1)
}

// idle reports whether no turn job waits or runs.
func (e *env) idle(t testing.TB) bool {
	return e.count(t, `SELECT count(*) FROM river_job WHERE kind = $1 AND state IN ('available', 'running', 'retryable', 'scheduled')`, bot.TurnKind) == 0
}

// userOf is the opsbot user behind a Slack user of T0001.
func (e *env) userOf(t testing.TB, slackUser string) users.User {
	t.Helper()
	var id uuid.UUID
	if err := e.db.QueryRow(context.Background(), `SELECT user_id FROM identities WHERE platform = 'slack' AND tenant = 'T0001' AND external_id = $1`,
		slackUser).Scan(&id); err != nil {
		t.Fatalf("identity of %s: %v", slackUser, err)
	}
	u, err := e.users.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// slashCommandOf reads /opsbot's form as slack-go does.
func slashCommandOf(v url.Values) slack.SlashCommand {
	return slack.SlashCommand{TeamID: v.Get("team_id"), ChannelID: v.Get("channel_id"), UserID: v.Get("user_id"),
		Command: v.Get("command"), Text: v.Get("text"), ResponseURL: v.Get("response_url")}
}
