// Package conversations holds the conversation model every surface shares
// (REST, Slack, Teams, console): conversations, their messages, the chat
// thread keys that map onto them, validation, and the SQL for those tables.
package conversations

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/redact"
)

// Sources a conversation can come from.
const (
	SourceAPI     = "api"
	SourceSlack   = "slack"
	SourceTeams   = "teams"
	SourceConsole = "console"
)

// Message roles.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)

// Limits on what people may send.
const (
	MaxTitleRunes   = 200
	MaxContentBytes = 16 * 1024
	DefaultTitle    = "New conversation"
	DefaultLimit    = 50
	MaxLimit        = 100
)

// Errors returned by the store. Someone else's conversation is ErrNotFound,
// exactly like a missing one, so that ids cannot be probed.
var (
	ErrNotFound = errors.New("conversation not found")
	ErrConflict = errors.New("conversation already exists")
	// ErrTurnStored is AppendMessage refusing a second message of one role
	// under one turn key: the turn was stored already.
	ErrTurnStored = errors.New("turn already stored")
)

// ValidationError names the input field that was refused and why.
type ValidationError struct {
	Field  string
	Reason string
}

// Error is "field: reason", as clients are shown it.
func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ThreadKey identifies the chat thread a conversation belongs to: one Slack
// thread or DM, one Teams reply chain or chat.
type ThreadKey struct {
	Platform string // "slack" or "teams"
	Tenant   string // Slack team id, Teams tenant id
	Channel  string // Slack channel id, Teams conversation id
	Thread   string // Slack thread_ts, Teams reply-chain root id
}

func (k ThreadKey) validate() error {
	if k.Platform == "" || k.Tenant == "" || k.Channel == "" || k.Thread == "" {
		return invalid("thread", "platform, tenant, channel and thread are all required")
	}
	return nil
}

// Conversation is one chat thread with the bot.
type Conversation struct {
	ID            uuid.UUID
	OwnerID       uuid.UUID
	Title         string
	Source        string
	Thread        *ThreadKey
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastMessageAt *time.Time
	MessageCount  int
	ArchivedAt    *time.Time
}

// IsArchived reports whether the conversation is archived.
func (c Conversation) IsArchived() bool { return c.ArchivedAt != nil }

// activityAt is the instant "newest activity first" sorts on.
func (c Conversation) activityAt() time.Time {
	if c.LastMessageAt != nil {
		return *c.LastMessageAt
	}
	return c.CreatedAt
}

// Message is one entry in a conversation. Token and cost fields are set on
// assistant messages that came from a model.
type Message struct {
	ID                uuid.UUID
	Seq               int64
	ConversationID    uuid.UUID
	AuthorID          *uuid.UUID
	Role              string
	Content           string
	PlatformMessageID string
	CreatedAt         time.Time
	Metadata          json.RawMessage
	PromptTokens      int
	CompletionTokens  int
	TotalTokens       int
	CostMicroUSD      int64
}

// NewMessage is what AppendMessage writes.
type NewMessage struct {
	// TurnKey, when set, ties the message to one turn (its user message
	// and its reply): a second message of the same role under the same key
	// is refused with ErrTurnStored, which makes retried turns idempotent.
	TurnKey string
	// ID, when set, is the new message's id; else one is made.
	ID                uuid.UUID
	ConversationID    uuid.UUID
	AuthorID          *uuid.UUID
	Role              string
	Content           string
	PlatformMessageID string
	Metadata          json.RawMessage
	PromptTokens      int
	CompletionTokens  int
	TotalTokens       int
	CostMicroUSD      int64
}

// NormalizeTitle trims a title, checks its length and redacts secrets in
// it: a title is shown in every listing and chat surface, so one pasted into
// it (by a REST client or as a first message) must not be kept. An empty
// title is refused. The length limit applies to what the caller sent; a
// redacted title that comes out longer is cut to the limit.
func NormalizeTitle(title string) (string, error) {
	t := strings.TrimSpace(title)
	switch {
	case t == "":
		return "", invalid("title", "must not be empty")
	case utf8.RuneCountInString(t) > MaxTitleRunes:
		return "", invalid("title", "must be at most %d characters", MaxTitleRunes)
	case !utf8.ValidString(t):
		return "", invalid("title", "must be valid UTF-8")
	case strings.ContainsRune(t, 0): // PostgreSQL text refuses it
		return "", invalid("title", "must not contain NUL characters")
	}
	t = redact.String(t)
	if r := []rune(t); len(r) > MaxTitleRunes {
		t = string(r[:MaxTitleRunes-1]) + "…"
	}
	return t, nil
}

// ValidateContent checks a message body before it goes anywhere.
func ValidateContent(content string) error {
	switch {
	case strings.TrimSpace(content) == "":
		return invalid("content", "must not be empty")
	case len(content) > MaxContentBytes:
		return &TooLargeError{Field: "content", Limit: MaxContentBytes}
	case !utf8.ValidString(content):
		return invalid("content", "must be valid UTF-8")
	}
	return nil
}

// TooLargeError is input over a size limit (HTTP 413).
type TooLargeError struct {
	Field string
	Limit int
}

// Error names the field and its limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: must be at most %d bytes", e.Field, e.Limit)
}

func validSource(s string) bool {
	switch s {
	case SourceAPI, SourceSlack, SourceTeams, SourceConsole:
		return true
	}
	return false
}

func validRole(r string) bool {
	return r == RoleUser || r == RoleAssistant || r == RoleSystem
}
