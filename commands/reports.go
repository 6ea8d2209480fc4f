package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// topN bounds the models and people a usage answer names.
const topN = 5

func (s *Set) usage(ctx context.Context, c Caller, days int) (Result, error) {
	loc := c.User.Location()
	r, err := usage.LastDays(s.now(), loc, days)
	if err != nil {
		return Result{}, err
	}
	sum, err := s.reports.Summarize(ctx, c.User.ID, r)
	if err != nil {
		return Result{}, err
	}
	f := &Figures{Days: days, Zone: loc.String(), From: r.First, To: r.Last, Totals: sum.Totals}
	for _, m := range sum.ByModel {
		f.Models = append(f.Models, usage.Row{Key: m.Model, Label: m.Model, Totals: m.Totals})
	}
	f.Models = top(f.Models)
	var b strings.Builder
	fmt.Fprintf(&b, "Your usage, last %d days (%s to %s, %s):\n", days, f.From, f.To, f.Zone)
	writeFigures(&b, f)
	return Result{Command: CmdUsage, Personal: true, Usage: f, Text: b.String()}, nil
}

func (s *Set) teamUsage(ctx context.Context, c Caller, days int) (Result, error) {
	if !c.User.IsAdmin() {
		return Result{Command: CmdUsage, Refused: true,
			Text: "Sorry, usage team is for admins; usage shows your own."}, nil
	}
	loc := c.User.Location()
	r, err := usage.LastDays(s.now(), loc, days)
	if err != nil {
		return Result{}, err
	}
	byUser, err := s.reports.SummarizeOrg(ctx, r, usage.GroupByUser)
	if err != nil {
		return Result{}, err
	}
	byModel, err := s.reports.SummarizeOrg(ctx, r, usage.GroupByModel)
	if err != nil {
		return Result{}, err
	}
	f := &Figures{Team: true, Days: days, Zone: loc.String(), From: r.First, To: r.Last, Totals: byUser.Totals,
		People: len(byUser.Rows), Models: top(byModel.Rows), Users: top(byUser.Rows)}
	if err := s.nameUsers(ctx, f.Users); err != nil {
		return Result{}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Team usage, last %d days (%s to %s, %s), %d people:\n", days, f.From, f.To, f.Zone, f.People)
	writeFigures(&b, f)
	return Result{Command: CmdUsage, Personal: true, Usage: f, Text: b.String()}, nil
}

// nameUsers labels by-user rows (keyed by user id) with display names.
func (s *Set) nameUsers(ctx context.Context, rows []usage.Row) error {
	ids := make([]uuid.UUID, 0, len(rows))
	for _, r := range rows {
		if id, err := uuid.Parse(r.Key); err == nil {
			ids = append(ids, id)
		}
	}
	people, err := s.users.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	for i, r := range rows {
		if id, err := uuid.Parse(r.Key); err == nil {
			if u, ok := people[id]; ok {
				rows[i].Label = displayName(u)
			}
		}
	}
	return nil
}

func displayName(u users.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Handle
}

// top returns the topN rows by cost, highest first.
func top(rows []usage.Row) []usage.Row {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b usage.Row) int {
		switch {
		case a.CostMicroUSD > b.CostMicroUSD:
			return -1
		case a.CostMicroUSD < b.CostMicroUSD:
			return 1
		}
		return strings.Compare(a.Label, b.Label)
	})
	return rows[:min(len(rows), topN)]
}

func writeFigures(b *strings.Builder, f *Figures) {
	t := f.Totals
	fmt.Fprintf(b, "%s · %s tokens (%s in, %s out) · %d replies\n", usage.FormatUSD(t.CostMicroUSD),
		usage.FormatCount(t.TotalTokens()), usage.FormatCount(t.PromptTokens), usage.FormatCount(t.CompletionTokens), t.Messages)
	if len(f.Users) > 0 {
		b.WriteString("Top people: " + rowList(f.Users) + "\n")
	}
	if len(f.Models) > 0 {
		b.WriteString("Top models: " + rowList(f.Models) + "\n")
	}
}

func rowList(rows []usage.Row) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = fmt.Sprintf("%s %s", r.Label, usage.FormatUSD(r.CostMicroUSD))
	}
	return strings.Join(parts, ", ")
}

func (s *Set) handover(ctx context.Context, c Caller, hours int) (Result, error) {
	if c.Channel == nil {
		return Result{Command: CmdHandover, Refused: true,
			Text: "handover lists a channel's conversations with me: use it in a Slack or Teams channel."}, nil
	}
	since := s.now().Add(-time.Duration(hours) * time.Hour)
	ccs, err := s.convs.ChannelActivity(ctx, *c.Channel, since, maxHandover)
	if err != nil {
		return Result{}, err
	}
	owners := make([]uuid.UUID, 0, len(ccs))
	for _, cc := range ccs {
		owners = append(owners, cc.OwnerID)
	}
	people, err := s.users.GetMany(ctx, owners)
	if err != nil {
		return Result{}, err
	}
	r := Result{Command: CmdHandover, Public: true}
	unanswered := 0
	for _, cc := range ccs {
		item := s.items([]conversations.Conversation{cc.Conversation})[0]
		item.AskedBy = displayName(people[cc.OwnerID])
		item.Unanswered = cc.Unanswered
		if cc.Unanswered {
			unanswered++
		}
		r.Conversations = append(r.Conversations, item)
	}
	var b strings.Builder
	if len(ccs) == 0 {
		fmt.Fprintf(&b, "Handover: no conversations with me in this channel in the last %dh.\n", hours)
	} else {
		fmt.Fprintf(&b, "Handover for the last %dh: %d conversations, %d unanswered (newest first):\n", hours, len(ccs), unanswered)
	}
	now := s.now()
	for i, it := range r.Conversations {
		mark := ""
		if it.Unanswered {
			mark = "[unanswered] "
		}
		fmt.Fprintf(&b, "%d. %s%s — asked by %s, %s\n", i+1, mark, it.Title, it.AskedBy, ago(now, it.ActiveAt))
	}
	r.Text = b.String()
	return r, nil
}

func (s *Set) token(ctx context.Context, c Caller) (Result, error) {
	if !c.Private {
		return Result{Command: CmdToken, Refused: true,
			Text: "I only hand out API tokens where nobody else can see them: send me token in a direct message."}, nil
	}
	name := fmt.Sprintf("%s %s", c.Source, s.now().In(c.User.Location()).Format("2006-01-02 15:04"))
	tok, secret, err := s.users.CreateToken(ctx, c.User.ID, strings.TrimSpace(name))
	if err != nil {
		return Result{}, err
	}
	return Result{Command: CmdToken, Personal: true, Token: secret, Text: "Your personal API token, shown only this once (keep it out of channels and tickets):\n" +
		secret + "\nSend it as Authorization: Bearer <token> to the REST API. If it leaks, an admin revokes it with: opsbot token revoke " +
		tok.ID.String() + "\n"}, nil
}
