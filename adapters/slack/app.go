// Package slack is opsbot's Slack surface: the Events API over HTTP
// (/slack/events) and Socket Mode with one handler behind both, the /opsbot
// slash command (/slack/commands), buttons (/slack/interactivity), and the
// Replier that posts answers in threads, streamed where the workspace
// allows it. Inbound events are recorded through the chat inbox and acked
// at once; the turn job answers. The package also has the Notifier that
// posts reports to a channel.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/users"
)

// Platform is the TurnArgs.Platform and thread key platform of Slack turns.
const Platform = "slack"

// Inbox records an inbound event and its turn in one transaction;
// *bot.Inbox is one. A delivery is acked only after Accept returns.
type Inbox interface {
	Accept(ctx context.Context, eventKey string, args bot.TurnArgs) (isNew bool, err error)
}

// Commands runs the shared command set; *commands.Set is one.
type Commands interface {
	RunText(ctx context.Context, c commands.Caller, text string) (commands.Result, error)
	Do(ctx context.Context, c commands.Caller, a commands.Action) (commands.Result, error)
}

// Config is what an App is built from. BotToken, DB, Users and Commands
// are required.
type Config struct {
	BotToken      string // SLACK_BOT_TOKEN (xoxb-…)
	SigningSecret string // SLACK_SIGNING_SECRET: the HTTP endpoints; empty serves none
	AppToken      string // SLACK_APP_TOKEN (xapp-…): Socket Mode; empty runs none
	APIURL        string // SLACK_API_URL, ending in /api/; empty is Slack's own
	DB            conversations.DBTX
	Users         *users.Store
	Commands      Commands
	Log           *slog.Logger // nil discards
	// HTTPClient calls the Web API; nil has a 15 s timeout.
	HTTPClient *http.Client
	// PostEvery spaces chat.postMessage calls in one channel (Slack allows
	// about one a second); 0 is one second.
	PostEvery time.Duration
	// UpdateEvery spaces the updates of one streamed answer (chat.update
	// is Tier 3, about 50 a minute); 0 is 1.5 seconds.
	UpdateEvery time.Duration
	// ProfileTTL is how long a person's users.info name and time zone are
	// trusted before they are read again; 0 is 12 hours.
	ProfileTTL time.Duration
}

// App is the Slack surface. It is safe for concurrent use.
type App struct {
	cfg     Config
	api     *slack.Client
	hc      *http.Client
	convs   *conversations.Store
	users   *users.Store
	cmds    Commands
	log     *slog.Logger
	posts   *pacer
	people  *profiles
	streams *streamSet

	mu       sync.Mutex
	botUser  string               // the bot's user id, once known
	noStream map[string]time.Time // team → until when chat.startStream is not tried
}

var _ bot.StreamingReplier = (*App)(nil)

// New builds the surface.
func New(cfg Config) (*App, error) {
	switch {
	case cfg.BotToken == "":
		return nil, errors.New("slack: a bot token is required")
	case cfg.DB == nil || cfg.Users == nil || cfg.Commands == nil:
		return nil, errors.New("slack: DB, Users and Commands are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PostEvery <= 0 {
		cfg.PostEvery = defaultPostEvery
	}
	if cfg.UpdateEvery <= 0 {
		cfg.UpdateEvery = 1500 * time.Millisecond
	}
	if cfg.ProfileTTL <= 0 {
		cfg.ProfileTTL = 12 * time.Hour
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &App{
		cfg:      cfg,
		api:      newClient(cfg.BotToken, cfg.APIURL, hc),
		hc:       hc,
		convs:    conversations.NewStore(cfg.DB),
		users:    cfg.Users,
		cmds:     cfg.Commands,
		log:      cfg.Log.With("platform", Platform),
		posts:    newPacer(cfg.PostEvery),
		people:   newProfiles(cfg.ProfileTTL),
		streams:  &streamSet{m: map[string]*stream{}},
		noStream: map[string]time.Time{},
	}, nil
}

// botUserID is the bot's own user id: from the event's authorizations when
// it carries them, else from auth.test once. Empty when neither worked.
func (a *App) botUserID(ctx context.Context, auths []slack.EventAuthorization) string {
	for _, au := range auths {
		if au.IsBot && au.UserID != "" {
			a.mu.Lock()
			a.botUser = au.UserID
			a.mu.Unlock()
			return au.UserID
		}
	}
	a.mu.Lock()
	id := a.botUser
	a.mu.Unlock()
	if id != "" {
		return id
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var resp *slack.AuthTestResponse
	err := call(ctx, methodAuthTest, func(ctx context.Context) (err error) {
		resp, err = a.api.AuthTestContext(ctx)
		return err
	})
	if err != nil {
		a.log.WarnContext(ctx, "find the bot's user id", "error", err)
		return ""
	}
	a.mu.Lock()
	a.botUser = resp.UserID
	a.mu.Unlock()
	return resp.UserID
}

// streamingAllowed reports whether chat.startStream is worth trying in a
// workspace: after it failed for a reason other than a rate limit, the
// workspace gets postMessage and chat.update for an hour.
func (a *App) streamingAllowed(team string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Now().After(a.noStream[team])
}

func (a *App) refuseStreaming(team string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.noStream) > maxPacedKeys {
		clear(a.noStream)
	}
	a.noStream[team] = time.Now().Add(time.Hour)
}

// errNoThread is a turn the Replier cannot place: every Slack turn has a
// thread (the inbox records it), so this is a wiring fault.
var errNoThread = errors.New("slack: a turn without a thread")

// threadOf is the thread a turn's replies go in.
func threadOf(t bot.Turn) (conversations.ThreadKey, error) {
	if t.Thread == nil || t.Thread.Channel == "" || t.Thread.Thread == "" {
		return conversations.ThreadKey{}, fmt.Errorf("turn %s: %w", t.Key, errNoThread)
	}
	return *t.Thread, nil
}
