package conversations

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Channel names a chat channel on a platform: a Slack channel or DM, a
// Teams channel or chat. Its conversations are its threads'.
type Channel struct {
	Platform string // "slack" or "teams"
	Tenant   string // Slack team id, Teams tenant id
	ID       string // Slack channel id, Teams conversation id (without ;messageid=)
}

// Channel is the channel the thread is in.
func (k ThreadKey) InChannel() Channel {
	return Channel{Platform: k.Platform, Tenant: k.Tenant, ID: k.Channel}
}

func (c Channel) validate() error {
	if c.Platform == "" || c.Tenant == "" || c.ID == "" {
		return invalid("channel", "platform, tenant and id are all required")
	}
	return nil
}

// ListOpenInChannel returns the owner's open conversations in a channel,
// newest activity first, at most limit of them.
func (s *Store) ListOpenInChannel(ctx context.Context, ownerID uuid.UUID, ch Channel, limit int) ([]Conversation, error) {
	if err := ch.validate(); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE owner_id = $1 AND thread_platform = $2 AND thread_tenant = $3 AND thread_channel = $4
		  AND archived_at IS NULL
		ORDER BY activity_at DESC, id DESC LIMIT $5`, ownerID, ch.Platform, ch.Tenant, ch.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("list open conversations in %s: %w", ch.ID, err)
	}
	items, err := collectConversations(rows)
	if err != nil {
		return nil, fmt.Errorf("list open conversations in %s: %w", ch.ID, err)
	}
	return items, nil
}

// ChannelConversation is a conversation of a channel's recent activity, as
// a shift handover lists it.
type ChannelConversation struct {
	Conversation
	// Unanswered is true when the bot's latest reply in it did not find
	// its answer in the runbooks, or someone voted it unhelpful: the thread
	// still needs a person.
	Unanswered bool
}

// ChannelActivity returns the conversations of a channel active since
// since, newest activity first, at most limit of them, whoever owns them
// (everyone in a channel sees its threads).
func (s *Store) ChannelActivity(ctx context.Context, ch Channel, since time.Time, limit int) ([]ChannelConversation, error) {
	if err := ch.validate(); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT `+prefixed("c", conversationColumns)+`,
		       coalesce((last.metadata->>'unanswered')::boolean, false)
		       OR EXISTS (SELECT 1 FROM message_feedback f WHERE f.message_id = last.id AND f.vote < 0)
		FROM conversations c
		LEFT JOIN LATERAL (
			SELECT m.id, m.metadata FROM messages m
			WHERE m.conversation_id = c.id AND m.role = 'assistant'
			ORDER BY m.seq DESC LIMIT 1
		) last ON true
		WHERE c.thread_platform = $1 AND c.thread_tenant = $2 AND c.thread_channel = $3 AND c.activity_at >= $4
		ORDER BY c.activity_at DESC, c.id DESC LIMIT $5`, ch.Platform, ch.Tenant, ch.ID, since, limit)
	if err != nil {
		return nil, fmt.Errorf("channel activity of %s: %w", ch.ID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChannelConversation, error) {
		var cc ChannelConversation
		c, err := scanConversation(r, &cc.Unanswered)
		cc.Conversation = c
		return cc, err
	})
	if err != nil {
		return nil, fmt.Errorf("channel activity of %s: %w", ch.ID, err)
	}
	return out, nil
}

// DetachThread frees a thread from its conversation, so that the next
// message in the thread starts a new one (the "new" command in a chat that
// is one long thread, such as a Teams personal chat). The old conversation
// keeps its messages, its channel and a thread id made unique by its own
// id. It returns the conversation that was detached, or ErrNotFound when
// the thread has none.
func (s *Store) DetachThread(ctx context.Context, k ThreadKey) (Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx, `
		UPDATE conversations SET thread_id = thread_id || '~' || id::text, updated_at = now()
		WHERE thread_platform = $1 AND thread_tenant = $2 AND thread_channel = $3 AND thread_id = $4
		RETURNING `+conversationColumns, k.Platform, k.Tenant, k.Channel, k.Thread))
	if err != nil {
		return Conversation{}, fmt.Errorf("detach thread: %w", err)
	}
	return c, nil
}
