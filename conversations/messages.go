package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const messageColumns = `id, seq, conversation_id, author_id, role, content, coalesce(platform_message_id, ''),
	created_at, metadata, prompt_tokens, completion_tokens, total_tokens, cost_micro_usd`

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	err := row.Scan(&m.ID, &m.Seq, &m.ConversationID, &m.AuthorID, &m.Role, &m.Content, &m.PlatformMessageID,
		&m.CreatedAt, &m.Metadata, &m.PromptTokens, &m.CompletionTokens, &m.TotalTokens, &m.CostMicroUSD)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	return m, err
}

// AppendMessage adds a message and moves the conversation's counters and
// activity time with it, in one statement.
func (s *Store) AppendMessage(ctx context.Context, n NewMessage) (Message, error) {
	sql, args, err := appendStatement(n)
	if err != nil {
		return Message{}, err
	}
	m, err := scanMessage(s.db.QueryRow(ctx, sql, args...))
	if err != nil {
		return Message{}, appendError(n, err)
	}
	return m, nil
}

// QueueAppendMessage is AppendMessage queued on b, for a caller that writes
// a turn in one round trip (a batch runs as one implicit transaction): the
// message is in *out once b's results are read without error. n.ID, when
// set, is the message's id, so that later statements of the batch can name
// it.
func QueueAppendMessage(b *pgx.Batch, n NewMessage, out *Message) error {
	sql, args, err := appendStatement(n)
	if err != nil {
		return err
	}
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		m, err := scanMessage(row)
		if err != nil {
			return appendError(n, err)
		}
		*out = m
		return nil
	})
	return nil
}

// appendStatement checks n and returns the statement that appends it.
func appendStatement(n NewMessage) (string, []any, error) {
	if !validRole(n.Role) {
		return "", nil, invalid("role", "must be user, assistant or system")
	}
	if len(n.Content) > MaxContentBytes*4 { // replies may be longer than questions, not unbounded
		return "", nil, &TooLargeError{Field: "content", Limit: MaxContentBytes * 4}
	}
	meta := n.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage(`{}`)
	}
	var platformID, turnKey *string
	if n.PlatformMessageID != "" {
		platformID = &n.PlatformMessageID
	}
	if n.TurnKey != "" {
		turnKey = &n.TurnKey
	}
	id := n.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	return `
		WITH m AS (
			INSERT INTO messages (id, conversation_id, author_id, role, content, platform_message_id, metadata,
				prompt_tokens, completion_tokens, total_tokens, cost_micro_usd, turn_key)
			VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			RETURNING ` + messageColumns + `
		), c AS (
			UPDATE conversations SET message_count = message_count + 1,
				last_message_at = greatest(last_message_at, m.created_at), updated_at = now()
			FROM m WHERE conversations.id = m.conversation_id
		)
		SELECT * FROM m`, []any{n.ConversationID, n.AuthorID, n.Role, n.Content, platformID, meta,
			n.PromptTokens, n.CompletionTokens, n.TotalTokens, n.CostMicroUSD, turnKey, id}, nil
}

func appendError(n NewMessage, err error) error {
	return fmt.Errorf("append message to %s: %w", n.ConversationID, mapWriteError(err))
}

// MessagesOfTurn returns the messages stored under a turn key, oldest first:
// none when the turn was never stored.
func (s *Store) MessagesOfTurn(ctx context.Context, key string) ([]Message, error) {
	items, err := s.messages(ctx, `WHERE turn_key = $1 ORDER BY seq`, key)
	if err != nil {
		return nil, fmt.Errorf("messages of turn %q: %w", key, err)
	}
	return items, nil
}

// SetPlatformMessageID records where a message was posted on a chat platform,
// so a retried job can tell the reply is already out.
func (s *Store) SetPlatformMessageID(ctx context.Context, id uuid.UUID, platformID string) error {
	tag, err := s.db.Exec(ctx, `UPDATE messages SET platform_message_id = $2 WHERE id = $1`, id, platformID)
	if err != nil {
		return fmt.Errorf("set platform message id: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set platform message id: %w", ErrNotFound)
	}
	return nil
}

