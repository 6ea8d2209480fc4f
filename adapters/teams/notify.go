// Package teams is the Microsoft Teams surface of opsbot: the Bot Framework
// endpoint (POST /api/messages) with its own token validation, the replier
// that answers turns in reply chains and chats, and the proactive poster of
// reports. Activities are read and written with msbotbuilder-go's schema.
package teams

import (
	"context"
	"fmt"
	"net/http"

	"github.com/apacops/opsbot/periodic"
)

// Notifier posts reports (the daily usage digest, the weekly runbook gap
// report) into one Teams conversation as the bot, proactively, through the
// Bot Connector of the conversation's service URL.
type Notifier struct {
	cfg       NotifierConfig
	connector *Connector
}

var _ periodic.Notifier = (*Notifier)(nil)

// NotifierConfig says where reports go and how the bot signs in.
type NotifierConfig struct {
	// Tokens is the bot's app token source, shared with the replier.
	Tokens *TokenSource
	// ServiceURL and ConversationID name the channel or chat to post in
	// (from any activity the bot received there).
	ServiceURL     string
	ConversationID string
	// Client makes the connector calls; nil means one with timeouts.
	Client *http.Client
}

// NewNotifier returns a notifier for c.
func NewNotifier(c NotifierConfig) *Notifier {
	return &Notifier{cfg: c, connector: NewConnector(c.Tokens, c.Client)}
}

// Notify posts text as a plain-text message. Throttling and transient
// faults (429, 412, 502, 504) are retried a few times; what still fails is
// returned for the job's retry to handle.
func (n *Notifier) Notify(ctx context.Context, text string) error {
	act := outActivity{Type: "message", Text: text, TextFormat: "plain"}
	if _, err := n.connector.Send(ctx, http.MethodPost, n.cfg.ServiceURL, activityPath(n.cfg.ConversationID, ""), act); err != nil {
		return fmt.Errorf("teams report: %w", err)
	}
	return nil
}
