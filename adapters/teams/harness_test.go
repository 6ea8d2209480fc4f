package teams

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/fakes/teamsfake"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/internal/testriver"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/users"
)

// fakeLLM answers at once, streaming its answer in pieces.
type fakeLLM struct {
	mu     sync.Mutex
	asked  []string // the last user message of each call
	chunks []string
}

func (f *fakeLLM) Complete(ctx context.Context, req bot.Request, onDelta func(string)) (bot.Completion, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req.Messages[len(req.Messages)-1].Content)
	chunks := f.chunks
	f.mu.Unlock()
	for _, c := range chunks {
		if onDelta != nil {
			onDelta(c)
			time.Sleep(15 * time.Millisecond) // long enough for a streamed update between pieces
		}
	}
	return bot.Completion{Text: strings.Join(chunks, ""), FinishReason: "stop", Model: "gpt-4o-mini",
		Usage: &bot.ProviderUsage{PromptTokens: 120, CompletionTokens: 30}}, nil
}

func (f *fakeLLM) questions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

// fakeRunbooks finds the same two sections for every question.
type fakeRunbooks struct{}

func (fakeRunbooks) SearchFor(context.Context, knowledge.Asker, string, int) ([]knowledge.Result, error) {
	return []knowledge.Result{
		{Document: "Disk full", Section: "Free space on /var", Path: "disk-full.md", Score: 0.9,
			Snippet: "Vacuum the journal: journalctl --vacuum-size=500M", Content: "Vacuum the journal: journalctl --vacuum-size=500M"},
		{Document: "Kafka consumer lag", Section: "Kafka consumer lag", Path: "kafka-consumer-lag.md", Score: 0.5,
			Snippet: "Check the consumer group", Content: "Check the consumer group"},
	}, nil
}

func (fakeRunbooks) RecordGap(context.Context, string, uuid.UUID, uuid.UUID) error { return nil }

// harness is the bot's Teams endpoint on a real database and River, its
// turn worker answering with a fake model, all talking to a fake Bot
// Framework.
type harness struct {
	fake      *teamsfake.Server
	db        *pgxpool.Pool
	llm       *fakeLLM
	srv       *httptest.Server
	validator *Validator
	replier   *Replier
	skew      atomic.Int64 // added to the validator's clock
	// authHeader, when set, is sent as the Authorization header as is.
	authHeader string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{fake: teamsfake.ForTest(t), db: testdb.New(t),
		llm: &fakeLLM{chunks: []string{"Vacuum the journal ", "with journalctl [1]. ", "<at>Ana</at> @everyone"}}}
	tokens := NewTokenSource(Credentials{AppID: teamsfake.AppID, AppPassword: teamsfake.AppPassword, TokenURL: h.fake.TokenURL()}, nil)
	conn := NewConnector(tokens, nil)
	noWait(conn)
	h.replier = NewReplier(conn, nil)
	h.replier.streamEvery, h.replier.typingEvery = 5*time.Millisecond, 20*time.Millisecond
	people := users.NewStore(h.db, "Asia/Singapore")
	cmds := commands.New(commands.Config{DB: h.db, Users: people})
	engine := bot.New(bot.Config{DB: h.db, LLM: h.llm, Model: "gpt-4o-mini", Retriever: fakeRunbooks{}})
	workers := river.NewWorkers()
	river.AddWorker(workers, bot.NewTurnWorker(engine, cmds, map[string]bot.Replier{Platform: h.replier}, nil))
	client := testriver.Start(t, h.db, testriver.Config(workers, nil))
	h.validator = NewValidator(AuthConfig{AppID: teamsfake.AppID, MetadataURL: h.fake.MetadataURL(),
		Now: func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }})
	handler := NewHandler(HandlerConfig{Validator: h.validator, TenantID: teamsfake.TenantID, Inbox: bot.NewInbox(h.db, client),
		Identities: people, Actions: cmds, Answers: conversations.NewStore(h.db), Connector: conn})
	// httpapi gives every mount its body limit; so does this server.
	h.srv = httptest.NewServer(http.MaxBytesHandler(handler, MaxBodyBytes))
	t.Cleanup(h.srv.Close)
	return h
}

// token is a good token for the fake's activities.
func (h *harness) token(t *testing.T) string {
	t.Helper()
	tok, err := h.fake.Token(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testRSAKeys are the fake's keys: the first is the one it publishes.
func testRSAKeys(tb testing.TB) []*rsa.PrivateKey {
	tb.Helper()
	keys, err := teamsfake.RSAKeys()
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// sign makes an RS256 token with kid in its header.
func sign(tb testing.TB, claims jwt.MapClaims, kid string, key *rsa.PrivateKey) string {
	tb.Helper()
	tok, err := teamsfake.Sign(claims, kid, key)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// post delivers an activity with a bearer token ("" sends none) and
// returns the status and body.
func (h *harness) post(t *testing.T, activity any, token string) (int, string) {
	t.Helper()
	body, err := json.Marshal(activity)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if h.authHeader != "" {
		req.Header.Set("Authorization", h.authHeader)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor waits for the connector to have received n calls matching keep.
func (h *harness) waitFor(t *testing.T, what string, n int, keep func(teamsfake.Call) bool) []teamsfake.Call {
	t.Helper()
	var got []teamsfake.Call
	testriver.WaitFor(t, what, func() bool {
		got = got[:0]
		for _, c := range h.fake.Activities() {
			if keep(c) {
				got = append(got, c)
			}
		}
		return len(got) >= n
	})
	return got
}

// isMessage keeps posted messages (not typing, not card updates).
func isMessage(c teamsfake.Call) bool {
	return c.Method == http.MethodPost && c.Activity["type"] == "message"
}

// The people and places of the activities below.
const (
	anaAAD    = "aad-ana-0001"
	benAAD    = "aad-ben-0002"
	channelID = "19:ops-room@thread.tacv2"
	chatID    = "a:1personal-chat-with-ana"
)

// user is the opsbot user behind a Teams account.
func (h *harness) user(t *testing.T, aad string) users.User {
	t.Helper()
	u, err := users.NewStore(h.db, "Asia/Singapore").ResolveIdentity(context.Background(),
		users.Identity{Platform: "teams", Tenant: teamsfake.TenantID, ExternalID: aad, DisplayName: "Ana Reyes"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (h *harness) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := h.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
