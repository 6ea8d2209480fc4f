// Package bot is the platform-neutral engine: a Turn (who said what, in which
// conversation) goes in, a stored, metered Reply comes out. Chat surfaces
// (Slack, Teams, the REST API, the console) translate to and from it; the
// model, the runbooks and the budgets are small interfaces declared here and
// satisfied elsewhere.
package bot

import (
	"github.com/google/uuid"

	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
)

// Turn is one message from a person that the bot must answer.
type Turn struct {
	UserID uuid.UUID
	// ConversationID names the conversation; when it is uuid.Nil, Thread
	// names the chat thread whose conversation is found or started.
	ConversationID uuid.UUID
	Thread         *conversations.ThreadKey
	Text           string
	// Source is where the turn came from: conversations.SourceAPI,
	// SourceSlack, SourceTeams or SourceConsole.
	Source string
	// Key makes the turn idempotent ("slack:Ev123", "api:<uuid>"): a turn
	// whose key is already stored returns the stored reply and records
	// nothing. Empty means no idempotency.
	Key string
	// Meta carries platform routing data a Replier needs (a Teams
	// serviceUrl, a Slack assistant-thread flag); the engine ignores it.
	Meta map[string]string
}

// Citation is a runbook section a reply drew on, numbered [1], [2], ... in the
// order given here.
type Citation struct {
	Document string  `json:"document"`
	Section  string  `json:"section"`
	Path     string  `json:"path"`
	Score    float64 `json:"score"`
	Snippet  string  `json:"snippet"`
}

// Usage is what one turn cost.
type Usage struct {
	Model            string
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
	TotalTokens      int
	CostMicroUSD     int64
	// Estimated is true when the provider reported no usage and the tokens
	// were counted locally (see EstimateTokens).
	Estimated    bool
	PriceVersion string
}

// Reply is the answer to a turn, as stored.
type Reply struct {
	UserMessage      conversations.Message
	AssistantMessage conversations.Message
	Text             string
	Citations        []Citation
	Usage            Usage
	// Notice is something to tell the user besides the answer, such as a
	// budget warning; empty when there is nothing.
	Notice string
	// LowConfidence is true when no runbook section clearly answers the
	// question and the citations are the closest sections found (the
	// question also goes to the gap report).
	LowConfidence bool
	// Replayed is true when the turn's key was already stored and this is
	// the stored reply; nothing new was recorded.
	Replayed bool
	// Command is the result of a command of the shared set, when the turn
	// was one; surfaces render it (buttons, a card) instead of Text alone.
	Command *commands.Result
	// Attempt is the turn job's attempt posting it (1 the first time). A
	// Replier that can find its own earlier post on the platform (Slack
	// message metadata carrying the turn key) looks before posting again
	// when Attempt > 1: an earlier attempt may have posted and died before
	// the post was recorded.
	Attempt int
}

// Stored reports whether the reply is a stored assistant message. A reply
// that is not stored carries only Text: an error or refusal for the user.
func (r Reply) Stored() bool { return r.AssistantMessage.ID != uuid.Nil }
