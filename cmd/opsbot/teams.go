package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/adapters/teams"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
)

// TeamsConfig is the Teams bot's registration: TEAMS_APP_ID,
// TEAMS_APP_PASSWORD, TEAMS_TENANT_ID (a single-tenant bot), and the
// endpoints tests point elsewhere: TEAMS_TOKEN_URL (default the tenant's
// token endpoint) and TEAMS_OPENID_METADATA_URL (default the Bot
// Framework's). The Teams surface and the Teams report poster share it.
type TeamsConfig struct {
	AppID, AppPassword, TenantID string
	TokenURL                     string
	OpenIDMetadataURL            string
}

// loadTeamsConfig reads TeamsConfig. The metadata URL must be https (the
// keys that authenticate every activity come from it), except on the
// loopback interface, where tests run their fake.
func loadTeamsConfig(getenv func(string) string) (TeamsConfig, error) {
	c := TeamsConfig{
		AppID:             getenv("TEAMS_APP_ID"),
		AppPassword:       getenv("TEAMS_APP_PASSWORD"),
		TenantID:          getenv("TEAMS_TENANT_ID"),
		TokenURL:          getenv("TEAMS_TOKEN_URL"),
		OpenIDMetadataURL: or(getenv("TEAMS_OPENID_METADATA_URL"), teams.DefaultOpenIDMetadataURL),
	}
	if c.TokenURL == "" && c.TenantID != "" {
		c.TokenURL = teams.TokenURL(c.TenantID)
	}
	for _, v := range []struct{ name, value string }{
		{"TEAMS_OPENID_METADATA_URL", c.OpenIDMetadataURL}, {"TEAMS_TOKEN_URL", c.TokenURL},
	} {
		if v.value == "" {
			continue
		}
		if err := checkEndpoint(v.value); err != nil {
			return TeamsConfig{}, fmt.Errorf("%s: %w", v.name, err)
		}
	}
	return c, nil
}

// checkEndpoint accepts https URLs, and http ones on the loopback
// interface only.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("%q must be https", raw)
}

// surfaceOn reports whether the Teams surface is configured.
func (c TeamsConfig) surfaceOn() bool {
	return c.AppID != "" && c.AppPassword != "" && c.TenantID != ""
}

// newTeamsTokens is the process's one source of Teams app tokens, shared
// by the Teams surface and the Teams report poster; nil when the bot has
// no credentials.
func newTeamsTokens(c TeamsConfig) *teams.TokenSource {
	if c.AppID == "" || c.AppPassword == "" || c.TokenURL == "" {
		return nil
	}
	return teams.NewTokenSource(teams.Credentials{AppID: c.AppID, AppPassword: c.AppPassword, TokenURL: c.TokenURL},
		&http.Client{Timeout: 15 * time.Second})
}

// newTeamsSurface is the Teams surface: POST /api/messages and the
// replier the turn worker posts through. It is nil, with one log line,
// when TEAMS_APP_ID, TEAMS_APP_PASSWORD or TEAMS_TENANT_ID is not set.
func newTeamsSurface(cfg Config, d surfaceDeps) (*chatSurface, error) {
	c := cfg.Teams
	if !c.surfaceOn() || d.teamsTokens == nil {
		d.log.Info("Teams is off (set TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID to turn it on)")
		return nil, nil
	}
	conn := teams.NewConnector(d.teamsTokens, nil)
	validator := teams.NewValidator(teams.AuthConfig{AppID: c.AppID, MetadataURL: c.OpenIDMetadataURL})
	d.log.Info("Teams is on", "path", teams.Path, "tenant", c.TenantID)
	return &chatSurface{
		platform: teams.Platform,
		replier:  teams.NewReplier(conn, d.log),
		mounts: func(inbox *bot.Inbox) []httpapi.Mount {
			h := teams.NewHandler(teams.HandlerConfig{Validator: validator, TenantID: c.TenantID, Inbox: inbox,
				Identities: d.users, Actions: d.commands, Answers: conversations.NewStore(d.pool), Connector: conn, Log: d.log})
			return []httpapi.Mount{{Method: http.MethodPost, Path: teams.Path, Handler: h, MaxBodyBytes: teams.MaxBodyBytes}}
		},
	}, nil
}
