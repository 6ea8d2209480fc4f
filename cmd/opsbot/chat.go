package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

const chatHelp = `Type a question and press Enter. Commands:
  /new       start a new conversation
  /archive   archive this conversation and start a new one
  /usage     tokens and cost of this conversation and of your last 30 days
  /help      this help
  /quit      leave (Ctrl-D works too)
`

// runChat is `opsbot chat`: a terminal conversation with the engine, as
// source 'console'. Answers stream as they are written.
func runChat(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	handle := fs.String("user", "", "handle to talk as (created if new; default: the OS user)")
	resume := fs.String("conversation", "", "continue this conversation (ID) instead of starting a new one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("chat takes no arguments besides flags")
	}
	if *handle == "" {
		*handle = osUser()
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	u, err := users.NewStore(pool, e.cfg.TimeZone).Ensure(ctx, *handle, users.RoleUser)
	if err != nil {
		return fmt.Errorf("user %q: %w", *handle, err)
	}
	runbooks, err := newRunbookIndex(ctx, e.cfg, pool, e.log)
	if err != nil {
		return err
	}
	engine, err := newEngine(e.cfg.Engine, pool, engineDeps{
		runbooks: runbooks,
		budgets:  newBudgets(e.cfg.Usage, pool),
	}, e.log)
	if err != nil {
		return err
	}
	c := &chatSession{
		out: e.stdout, engine: engine, convs: conversations.NewStore(pool), reports: usage.NewReports(pool), user: u,
	}
	if *resume != "" {
		id, err := uuid.Parse(*resume)
		if err != nil {
			return usageError("--conversation must be a conversation ID")
		}
		if err := c.resume(ctx, id); err != nil {
			return err
		}
	}
	model := "no model (answers from runbooks)"
	if engine.HasModel() {
		model = e.cfg.Engine.LLM.Model
	}
	fmt.Fprintf(e.stdout, "opsbot chat as %s, %s. /help for commands.\n", u.Handle, model)
	return c.loop(ctx, e.stdin)
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "console"
}

// chatSession is one terminal conversation.
type chatSession struct {
	out     io.Writer
	engine  *bot.Engine
	convs   *conversations.Store
	reports *usage.Reports
	user    users.User
	conv    uuid.UUID // uuid.Nil until the first message of a conversation
	spent   usage.Totals
}

func (c *chatSession) loop(ctx context.Context, in io.Reader) error {
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	lines, readErr := readLines(rctx, in)
	for {
		fmt.Fprint(c.out, "\nyou> ")
		var line string
		select {
		case <-ctx.Done(): // Ctrl-C while waiting for input: leave now, not at the next Enter
			fmt.Fprintln(c.out)
			return nil
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(c.out)
				return <-readErr
			}
			line = strings.TrimSpace(l)
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case line == "":
			continue
		case line == "/quit" || line == "/exit":
			return nil
		case line == "/help":
			fmt.Fprint(c.out, chatHelp)
		case line == "/new":
			c.conv, c.spent = uuid.Nil, usage.Totals{}
			fmt.Fprintln(c.out, "(new conversation)")
		case line == "/archive":
			c.archive(ctx)
		case line == "/usage":
			c.usage(ctx)
		case strings.HasPrefix(line, "/"):
			fmt.Fprintf(c.out, "unknown command %s; /help lists them\n", line)
		default:
			c.ask(ctx, line)
		}
	}
}

// readLines reads in line by line on a goroutine of its own, so that the
// session can wait for a line or a signal at once. The goroutine ends at the
// end of input or, once ctx is done, at the next line; readErr then holds
// the read error (nil at EOF).
func readLines(ctx context.Context, in io.Reader) (lines <-chan string, readErr <-chan error) {
	out := make(chan string)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), conversations.MaxContentBytes*4)
		for sc.Scan() {
			select {
			case out <- sc.Text():
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
		errc <- sc.Err()
	}()
	return out, errc
}

// resume continues a conversation and shows its history.
func (c *chatSession) resume(ctx context.Context, id uuid.UUID) error {
	conv, err := c.convs.Get(ctx, c.user.ID, id)
	if err != nil {
		return fmt.Errorf("conversation %s: %w", id, err)
	}
	msgs, err := c.convs.Recent(ctx, id, 20)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "continuing %q (%d messages)\n", conv.Title, conv.MessageCount)
	for _, m := range msgs {
		who := "you"
		if m.Role == conversations.RoleAssistant {
			who = "bot"
		}
		fmt.Fprintf(c.out, "%s> %s\n", who, m.Content)
	}
	c.conv = id
	return nil
}

func (c *chatSession) ask(ctx context.Context, text string) {
	fmt.Fprint(c.out, "bot> ")
	turn := bot.Turn{UserID: c.user.ID, ConversationID: c.conv, Text: text, Source: conversations.SourceConsole,
		Key: "console:" + uuid.NewString()}
	rep, err := c.engine.Respond(ctx, turn, func(d string) { fmt.Fprint(c.out, d) })
	if err != nil {
		fmt.Fprintf(c.out, "\n%s\n", bot.UserMessage(err))
		return
	}
	fmt.Fprintln(c.out)
	c.conv = rep.AssistantMessage.ConversationID
	for i, ct := range rep.Citations {
		if i == 0 {
			fmt.Fprintln(c.out, "sources:")
		}
		title := ct.Document
		if ct.Section != "" && ct.Section != ct.Document {
			title += " — " + ct.Section
		}
		fmt.Fprintf(c.out, "  [%d] %s (%s)\n", i+1, title, ct.Path)
	}
	u := rep.Usage
	note := ""
	if u.Estimated {
		note = ", estimated"
	}
	fmt.Fprintf(c.out, "(%s · %d in / %d out tokens · %s%s)\n", u.Model, u.PromptTokens, u.CompletionTokens, usage.FormatUSD(u.CostMicroUSD), note)
	if rep.Notice != "" {
		fmt.Fprintf(c.out, "note: %s\n", rep.Notice)
	}
	c.spent = c.spent.Add(usage.Totals{PromptTokens: int64(u.PromptTokens), CompletionTokens: int64(u.CompletionTokens),
		CachedTokens: int64(u.CachedTokens), CostMicroUSD: u.CostMicroUSD, Messages: 1})
}

func (c *chatSession) archive(ctx context.Context) {
	if c.conv == uuid.Nil {
		fmt.Fprintln(c.out, "nothing to archive yet")
		return
	}
	if _, err := c.convs.Archive(ctx, c.user.ID, c.conv); err != nil {
		fmt.Fprintf(c.out, "could not archive: %v\n", err)
		return
	}
	fmt.Fprintln(c.out, "(conversation archived; the next message starts a new one)")
	c.conv, c.spent = uuid.Nil, usage.Totals{}
}

func (c *chatSession) usage(ctx context.Context) {
	s := c.spent
	fmt.Fprintf(c.out, "this conversation: %d replies, %d tokens (%d in, %d out), %s\n",
		s.Messages, s.TotalTokens(), s.PromptTokens, s.CompletionTokens, usage.FormatUSD(s.CostMicroUSD))
	r, err := usage.LastDays(time.Now(), c.user.Location(), 30)
	if err != nil {
		fmt.Fprintf(c.out, "could not read usage: %v\n", err)
		return
	}
	sum, err := c.reports.Summarize(ctx, c.user.ID, r)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(c.out, "could not read usage: %v\n", err)
		return
	}
	t := sum.Totals
	fmt.Fprintf(c.out, "last 30 days: %d replies, %d tokens, %s\n", t.Messages, t.TotalTokens(), usage.FormatUSD(t.CostMicroUSD))
}
