package slack

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/periodic"
)

// Notifier posts reports (the daily usage digest, the weekly runbook gap
// report) to one Slack channel with chat.postMessage.
type Notifier struct {
	client  *slack.Client
	channel string
}

var _ periodic.Notifier = (*Notifier)(nil)

// NewNotifier returns a notifier posting to channel (an id like C0123 or a
// name) with the bot token. apiURL is SLACK_API_URL (ending in /api/); empty
// means Slack's own.
func NewNotifier(token, apiURL, channel string) *Notifier {
	return &Notifier{client: newClient(token, apiURL, nil), channel: channel}
}

// Notify posts text as one message. The text is escaped (& < >), so a name
// in a report can never ping a channel or a user. Errors, rate limits
// included, are returned for the job's retry to handle.
func (n *Notifier) Notify(ctx context.Context, text string) error {
	_, _, err := n.client.PostMessageContext(ctx, n.channel,
		slack.MsgOptionText(text, true), slack.MsgOptionDisableLinkUnfurl())
	if err != nil {
		return fmt.Errorf("post report to slack channel %s: %w", n.channel, err)
	}
	return nil
}
