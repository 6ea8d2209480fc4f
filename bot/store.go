package bot

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

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
	// Unanswered is true when the runbooks did not cover the question (it
	// went on the gap report): a shift handover marks the thread.
	Unanswered bool `json:"unanswered,omitempty"`
	// LowConfidence: the citations are only the closest sections.
	LowConfidence bool `json:"low_confidence,omitempty"`
}

// storedReply returns the reply of a turn already stored under key; ok is
// false when there is none.
func storedReply(ctx context.Context, db conversations.DBTX, key string) (r Reply, ok bool, err error) {
	msgs, err := conversations.NewStore(db).MessagesOfTurn(ctx, key)
	if err != nil {
		return Reply{}, false, err
	}
	for _, m := range msgs {
		switch m.Role {
		case conversations.RoleUser:
			r.UserMessage = m
		case conversations.RoleAssistant:
			r.AssistantMessage = m
		}
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
	r.LowConfidence = meta.LowConfidence
	r.Usage = Usage{Model: meta.Model, PromptTokens: a.PromptTokens, CompletionTokens: a.CompletionTokens,
		CachedTokens: meta.CachedTokens, TotalTokens: a.TotalTokens, CostMicroUSD: a.CostMicroUSD,
		Estimated: meta.Estimated, PriceVersion: meta.PriceVersion}
	r.Replayed = true
	return r, true, nil
}
