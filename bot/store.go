package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apacops/opsbot/conversations"
)

// messageMeta is the metadata JSON of an assistant message. The REST API
// reads "model" and "estimated" from it.
type messageMeta struct {
	Model        string     `json:"model"`
	FinishReason string     `json:"finish_reason"`
	LatencyMS    int64      `json:"latency_ms"`
	Estimated    bool       `json:"estimated"`
	PriceVersion string     `json:"price_version"`
	CachedTokens int        `json:"cached_tokens"`
	Citations    []Citation `json:"citations"`
}

// turnKeyIndex is the unique index of migration 002 that makes a turn key
// stored at most once.
const turnKeyIndex = "messages_turn_key_role"

func isTurnKeyConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == turnKeyIndex
}

// setTurnKey marks the messages of a stored turn with its key.
func setTurnKey(ctx context.Context, tx pgx.Tx, key string, ids ...uuid.UUID) error {
	if _, err := tx.Exec(ctx, `UPDATE messages SET turn_key = $1 WHERE id = ANY($2)`, key, ids); err != nil {
		return fmt.Errorf("set turn key: %w", err)
	}
	return nil
}

const storedMessageColumns = `id, seq, conversation_id, author_id, role, content, coalesce(platform_message_id, ''),
	created_at, metadata, prompt_tokens, completion_tokens, total_tokens, cost_micro_usd`

// storedReply returns the reply of a turn already stored under key; ok is
// false when there is none.
func storedReply(ctx context.Context, db conversations.DBTX, key string) (r Reply, ok bool, err error) {
	rows, err := db.Query(ctx, `SELECT `+storedMessageColumns+` FROM messages WHERE turn_key = $1 ORDER BY seq`, key)
	if err != nil {
		return Reply{}, false, fmt.Errorf("look up turn %q: %w", key, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m conversations.Message
		if err := rows.Scan(&m.ID, &m.Seq, &m.ConversationID, &m.AuthorID, &m.Role, &m.Content, &m.PlatformMessageID,
			&m.CreatedAt, &m.Metadata, &m.PromptTokens, &m.CompletionTokens, &m.TotalTokens, &m.CostMicroUSD); err != nil {
			return Reply{}, false, fmt.Errorf("look up turn %q: %w", key, err)
		}
		switch m.Role {
		case conversations.RoleUser:
			r.UserMessage = m
		case conversations.RoleAssistant:
			r.AssistantMessage = m
		}
	}
	if err := rows.Err(); err != nil {
		return Reply{}, false, fmt.Errorf("look up turn %q: %w", key, err)
	}
	if r.AssistantMessage.ID == uuid.Nil {
		return Reply{}, false, nil
	}
	a := r.AssistantMessage
	var meta messageMeta
	if err := json.Unmarshal(a.Metadata, &meta); err != nil {
		return Reply{}, false, fmt.Errorf("turn %q: read metadata: %w", key, err)
	}
	r.Text = a.Content
	r.Citations = meta.Citations
	r.Usage = Usage{Model: meta.Model, PromptTokens: a.PromptTokens, CompletionTokens: a.CompletionTokens,
		CachedTokens: meta.CachedTokens, TotalTokens: a.TotalTokens, CostMicroUSD: a.CostMicroUSD,
		Estimated: meta.Estimated, PriceVersion: meta.PriceVersion}
	r.Replayed = true
	return r, true, nil
}
