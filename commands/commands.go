// Package commands is the chat command set every surface shares: help, new,
// list, archive (with undo), usage [7d|30d], usage team (admins), handover
// [12h] and token, and the actions behind buttons (archive a listed
// conversation, undo an archive, vote on an answer). Each returns a Result
// holding the answer as text and as data, so that Slack can render Block
// Kit, Teams an Adaptive Card and the console plain text from the same
// result.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// GapRecorder remembers a question the runbooks did not answer well;
// *knowledge.Index is one. A down vote puts the voted answer's question on
// the weekly gap report.
type GapRecorder interface {
	RecordGap(ctx context.Context, question string, userID, conversationID uuid.UUID) error
}

// Config is what a Set is built from. DB and Users are required.
type Config struct {
	DB    conversations.DBTX
	Users *users.Store
	Gaps  GapRecorder      // nil: votes are stored, not reported
	Now   func() time.Time // nil is time.Now
	Log   *slog.Logger     // nil discards
}

// Set runs commands and actions. It is safe for concurrent use.
type Set struct {
	convs   *conversations.Store
	users   *users.Store
	reports *usage.Reports
	gaps    GapRecorder
	now     func() time.Time
	log     *slog.Logger
}

// New builds a command set.
func New(c Config) *Set {
	s := &Set{convs: conversations.NewStore(c.DB), users: c.Users, reports: usage.NewReports(c.DB),
		gaps: c.Gaps, now: c.Now, log: c.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Caller is who gives a command, and where.
type Caller struct {
	User users.User
	// Source is the surface: conversations.SourceSlack, SourceTeams or
	// SourceConsole. It names the tokens the token command makes.
	Source string
	// Channel is the chat channel the command was given in; nil on the
	// console.
	Channel *conversations.Channel
	// Thread is the chat thread it was given in; nil for a slash command
	// (Slack sends no thread) and on the console.
	Thread *conversations.ThreadKey
	// ConversationID is the console's current conversation; uuid.Nil when
	// there is none or the surface has threads instead.
	ConversationID uuid.UUID
	// Private is true when the answer is shown to the caller alone (a DM,
	// an ephemeral Slack message, the console). The token command answers
	// only there.
	Private bool
}

// Result is a command's answer.
type Result struct {
	Command string // the command or action that ran
	// Text is the whole answer as plain text: what the console prints and
	// chat surfaces use as the fallback of a card.
	Text string
	// Public is true when the answer is meant for everyone in the channel
	// (handover); other answers are for the caller's eyes where the
	// surface can do that (Slack ephemeral messages).
	Public bool
	// Refused is true when the command was declined (not an admin, token
	// outside a private chat, a conversation that is not the caller's).
	Refused bool
	// Personal is true when the answer holds the caller's own data (their
	// conversations, their or the team's spend, a token): a surface that
	// cannot show it to the caller alone (a Teams channel or group chat)
	// must not post it.
	Personal bool
	// Conversations are listed conversations: list, archive choices,
	// handover.
	Conversations []Item
	// Actions are the buttons to offer: one archive action per listed
	// conversation when archive had no target, an undo after archive.
	Actions []Action
	Usage   *Figures // usage and usage team
	// Token is the new API token of the token command, shown once.
	Token string
	// NewConversation is true when the caller's next message should start
	// a new conversation (new; the console forgets its current one).
	NewConversation bool
}

// Item is a conversation as a command lists it.
type Item struct {
	ID       uuid.UUID
	Title    string
	ActiveAt time.Time
	Messages int
	// AskedBy is the display name of whoever started it (handover).
	AskedBy string
	// Unanswered is true when the runbooks did not cover its latest
	// question or its latest answer was voted unhelpful (handover).
	Unanswered bool
}

// Figures are the numbers of a usage answer.
type Figures struct {
	Team   bool
	Days   int
	Zone   string // the IANA zone the days are counted in
	From   usage.Date
	To     usage.Date
	Totals usage.Totals
	People int         // team: how many people used the bot
	Models []usage.Row // by cost, highest first (at most 5)
	Users  []usage.Row // team: top people by cost (at most 5), labelled by display name
}

// maxListed bounds the conversations a command lists.
const maxListed = 10

// maxHandover bounds the conversations of a handover.
const maxHandover = 20

// Run runs a parsed command for the caller.
func (s *Set) Run(ctx context.Context, c Caller, inv Invocation) (Result, error) {
	if inv.Problem != "" {
		return Result{Command: inv.Name, Text: "Sorry, " + inv.Problem + ". " + helpLine(inv.Name)}, nil
	}
	switch inv.Name {
	case CmdNew:
		return s.newConversation(ctx, c)
	case CmdList:
		return s.list(ctx, c)
	case CmdArchive:
		return s.archive(ctx, c)
	case CmdUsage:
		if inv.Team {
			return s.teamUsage(ctx, c, inv.Days)
		}
		return s.usage(ctx, c, inv.Days)
	case CmdHandover:
		return s.handover(ctx, c, inv.Hours)
	case CmdToken:
		return s.token(ctx, c)
	}
	return help(inv.Unknown), nil
}

// RunText parses text as Parse does and runs it.
func (s *Set) RunText(ctx context.Context, c Caller, text string) (Result, error) {
	return s.Run(ctx, c, Parse(text))
}

// RunFor is RunText for the user with id userID: a command queued by id
// (a chat turn job) rather than given by a user at hand.
func (s *Set) RunFor(ctx context.Context, userID uuid.UUID, c Caller, text string) (Result, error) {
	u, err := s.users.Get(ctx, userID)
	if err != nil {
		return Result{}, err
	}
	c.User = u
	return s.RunText(ctx, c, text)
}

// help is the command list, mentioning an unknown word when there was one.
func help(unknown string) Result {
	var b strings.Builder
	if unknown != "" {
		fmt.Fprintf(&b, "I don't know the command %q. ", unknown)
	}
	b.WriteString("Ask me an ops question in a thread, a DM or the assistant panel, and I answer from the runbooks. Commands:\n")
	for _, sp := range specs {
		name := sp.Name
		if sp.Args != "" {
			name += " " + sp.Args
		}
		fmt.Fprintf(&b, "  %-17s %s\n", name, sp.Summary)
	}
	return Result{Command: CmdHelp, Text: b.String()}
}

// helpLine is one command's line of help.
func helpLine(name string) string {
	var lines []string
	for _, sp := range specs {
		if sp.Name == name {
			lines = append(lines, strings.TrimSpace(sp.Name+" "+sp.Args)+": "+sp.Summary)
		}
	}
	return strings.Join(lines, "; ") + "."
}

func (s *Set) newConversation(ctx context.Context, c Caller) (Result, error) {
	r := Result{Command: CmdNew, NewConversation: true}
	switch {
	case c.Thread != nil:
		old, err := s.convs.DetachThread(ctx, *c.Thread)
		switch {
		case errors.Is(err, conversations.ErrNotFound):
			r.Text = "Your next message here starts a new conversation."
		case err != nil:
			return Result{}, err
		default:
			r.Text = fmt.Sprintf("Starting fresh: your next message here starts a new conversation. %q stays in your list.", old.Title)
		}
	case c.Channel != nil:
		r.Text = "To start a new conversation, send me a new message (not in a thread) or mention me in a channel: each one starts its own."
	default:
		r.Text = "New conversation: your next message starts it."
	}
	return r, nil
}

func (s *Set) list(ctx context.Context, c Caller) (Result, error) {
	page, err := s.convs.List(ctx, c.User.ID, conversations.ListOptions{PageOptions: conversations.PageOptions{Limit: maxListed}})
	if err != nil {
		return Result{}, err
	}
	r := Result{Command: CmdList, Personal: true, Conversations: s.items(page.Items)}
	if len(r.Conversations) == 0 {
		r.Text = "You have no open conversations. Ask me something to start one."
		return r, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Your open conversations, newest first:\n")
	s.writeItems(&b, r.Conversations)
	r.Text = b.String()
	return r, nil
}

func (s *Set) items(cs []conversations.Conversation) []Item {
	out := make([]Item, 0, len(cs))
	for _, cv := range cs {
		at := cv.CreatedAt
		if cv.LastMessageAt != nil {
			at = *cv.LastMessageAt
		}
		out = append(out, Item{ID: cv.ID, Title: cv.Title, ActiveAt: at, Messages: cv.MessageCount})
	}
	return out
}

func (s *Set) writeItems(b *strings.Builder, items []Item) {
	now := s.now()
	for i, it := range items {
		fmt.Fprintf(b, "%d. %s — %d messages, active %s\n", i+1, it.Title, it.Messages, ago(now, it.ActiveAt))
	}
}

// ago renders how long before now t was, roughly: "just now", "5m ago",
// "3h ago", "2d ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
