package slack

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// Socket Mode: Slack delivers the same events, slash commands and button
// presses over a WebSocket the app opens (no public URL needed), and each
// envelope is acked on the socket instead of with an HTTP status. The same
// handler code runs behind both transports. An envelope that could not be
// recorded is left unacked, so Slack sends it again.

// socketWorkers bounds the envelopes handled at once on one connection.
const socketWorkers = 32

// socketRequests are the Socket Mode request types handled, by the
// manifest setting each needs (socket_mode_enabled, with event
// subscriptions, a slash command and interactivity).
var socketRequests = []socketmode.EventType{
	socketmode.EventTypeEventsAPI,
	socketmode.EventTypeSlashCommand,
	socketmode.EventTypeInteractive,
}

// socketTrouble are the connection events worth a warning.
var socketTrouble = []socketmode.EventType{
	socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeIncomingError,
	socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed,
}

// RunSocketMode holds a Socket Mode connection open until ctx ends,
// recording events through inbox. slack-go reconnects on its own; an
// error is returned only when it gives up (a revoked app token).
func (a *App) RunSocketMode(ctx context.Context, inbox Inbox) error {
	if a.cfg.AppToken == "" {
		return errors.New("slack: Socket Mode needs an app-level token (SLACK_APP_TOKEN)")
	}
	api := newClient(a.cfg.BotToken, a.cfg.APIURL, a.hc, slack.OptionAppLevelToken(a.cfg.AppToken))
	sm := socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)))
	h := &handler{app: a, inbox: inbox}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- sm.RunContext(ctx) }()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, socketWorkers)
	for {
		select {
		case <-ctx.Done():
			<-ran
			return nil
		case err := <-ran:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case evt := <-sm.Events:
			switch {
			case slices.Contains(socketRequests, evt.Type):
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					continue
				}
				wg.Go(func() {
					defer func() { <-slots }()
					h.envelope(ctx, sm, evt)
				})
			case evt.Type == socketmode.EventTypeConnected:
				a.log.InfoContext(ctx, "slack socket mode connected")
			case slices.Contains(socketTrouble, evt.Type):
				a.log.WarnContext(ctx, "slack socket mode trouble", "event", string(evt.Type), "detail", describe(evt.Data))
			}
		}
	}
}

// envelope handles one Socket Mode request and acks it.
func (h *handler) envelope(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	if evt.Request == nil {
		return
	}
	var payload any
	var follow func()
	switch data := evt.Data.(type) {
	case slackevents.EventsAPIEvent:
		if err := h.event(ctx, data, evt.Request.RetryAttempt); err != nil {
			h.app.log.ErrorContext(ctx, "slack event not recorded; Slack will resend it", "retry", evt.Request.RetryAttempt, "error", err)
			return // no ack
		}
	case slack.SlashCommand:
		resp, f := h.slash(ctx, data)
		if resp != nil {
			payload = resp
		}
		follow = f
	case slack.InteractionCallback:
		follow = h.interaction(ctx, data)
	default:
		return
	}
	if err := sm.AckCtx(ctx, evt.Request.EnvelopeID, payload); err != nil {
		h.app.log.WarnContext(ctx, "ack slack envelope", "error", err)
	}
	if follow != nil {
		follow()
	}
}

// describe renders a connection event's detail for the log; the errors
// slack-go reports carry no tokens.
func describe(data any) string {
	switch d := data.(type) {
	case error: // *slack.ConnectionErrorEvent, *slack.IncomingEventError
		return d.Error()
	case *socketmode.ErrorBadMessage:
		return d.Cause.Error()
	case *socketmode.ErrorWriteFailed:
		return d.Cause.Error()
	}
	return ""
}
