package bot

import "context"

// LLM is a chat model. Complete sends the conversation and returns the whole
// answer; when onDelta is not nil the answer is streamed and onDelta gets
// each piece of text as it arrives. Implementations retry what is worth
// retrying and return a *ModelError for everything the user should hear
// about. When a call fails after text has come (a stream cut off, the
// context done mid-answer), the Completion returned with the error carries
// that partial Text (and Model, when known): it was billed, and the engine
// records it with estimated usage.
type LLM interface {
	Complete(ctx context.Context, req Request, onDelta func(string)) (Completion, error)
}

// Chat roles of a Request message.
const (
	ChatSystem    = "system"
	ChatUser      = "user"
	ChatAssistant = "assistant"
)

// ChatMessage is one message sent to the model.
type ChatMessage struct {
	Role    string
	Content string
}

// Request is one model call.
type Request struct {
	Messages []ChatMessage
	// MaxTokens bounds the answer; 0 leaves it to the provider.
	MaxTokens int
}

// Completion is the model's answer.
type Completion struct {
	Text         string
	FinishReason string
	// Model is the model that answered, as the provider names it
	// ("gpt-4o-mini-2024-07-18"); it is what gets priced.
	Model string
	// Usage is the provider's token count, nil when it sent none (a stream
	// without a usage chunk); the engine then counts locally.
	Usage *ProviderUsage
}

// ProviderUsage is the provider's own token count for one call.
type ProviderUsage struct {
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int // prompt tokens served from the provider's cache
}
