package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/adapters/teams"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/users"
)

// chatSurface is a chat platform as serve wires it. Its Replier is known
// before the turn worker is built; its webhooks and long-lived connections
// need the inbox, which exists only once the River client does.
type chatSurface struct {
	platform string      // the TurnArgs.Platform its events carry: "slack", "teams"
	replier  bot.Replier // how the turn worker posts there
	// mounts returns its webhooks, served beside /api/v1.
	mounts func(inbox *bot.Inbox) []httpapi.Mount
	// run, when not nil, holds a connection open until ctx ends (Slack
	// Socket Mode); serve runs it beside the HTTP server.
	run func(ctx context.Context, inbox *bot.Inbox) error
}

// surfaceDeps is what a chat surface is built from.
type surfaceDeps struct {
	pool       *pgxpool.Pool
	users      *users.Store
	commands   *commands.Set
	log        *slog.Logger
	registerer prometheus.Registerer
	// teamsTokens is the Teams app token source, shared with the Teams
	// report poster; nil without Teams credentials.
	teamsTokens *teams.TokenSource
}

// chatSurfaces builds the configured chat surfaces.
func chatSurfaces(cfg Config, d surfaceDeps) ([]*chatSurface, error) {
	// One builder per platform, in a file named for it; a builder returns
	// nil when its platform is not configured (and says so in the log).
	builders := []func(Config, surfaceDeps) (*chatSurface, error){newSlackSurface, newTeamsSurface}
	var out []*chatSurface
	for _, build := range builders {
		s, err := build(cfg, d)
		if err != nil {
			return nil, err
		}
		if s != nil {
			out = append(out, s)
		}
	}
	return out, nil
}
