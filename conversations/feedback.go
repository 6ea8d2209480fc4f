package conversations

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// Votes on an answer.
const (
	VoteUp   = 1
	VoteDown = -1
)

// Vote records a person's vote on an assistant message, replacing their
// earlier vote. changed is false when they had already voted the same way,
// so a repeated click (or a redelivered one) is not counted twice. A
// message that does not exist, or is not an answer, is ErrNotFound.
func (s *Store) Vote(ctx context.Context, messageID, userID uuid.UUID, vote int) (changed bool, err error) {
	if vote != VoteUp && vote != VoteDown {
		return false, invalid("vote", "must be up or down")
	}
	tag, err := s.db.Exec(ctx, `
		INSERT INTO message_feedback (message_id, user_id, vote)
		SELECT id, $2, $3 FROM messages WHERE id = $1 AND role = 'assistant'
		ON CONFLICT (message_id, user_id) DO UPDATE SET vote = EXCLUDED.vote, voted_at = now()
			WHERE message_feedback.vote <> EXCLUDED.vote`, messageID, userID, vote)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // the voter is gone
		return false, fmt.Errorf("vote on message %s: %w", messageID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("vote on message %s: %w", messageID, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	// Nothing written: the same vote again, or no such answer.
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1 AND role = 'assistant')`,
		messageID).Scan(&exists); err != nil {
		return false, fmt.Errorf("vote on message %s: %w", messageID, err)
	}
	if !exists {
		return false, fmt.Errorf("vote on message %s: %w", messageID, ErrNotFound)
	}
	return false, nil
}

// QuestionOf returns the user message an answer replied to: the other
// message of its turn. ErrNotFound when the answer is unknown or was not
// stored as a turn (a system notice).
func (s *Store) QuestionOf(ctx context.Context, answerID uuid.UUID) (Message, error) {
	m, err := scanMessage(s.db.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE role = 'user' AND turn_key = (SELECT turn_key FROM messages WHERE id = $1 AND role = 'assistant')`, answerID))
	if err != nil {
		return Message{}, fmt.Errorf("question of answer %s: %w", answerID, err)
	}
	return m, nil
}

// AnswerPosted returns the answer (an assistant message) that was posted
// as platformMessageID in a channel or chat: Teams' feedback buttons name
// the message they are on by its activity id alone. Conversations the
// channel's thread was detached from still count. ErrNotFound when there
// is none.
func (s *Store) AnswerPosted(ctx context.Context, ch Channel, platformMessageID string) (Message, error) {
	if err := ch.validate(); err != nil {
		return Message{}, err
	}
	m, err := scanMessage(s.db.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE role = 'assistant' AND platform_message_id = $4 AND conversation_id IN (
			SELECT id FROM conversations
			WHERE thread_platform = $1 AND thread_tenant = $2 AND thread_channel = $3)
		ORDER BY created_at DESC LIMIT 1`, ch.Platform, ch.Tenant, ch.ID, platformMessageID))
	if err != nil {
		return Message{}, fmt.Errorf("answer posted as %q: %w", platformMessageID, err)
	}
	return m, nil
}
