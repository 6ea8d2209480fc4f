package main

import (
	"context"
	"errors"
	"strings"

	"github.com/apacops/opsbot/adapters/httpapi"
	"github.com/apacops/opsbot/adapters/slack"
	"github.com/apacops/opsbot/bot"
)

// SlackConfig is the Slack chat surface's part of the configuration. The
// bot token and the Web API URL are UsageConfig's SlackBotToken and
// SlackAPIURL (SLACK_BOT_TOKEN, SLACK_API_URL), which the report notifier
// shares.
type SlackConfig struct {
	// SigningSecret verifies Slack's HTTP requests (SLACK_SIGNING_SECRET);
	// with it the Events API, /opsbot and buttons are served over HTTP.
	SigningSecret string
	// AppToken (SLACK_APP_TOKEN, xapp-…) turns on Socket Mode: Slack
	// delivers the same requests over a WebSocket opsbot opens.
	AppToken string
}

// loadSlackConfig reads SlackConfig and checks SLACK_API_URL's shape.
func loadSlackConfig(getenv func(string) string) (SlackConfig, error) {
	c := SlackConfig{SigningSecret: getenv("SLACK_SIGNING_SECRET"), AppToken: getenv("SLACK_APP_TOKEN")}
	if u := getenv("SLACK_API_URL"); u != "" && !strings.HasSuffix(u, "/") {
		return SlackConfig{}, errors.New("SLACK_API_URL: must end in / (like https://slack.com/api/): method names are appended to it")
	}
	if c.AppToken != "" && !strings.HasPrefix(c.AppToken, "xapp-") {
		return SlackConfig{}, errors.New("SLACK_APP_TOKEN: must be an app-level token (xapp-…), not a bot token")
	}
	return c, nil
}

// newSlackSurface builds the Slack surface, or returns nil (saying so once
// in the log) when Slack is not configured: it needs SLACK_BOT_TOKEN and
// SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode), or both.
func newSlackSurface(cfg Config, d surfaceDeps) (*chatSurface, error) {
	sc, token := cfg.Slack, cfg.Usage.SlackBotToken
	if token == "" || (sc.SigningSecret == "" && sc.AppToken == "") {
		d.log.Info("Slack is off: it needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (Events API over HTTP) or SLACK_APP_TOKEN (Socket Mode)")
		return nil, nil
	}
	app, err := slack.New(slack.Config{BotToken: token, SigningSecret: sc.SigningSecret, AppToken: sc.AppToken,
		APIURL: cfg.Usage.SlackAPIURL, DB: d.pool, Users: d.users, Commands: d.commands, Log: d.log})
	if err != nil {
		return nil, err
	}
	s := &chatSurface{
		platform: slack.Platform,
		replier:  app,
		mounts: func(inbox *bot.Inbox) []httpapi.Mount {
			var ms []httpapi.Mount
			for _, r := range app.Routes(inbox) {
				ms = append(ms, httpapi.Mount{Method: r.Method, Path: r.Path, Handler: r.Handler, MaxBodyBytes: r.MaxBodyBytes})
			}
			return ms
		},
	}
	if sc.AppToken != "" {
		s.run = func(ctx context.Context, inbox *bot.Inbox) error { return app.RunSocketMode(ctx, inbox) }
	}
	d.log.Info("Slack is on", "events_api", sc.SigningSecret != "", "socket_mode", sc.AppToken != "")
	return s, nil
}
