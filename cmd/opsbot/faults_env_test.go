//go:build faults

package main

// The fault tests (make test-faults) run opsbot serve as real processes —
// this test binary run again as the binary (processEnv) — on a database of
// their own, with Slack and the model played by the fakes in the test
// process. So a test can SIGKILL or SIGTERM a server, cut its database
// connections or make the model hang, start it again, and count what
// reached Slack and the database.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/serveproc"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/users"
)

// The fake workspace's person who asks, and the servers' signing secret.
const (
	faultUser   = "U0ANA"
	faultSecret = "fault-signing-secret"
)

// faultEnv is one fault test's world: a database, the fake Slack and the
// fake model, and the environment servers on them start with.
type faultEnv struct {
	t     *testing.T
	db    *pgxpool.Pool
	dbURL string
	slack *slackfake.Server
	model *modelfake.Server
	env   map[string]string
}

// newFaultEnv builds a world whose model answers with replies (as
// modelfake.Config.Replies). Servers started in it answer Slack over HTTP
// and the REST API, with no scheduled jobs and no embeddings unless a test
// sets them.
func newFaultEnv(t *testing.T, replies ...modelfake.Reply) *faultEnv {
	t.Helper()
	pool, url := testdb.NewWithURL(t)
	f := &faultEnv{t: t, db: pool, dbURL: url, slack: slackfake.ForTest(t), model: modelfake.ForTest(t, replies...)}
	f.slack.AddPerson(faultUser, "Ana Reyes", "Asia/Manila")
	f.env = map[string]string{
		"DATABASE_URL":    url,
		"SLACK_BOT_TOKEN": slackfake.BotToken, "SLACK_SIGNING_SECRET": faultSecret, "SLACK_API_URL": f.slack.APIURL(),
		"OPENAI_BASE_URL": f.model.BaseURL(), "OPENAI_API_KEY": "sk-fault", "OPSBOT_MODEL": "gpt-4o-mini",
		"OPSBOT_EMBEDDING_MODEL": "off",
		"OPSBOT_DIGEST_SCHEDULE": "off", "OPSBOT_GAPS_SCHEDULE": "off",
		"OPSBOT_AUTO_ARCHIVE_SCHEDULE": "off", "OPSBOT_RETENTION_SCHEDULE": "off",
	}
	return f
}

// replica is one opsbot serve process.
type replica struct {
	name string
	base string // http://127.0.0.1:port
	proc *serveproc.Process
}

// start starts a server with the world's environment and extra, and waits
// until it answers /healthz. It is killed at cleanup if still running; its
// log is shown when the test failed.
func (f *faultEnv) start(name string, extra map[string]string) *replica {
	t := f.t
	t.Helper()
	env := map[string]string{processEnv: "1"}
	for _, m := range []map[string]string{f.env, extra} {
		for k, v := range m {
			env[k] = v
		}
	}
	p, err := serveproc.Start(context.Background(), serveproc.Config{Path: os.Args[0], Args: []string{"serve"}, Env: env})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.Logs())
		}
	})
	return &replica{name: name, base: p.Base, proc: p}
}

// kill ends the server with SIGKILL, as the OOM killer or a lost node
// would: nothing of it runs on.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	r.proc.Kill()
}

// term sends SIGTERM and waits up to limit for the server to exit; it
// returns the exit code.
func (r *replica) term(t *testing.T, limit time.Duration) int {
	t.Helper()
	code, err := r.proc.Term(limit)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	return code
}

// mention is a question put to the bot with an @mention in a channel of
// its own, starting a thread there: the reply belongs in (channel, ts).
type mention struct {
	id, channel, ts, text string
}

func newMention(i int, text string) mention {
	return mention{id: fmt.Sprintf("Ev%05d", i), channel: fmt.Sprintf("C%05d", i), ts: fmt.Sprintf("1800000000.%06d", i), text: text}
}

// send delivers the mention's event to a server over the Events API,
// signed; retry > 0 marks a redelivery as Slack does. It returns the
// status of the ack.
func (m mention) send(base string, retry int) (int, error) {
	body := slackfake.EventCallback(slackfake.TeamID, m.id, slackfake.AppMention(faultUser, m.channel, m.ts, "", m.text))
	req, err := http.NewRequest(http.MethodPost, base+"/slack/events", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	slackfake.SignRequest(req, faultSecret, body, time.Now())
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", fmt.Sprint(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// mustSend delivers the mention and requires the ack.
func (f *faultEnv) mustSend(base string, m mention) {
	f.t.Helper()
	if status, err := m.send(base, 0); err != nil || status != http.StatusOK {
		f.t.Fatalf("event %s: %d %v, want 200", m.id, status, err)
	}
}

// replies are the messages in the mention's thread that everyone sees.
func (f *faultEnv) replies(m mention) []slackfake.Message {
	return f.slack.InThread(m.channel, m.ts)
}

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count runs a count query on the world's database.
func (f *faultEnv) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("count: %v", err)
	}
	return n
}

// apiUser creates a person with an API token and n conversations, and
// returns the token and the conversation ids.
func (f *faultEnv) apiUser(handle string, n int) (string, []uuid.UUID) {
	f.t.Helper()
	ctx := context.Background()
	store := users.NewStore(f.db, "Asia/Singapore")
	u, err := store.Ensure(ctx, handle, users.RoleUser)
	if err != nil {
		f.t.Fatal(err)
	}
	_, secret, err := store.CreateToken(ctx, u.ID, "faults")
	if err != nil {
		f.t.Fatal(err)
	}
	convs := make([]uuid.UUID, n)
	for i := range convs {
		c, err := conversations.NewStore(f.db).Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: conversations.SourceAPI,
			Title: fmt.Sprintf("fault %d", i)})
		if err != nil {
			f.t.Fatal(err)
		}
		convs[i] = c.ID
	}
	return secret, convs
}

// apiTurn is the outcome of one REST turn.
type apiTurn struct {
	status int
	answer string // the assistant message's content, on 201
	detail string // the problem's detail otherwise
	err    error
}

// ask sends a question to a conversation over the REST API and waits for
// the answer; idempotencyKey, when not empty, is sent as Idempotency-Key.
func ask(base, token string, conv uuid.UUID, question, idempotencyKey string) apiTurn {
	body, _ := json.Marshal(map[string]string{"content": question})
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/conversations/"+conv.String()+"/messages", bytes.NewReader(body))
	if err != nil {
		return apiTurn{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return apiTurn{err: err}
	}
	defer resp.Body.Close()
	var out struct {
		AssistantMessage struct {
			Content string `json:"content"`
		} `json:"assistant_message"`
		Detail string `json:"detail"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return apiTurn{status: resp.StatusCode, answer: out.AssistantMessage.Content, detail: out.Detail, err: err}
}
