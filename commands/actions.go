package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
)

// Action kinds: what a button does.
const (
	ActArchive   = "archive"   // archive the conversation (a choice offered by archive)
	ActUnarchive = "unarchive" // undo an archive
	ActVoteUp    = "vote_up"   // the answer helped
	ActVoteDown  = "vote_down" // the answer did not help
)

// Action is a button: what it does and to what. Surfaces put Value in the
// button (a Slack block action value, an Adaptive Card submit field) and
// read it back with ParseAction when it is pressed.
type Action struct {
	Kind string
	// ID is the conversation (archive, unarchive) or the answer, an
	// assistant message (votes).
	ID    uuid.UUID
	Label string // the button's text
}

// Value encodes the action for a button: "unarchive:<uuid>".
func (a Action) Value() string { return a.Kind + ":" + a.ID.String() }

// ErrBadAction is a button value ParseAction cannot read.
var ErrBadAction = errors.New("not an opsbot action")

// ParseAction reads a button value made by Value.
func ParseAction(v string) (Action, error) {
	kind, id, ok := strings.Cut(v, ":")
	if !ok {
		return Action{}, ErrBadAction
	}
	switch kind {
	case ActArchive, ActUnarchive, ActVoteUp, ActVoteDown:
	default:
		return Action{}, ErrBadAction
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return Action{}, ErrBadAction
	}
	return Action{Kind: kind, ID: u}, nil
}

// VoteActions are the 👍/👎 buttons for an answer (an assistant message).
func VoteActions(answerID uuid.UUID) []Action {
	return []Action{{Kind: ActVoteUp, ID: answerID, Label: "👍 Helpful"}, {Kind: ActVoteDown, ID: answerID, Label: "👎 Not helpful"}}
}

// Do runs an action for the caller: the button presser.
func (s *Set) Do(ctx context.Context, c Caller, a Action) (Result, error) {
	switch a.Kind {
	case ActArchive:
		return s.archiveOne(ctx, c, a.ID)
	case ActUnarchive:
		return s.unarchive(ctx, c, a.ID)
	case ActVoteUp:
		return s.vote(ctx, c, a.ID, conversations.VoteUp)
	case ActVoteDown:
		return s.vote(ctx, c, a.ID, conversations.VoteDown)
	}
	return Result{}, ErrBadAction
}

// notYours answers for a conversation the caller does not own or that is
// gone, the same way for both (no existence oracle).
func notYours(cmd string) Result {
	return Result{Command: cmd, Refused: true, Text: "I cannot find that conversation among yours."}
}

func (s *Set) archive(ctx context.Context, c Caller) (Result, error) {
	switch {
	case c.Thread != nil:
		cv, err := s.convs.GetByThread(ctx, *c.Thread)
		if errors.Is(err, conversations.ErrNotFound) {
			return Result{Command: CmdArchive, Refused: true, Text: "There is no conversation with me in this thread to archive."}, nil
		}
		if err != nil {
			return Result{}, err
		}
		if cv.OwnerID != c.User.ID {
			return Result{Command: CmdArchive, Refused: true, Text: "Only the person who started this conversation can archive it."}, nil
		}
		return s.archiveOne(ctx, c, cv.ID)
	case c.ConversationID != uuid.Nil:
		return s.archiveOne(ctx, c, c.ConversationID)
	}
	// No thread (a slash command): offer the caller's open conversations,
	// those of this channel when there is one.
	var open []conversations.Conversation
	var err error
	if c.Channel != nil {
		open, err = s.convs.ListOpenInChannel(ctx, c.User.ID, *c.Channel, maxListed)
	} else {
		var page conversations.Page[conversations.Conversation]
		page, err = s.convs.List(ctx, c.User.ID, conversations.ListOptions{PageOptions: conversations.PageOptions{Limit: maxListed}})
		open = page.Items
	}
	if err != nil {
		return Result{}, err
	}
	r := Result{Command: CmdArchive, Personal: true, Conversations: s.items(open)}
	if len(open) == 0 {
		r.Text = "You have no open conversations here to archive."
		return r, nil
	}
	for _, cv := range open {
		r.Actions = append(r.Actions, Action{Kind: ActArchive, ID: cv.ID, Label: "Archive"})
	}
	var b strings.Builder
	b.WriteString("Which conversation should I archive?\n")
	s.writeItems(&b, r.Conversations)
	r.Text = b.String()
	return r, nil
}

// archiveOne archives one of the caller's conversations and offers Undo.
func (s *Set) archiveOne(ctx context.Context, c Caller, id uuid.UUID) (Result, error) {
	cv, err := s.convs.Archive(ctx, c.User.ID, id)
	if errors.Is(err, conversations.ErrNotFound) {
		return notYours(CmdArchive), nil
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Command: CmdArchive, Text: fmt.Sprintf("Archived %q. Undo brings it back.", cv.Title),
		Conversations: s.items([]conversations.Conversation{cv}),
		Actions:       []Action{{Kind: ActUnarchive, ID: cv.ID, Label: "Undo"}},
		// The console's conversation is gone from view: its next message starts another.
		NewConversation: c.ConversationID == cv.ID}, nil
}

func (s *Set) unarchive(ctx context.Context, c Caller, id uuid.UUID) (Result, error) {
	cv, err := s.convs.Unarchive(ctx, c.User.ID, id)
	if errors.Is(err, conversations.ErrNotFound) {
		return notYours(ActUnarchive), nil
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Command: ActUnarchive, Text: fmt.Sprintf("Restored %q.", cv.Title),
		Conversations: s.items([]conversations.Conversation{cv})}, nil
}

// vote stores a vote on an answer. A new down vote puts the answer's
// question on the weekly runbook-gap report.
func (s *Set) vote(ctx context.Context, c Caller, answerID uuid.UUID, vote int) (Result, error) {
	kind := ActVoteUp
	if vote == conversations.VoteDown {
		kind = ActVoteDown
	}
	changed, err := s.convs.Vote(ctx, answerID, c.User.ID, vote)
	if errors.Is(err, conversations.ErrNotFound) {
		return Result{Command: kind, Refused: true, Text: "I cannot find that answer any more."}, nil
	}
	if err != nil {
		return Result{}, err
	}
	if vote == conversations.VoteUp {
		return Result{Command: kind, Text: "Thanks for the feedback."}, nil
	}
	if changed && s.gaps != nil {
		q, err := s.convs.QuestionOf(ctx, answerID)
		switch {
		case errors.Is(err, conversations.ErrNotFound):
			// A notice rather than an answer to a question: nothing to report.
		case err != nil:
			return Result{}, err
		default:
			if err := s.gaps.RecordGap(ctx, q.Content, c.User.ID, q.ConversationID); err != nil {
				return Result{}, err
			}
		}
	}
	return Result{Command: kind, Text: "Thanks for the feedback. The question goes on the weekly report of what the runbooks do not cover."}, nil
}
