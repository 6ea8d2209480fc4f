package bot

import "context"

// Replier posts replies on a chat platform. The turn worker calls it once a
// reply is stored, and also with an unstored Reply (only Text set, see
// Reply.Stored) to tell the user that a turn failed.
//
// Reply returns the platform's id of the posted message (a Slack ts, a Teams
// activity id); the worker records it on the assistant message, so a retried
// job knows the reply is already out and does not post it twice.
type Replier interface {
	Reply(ctx context.Context, t Turn, r Reply) (platformMessageID string, err error)
}

// ReplierFunc adapts a function to Replier.
type ReplierFunc func(ctx context.Context, t Turn, r Reply) (string, error)

// Reply calls f.
func (f ReplierFunc) Reply(ctx context.Context, t Turn, r Reply) (string, error) { return f(ctx, t, r) }
