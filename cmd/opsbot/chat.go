package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

const chatHelp = `Type a question and press Enter, or a command after a slash (/usage 7d).
Besides the commands above: /undo restores what /archive archived, /quit leaves (Ctrl-D works too).
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
		out: e.stdout, engine: engine, convs: conversations.NewStore(pool), user: u,
		commands: commands.New(commands.Config{DB: pool, Users: users.NewStore(pool, e.cfg.TimeZone),
			Gaps: runbooks}),
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
	out      io.Writer
	engine   *bot.Engine
	convs    *conversations.Store
	commands *commands.Set
	user     users.User
	conv     uuid.UUID // uuid.Nil until the first message of a conversation
	spent    usage.Totals
	undo     *commands.Action // what /undo does: restore the last archived conversation
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
		case line == "/undo":
			c.runAction(ctx)
		case strings.HasPrefix(line, "/"):
			c.command(ctx, line)
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

// command runs a command of the shared set (help, new, list, archive,
// usage, handover, token) and prints its answer.
func (c *chatSession) command(ctx context.Context, line string) {
	inv := commands.Parse(line)
	if inv.Name == commands.CmdUsage && !inv.Team && inv.Problem == "" {
		s := c.spent
		fmt.Fprintf(c.out, "this conversation: %d replies, %d tokens (%d in, %d out), %s\n",
			s.Messages, s.TotalTokens(), s.PromptTokens, s.CompletionTokens, usage.FormatUSD(s.CostMicroUSD))
	}
	r, err := c.commands.Run(ctx, c.caller(), inv)
	if err != nil {
		fmt.Fprintf(c.out, "%s\n", bot.UserMessage(err))
		return
	}
	c.show(r)
	if inv.Name == commands.CmdHelp {
		fmt.Fprint(c.out, chatHelp)
	}
}

// runAction does what /undo stands for.
func (c *chatSession) runAction(ctx context.Context) {
	if c.undo == nil {
		fmt.Fprintln(c.out, "nothing to undo")
		return
	}
	r, err := c.commands.Do(ctx, c.caller(), *c.undo)
	if err != nil {
		fmt.Fprintf(c.out, "%s\n", bot.UserMessage(err))
		return
	}
	c.undo = nil
	c.show(r)
}

func (c *chatSession) caller() commands.Caller {
	return commands.Caller{User: c.user, Source: conversations.SourceConsole, ConversationID: c.conv, Private: true}
}

// show prints a command's answer and follows it: a new conversation starts
// with the next message, an archive can be undone with /undo.
func (c *chatSession) show(r commands.Result) {
	fmt.Fprint(c.out, strings.TrimRight(r.Text, "\n")+"\n")
	for _, a := range r.Actions {
		if a.Kind == commands.ActUnarchive {
			c.undo = &a
			fmt.Fprintln(c.out, "(/undo restores it)")
		}
	}
	if r.NewConversation {
		c.conv, c.spent = uuid.Nil, usage.Totals{}
	}
}