// Post claims, as ClaimPost answers them.
const (
	PostClaimed = iota // the caller is the poster now
	PostDone           // the message has its platform id: posted already
	PostBusy           // another poster's mark is younger than the lease
)

// ClaimPost makes the caller the one poster of a message on a chat
// platform: it marks the message as being posted ("posting:<unix
// seconds>") unless it has a platform id already (PostDone) or another
// poster's mark is younger than lease (PostBusy); a poster that died leaves
// a mark that expires. After posting, SetPlatformMessageID replaces the
// mark; after a failed post, ReleasePost removes it.
func (s *Store) ClaimPost(ctx context.Context, id uuid.UUID, lease time.Duration) (int, error) {
	var state int
	err := s.db.QueryRow(ctx, `
		WITH claim AS (
			UPDATE messages SET platform_message_id = 'posting:' || floor(extract(epoch FROM clock_timestamp()))::bigint
			WHERE id = $1 AND (platform_message_id IS NULL OR (platform_message_id LIKE 'posting:%'
				AND substr(platform_message_id, 9)::bigint <= floor(extract(epoch FROM clock_timestamp()))::bigint - $2))
			RETURNING id
		)
		SELECT CASE
			WHEN EXISTS (SELECT 1 FROM claim) THEN 0
			WHEN (SELECT platform_message_id LIKE 'posting:%' FROM messages WHERE id = $1) THEN 2
			ELSE 1 END`,
		id, int64(lease/time.Second)).Scan(&state)
	if err != nil {
		return 0, fmt.Errorf("claim post of message %s: %w", id, err)
	}
	return state, nil
}

// ReleasePost removes a posting mark left by ClaimPost, so that a retry
// may post the message.
func (s *Store) ReleasePost(ctx context.Context, id uuid.UUID) error {
	if _, err := s.db.Exec(ctx, `UPDATE messages SET platform_message_id = NULL
		WHERE id = $1 AND platform_message_id LIKE 'posting:%'`, id); err != nil {
		return fmt.Errorf("release post of message %s: %w", id, err)
	}
	return nil
}

// ListMessages returns a page of the owner's conversation, oldest first.
func (s *Store) ListMessages(ctx context.Context, ownerID, conversationID uuid.UUID, o PageOptions) (Page[Message], error) {
	if err := o.validate(); err != nil {
		return Page[Message]{}, err
	}
	if _, err := s.Get(ctx, ownerID, conversationID); err != nil {
		return Page[Message]{}, err
	}
	var after int64
	if o.Cursor != "" {
		var err error
		if after, err = parseMessageCursor(o.Cursor); err != nil {
			return Page[Message]{}, err
		}
	}
	items, err := s.messages(ctx, `WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3 OFFSET $4`,
		conversationID, after, o.Limit+1, o.Skip)
	if err != nil {
		return Page[Message]{}, fmt.Errorf("list messages of %s: %w", conversationID, err)
	}
	p := Page[Message]{Items: items}
	if len(items) > o.Limit {
		p.Items = items[:o.Limit]
		p.Next = messageCursor(p.Items[o.Limit-1])
	}
	return p, nil
}

// Recent returns up to n of a conversation's latest messages, oldest first:
// the history a model sees.
func (s *Store) Recent(ctx context.Context, conversationID uuid.UUID, n int) ([]Message, error) {
	items, err := s.messages(ctx, `WHERE seq IN (
		SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2) ORDER BY seq`,
		conversationID, n)
	if err != nil {
		return nil, fmt.Errorf("recent messages of %s: %w", conversationID, err)
	}
	return items, nil
}

func (s *Store) messages(ctx context.Context, where string, args ...any) ([]Message, error) {
	rows, err := s.db.Query(ctx, `SELECT `+messageColumns+` FROM messages `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
