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

// StreamingReplier is a Replier that can show an answer while the model
// writes it (Slack chat.startStream, Teams streaming in 1:1 chats). Before a
// fresh model call the turn worker calls Stream and feeds the returned
// function every piece of the answer; it then calls Reply as usual, which
// must finish (or, for a failure notice, replace) the streamed message of
// that turn — adapters find it by Turn.Key. A turn already stored is never
// streamed again.
type StreamingReplier interface {
	Replier
	Stream(ctx context.Context, t Turn) (onDelta func(string), err error)
}
