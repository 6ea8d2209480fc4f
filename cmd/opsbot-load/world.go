package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/fakes/teamsfake"
	"github.com/apacops/opsbot/internal/scratchdb"
	"github.com/apacops/opsbot/internal/serveproc"
)

// signingSecret is what the server checks the load's Slack requests
// with; it signs nothing real.
const signingSecret = "load-signing-secret"

// world is one load run's surroundings: a fresh database, the fakes in
// this process, one opsbot serve process on them, and the REST clients'
// tokens.
type world struct {
	opts     options
	dbURL    string
	db       *pgxpool.Pool // this process's own pool on the load database, for counts
	model    *modelfake.Server
	slack    *slackfake.Server
	teams    *teamsfake.Server
	srv      *serveproc.Process
	srvLog   *os.File
	pprof    string // the server's OPSBOT_PPROF_ADDR
	env      map[string]string
	tokens   []string // REST clients' API tokens, one user each; secrets, never printed
	answers  *answers
	dbName   string
	closeFns []func()
	client   *http.Client
	seq      atomic.Int64 // numbers every request of the run

	tokMu  sync.Mutex
	tok    string // the Teams activities' token
	tokExp time.Time
}

// newWorld creates the database, starts the fakes and the server, syncs
// the runbooks and mints the tokens. Whatever it made is undone by
// close, also when it fails midway.
func newWorld(ctx context.Context, o options, log io.Writer) (w *world, err error) {
	w = &world{opts: o, answers: newAnswers(), client: &http.Client{Timeout: o.turnTimeout(),
		Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}}}
	defer func() {
		if err != nil {
			w.close(context.Background())
			w = nil
		}
	}()
	if w.dbURL, err = scratchdb.Create(ctx, o.databaseURL, "opsbot_load_"); err != nil {
		return w, err
	}
	u, _ := url.Parse(w.dbURL)
	w.dbName = strings.TrimPrefix(u.Path, "/")
	if !o.keep {
		w.closeFns = append(w.closeFns, func() {
			if err := scratchdb.Drop(context.Background(), o.databaseURL, w.dbURL); err != nil {
				fmt.Fprintf(log, "drop %s: %v\n", w.dbName, err)
			}
		})
	}

	w.model = modelfake.Start(modelfake.Config{Replies: []modelfake.Reply{o.modelReply()}})
	w.closeFns = append(w.closeFns, w.model.Close)
	w.slack = slackfake.Start(slackfake.Config{OnPost: w.slackPosted})
	w.closeFns = append(w.closeFns, w.slack.Close)
	for i := range max(o.clients, waitSenders) {
		w.slack.AddPerson(slackUser(i), fmt.Sprintf("Load %d", i), "Asia/Singapore")
	}
	if w.teams, err = teamsfake.Start(teamsfake.Config{OnPost: w.teamsPosted}); err != nil {
		return w, err
	}
	w.closeFns = append(w.closeFns, w.teams.Close)

	if w.pprof, err = serveproc.FreeAddr(); err != nil {
		return w, err
	}
	w.env = map[string]string{
		"DATABASE_URL":    w.dbURL,
		"SLACK_BOT_TOKEN": slackfake.BotToken, "SLACK_SIGNING_SECRET": signingSecret, "SLACK_APP_TOKEN": slackfake.AppToken,
		"SLACK_API_URL":   w.slack.APIURL(),
		"OPENAI_BASE_URL": w.model.BaseURL(), "OPENAI_API_KEY": "sk-load", "OPSBOT_MODEL": "gpt-4o-mini",
		"OPSBOT_EMBEDDING_MODEL": "off",
		"TEAMS_APP_ID":           teamsfake.AppID, "TEAMS_APP_PASSWORD": teamsfake.AppPassword, "TEAMS_TENANT_ID": teamsfake.TenantID,
		"TEAMS_OPENID_METADATA_URL": w.teams.MetadataURL(), "TEAMS_TOKEN_URL": w.teams.TokenURL(),
		"OPSBOT_DIGEST_SCHEDULE": "off", "OPSBOT_GAPS_SCHEDULE": "off",
		"OPSBOT_AUTO_ARCHIVE_SCHEDULE": "off", "OPSBOT_RETENTION_SCHEDULE": "off",
		"OPSBOT_PPROF_ADDR": w.pprof,
		"OPSBOT_WORKERS":    strconv.Itoa(o.workers),
		// A model that sleeps before its first word (slack-wait) must not
		// be taken for a silent one and retried.
		"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT": (o.waitLatency + 30*time.Second).String(),
		"OPSBOT_MODEL_TIMEOUT":             (2*o.waitLatency + 90*time.Second).String(),
	}
	if _, err := w.opsbot(ctx, "migrate"); err != nil {
		return w, err
	}
	if o.runbooks != "" {
		if _, err := w.opsbot(ctx, "runbooks", "sync", o.runbooks); err != nil {
			return w, err
		}
	}
	for i := range o.clients {
		out, err := w.opsbot(ctx, "token", "create", "--user", fmt.Sprintf("load%d", i), "--name", "load")
		if err != nil {
			return w, err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		w.tokens = append(w.tokens, strings.TrimSpace(lines[len(lines)-1]))
	}
	if w.db, err = pgxpool.New(ctx, w.dbURL); err != nil {
		return w, fmt.Errorf("connect to %s: %w", w.dbName, err)
	}
	w.closeFns = append(w.closeFns, w.db.Close)

	if w.srvLog, err = os.CreateTemp("", "opsbot-load-server-*.log"); err != nil {
		return w, fmt.Errorf("server log: %w", err)
	}
	if w.srv, err = serveproc.Start(ctx, serveproc.Config{Path: o.opsbot, Args: []string{"serve"}, Env: w.env, Logs: w.srvLog}); err != nil {
		return w, fmt.Errorf("%w (server log: %s)", err, w.srvLog.Name())
	}
	// Socket Mode is connected once the server's socket is open.
	deadline := time.Now().Add(15 * time.Second)
	for w.slack.Sockets() == 0 {
		if time.Now().After(deadline) {
			return w, fmt.Errorf("the server opened no Socket Mode connection (server log: %s)", w.srvLog.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return w, nil
}

// opsbot runs a one-shot opsbot command against the load database and
// returns its stdout; its output is kept out of the error, since token
// create prints a secret.
func (w *world) opsbot(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, w.opts.opsbot, args...)
	cmd.Env = serveproc.Environ(os.Environ(), w.env)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := ""
		if args[0] != "token" {
			msg = "\n" + errOut.String()
		}
		return "", fmt.Errorf("opsbot %s: %w%s", strings.Join(args[:min(len(args), 2)], " "), err, msg)
	}
	return out.String(), nil
}

// stop ends the server with SIGTERM and returns its exit code.
func (w *world) stop() (int, error) {
	if w.srv == nil {
		return 0, errors.New("no server")
	}
	code, err := w.srv.Term(2*w.opts.waitLatency + 2*time.Minute)
	if err != nil {
		w.srv.Kill()
	}
	return code, err
}

// close kills the server if it still runs, stops the fakes and drops the
// database (unless --keep).
func (w *world) close(context.Context) {
	if w.srv != nil {
		w.srv.Kill()
	}
	if w.srvLog != nil {
		_ = w.srvLog.Close()
	}
	for i := len(w.closeFns) - 1; i >= 0; i-- {
		w.closeFns[i]()
	}
	w.closeFns = nil
}

// slackUser is the Slack user id of sender i.
func slackUser(i int) string { return fmt.Sprintf("ULOAD%04d", i) }

// answers matches the replies the fakes see to the questions sent: each
// question waits under its key (a Slack thread, a Teams reply chain)
// until its answer is posted.
type answers struct {
	mu      sync.Mutex
	pending map[string]*question
}

// question is one event sent, waiting for its answer.
type question struct {
	sent     time.Time
	answered time.Time // when the final answer was posted; zero until then
	done     chan struct{}
}

func newAnswers() *answers { return &answers{pending: map[string]*question{}} }

// expect registers a question about to be sent under key.
func (a *answers) expect(key string, sent time.Time) *question {
	q := &question{sent: sent, done: make(chan struct{})}
	a.mu.Lock()
	a.pending[key] = q
	a.mu.Unlock()
	return q
}

// posted records an answer under key at t; final is false for a message
// still being written. The first final answer counts.
func (a *answers) posted(key string, t time.Time, final bool) {
	if !final {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.pending[key]
	if q == nil || !q.answered.IsZero() {
		return
	}
	q.answered = t
	close(q.done)
}

// forget drops the questions of a finished scenario.
func (a *answers) forget(keys []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		delete(a.pending, k)
	}
}

// slackKey and teamsKey name where an answer goes.
func slackKey(channel, thread string) string { return "slack " + channel + " " + thread }
func teamsKey(conversation string) string    { return "teams " + conversation }

// slackPosted is the fake Slack's OnPost.
func (w *world) slackPosted(m slackfake.Message) {
	w.answers.posted(slackKey(m.Channel, m.ThreadTS), time.Now(), !strings.Contains(m.Metadata, `"final":false`))
}

// teamsPosted is the fake Bot Framework's OnPost.
func (w *world) teamsPosted(conversation string, _ map[string]any) {
	w.answers.posted(teamsKey(conversation), time.Now(), true)
}
