package commands

import (
	"strconv"
	"strings"
	"unicode"
)

// Command names.
const (
	CmdHelp     = "help"
	CmdNew      = "new"
	CmdList     = "list"
	CmdArchive  = "archive"
	CmdUsage    = "usage"
	CmdHandover = "handover"
	CmdToken    = "token"
)

// Spec describes one command, for help texts and the Slack and Teams
// manifests (their tests compare their command lists with Specs).
type Spec struct {
	Name    string
	Args    string // the arguments as help shows them, "" for none
	Summary string
}

// specs is the command set in the order help lists it.
var specs = []Spec{
	{CmdHelp, "", "what I can do"},
	{CmdNew, "", "start a new conversation"},
	{CmdList, "", "your open conversations"},
	{CmdArchive, "", "archive a conversation (you can undo it)"},
	{CmdUsage, "[7d|30d]", "your tokens and cost, in your time zone"},
	{CmdUsage, "team", "everyone's tokens and cost (admins)"},
	{CmdHandover, "[12h]", "this channel's conversations of the last shift, unanswered ones marked"},
	{CmdToken, "", "a personal API token, shown once"},
}

// Specs returns the command set, in the order help lists it. "usage team"
// is listed as a second entry of usage.
func Specs() []Spec { return append([]Spec(nil), specs...) }

// Defaults and bounds of the arguments.
const (
	DefaultUsageDays    = 30
	MaxUsageDays        = 90
	DefaultHandoverHour = 12
	MaxHandoverHours    = 7 * 24
)

// Invocation is one parsed command.
type Invocation struct {
	Name  string
	Days  int  // usage: the last Days days, today included
	Team  bool // usage team
	Hours int  // handover: the last Hours hours
	// Unknown is what was typed in place of a command, for help to mention.
	Unknown string
	// Problem, when set, says what was wrong with the arguments; the
	// command answers with its usage instead of running.
	Problem string
}

// Parse reads a command as people type it after /opsbot: case, extra
// spaces, a leading slash and trailing punctuation do not matter ("Usage
// 7D", "usage  30d", "/usage"). Anything that is not a command is help,
// with the unknown word kept for the answer to mention.
func Parse(text string) Invocation {
	words := tokens(text)
	if len(words) == 0 {
		return Invocation{Name: CmdHelp}
	}
	inv, ok := parseWords(words)
	if !ok && inv.Name == "" {
		return Invocation{Name: CmdHelp, Unknown: words[0]}
	}
	return inv
}

// ParseMessage reads a chat message that may be a command (the text after
// an @mention, a DM): ok is true only when the whole message is a command
// with valid arguments, so that "help me with the disk on web-03" or "list
// the pods that crash" stay questions for the bot.
func ParseMessage(text string) (inv Invocation, ok bool) {
	words := tokens(text)
	if len(words) == 0 {
		return Invocation{}, false
	}
	inv, ok = parseWords(words)
	return inv, ok && inv.Problem == ""
}

// fillers may follow a command without making it a question: "archive
// this", "new conversation", "list conversations".
var fillers = map[string]bool{
	"this": true, "it": true, "thread": true, "conversation": true, "conversations": true,
	"chat": true, "chats": true, "please": true, "pls": true,
}

// parseWords parses words[0] as a command and the rest as its arguments.
// ok is false when the words are not exactly a command; inv.Name is set
// when the first word was one (the arguments were not), with Problem
// saying what was wrong.
func parseWords(words []string) (inv Invocation, ok bool) {
	args := words[1:]
	switch words[0] {
	case CmdHelp, "?", "commands":
		return Invocation{Name: CmdHelp}, onlyFillers(args)
	case CmdNew, CmdList, CmdArchive, CmdToken:
		return Invocation{Name: words[0]}, onlyFillers(args)
	case CmdUsage:
		inv = Invocation{Name: CmdUsage, Days: DefaultUsageDays}
		daysSeen := false
		for _, a := range args {
			switch {
			case a == "team" && !inv.Team:
				inv.Team = true
			case !daysSeen:
				d, dok := parseSpan(a, 'd', MaxUsageDays)
				if !dok {
					inv.Problem = "usage takes a number of days such as 7d or 30d (at most 90d), and team"
					return inv, false
				}
				inv.Days, daysSeen = d, true
			default:
				inv.Problem = "usage takes a number of days such as 7d or 30d (at most 90d), and team"
				return inv, false
			}
		}
		return inv, true
	case CmdHandover:
		inv = Invocation{Name: CmdHandover, Hours: DefaultHandoverHour}
		switch len(args) {
		case 0:
			return inv, true
		case 1:
			h, hok := parseSpan(args[0], 'h', MaxHandoverHours)
			if hok {
				inv.Hours = h
				return inv, true
			}
		}
		inv.Problem = "handover takes a number of hours such as 8h or 12h (at most 168h)"
		return inv, false
	}
	return Invocation{}, false
}

func onlyFillers(args []string) bool {
	for _, a := range args {
		if !fillers[a] {
			return false
		}
	}
	return true
}

// parseSpan reads a span such as "7d" or "7" in unit ('d' or 'h'): days
// also read weeks ("1w" is 7d), hours also read days ("1d" is 24h). The
// value must be 1..limit.
func parseSpan(s string, unit byte, limit int) (int, bool) {
	mult := 1
	switch {
	case strings.HasSuffix(s, string(unit)):
		s = s[:len(s)-1]
	case unit == 'd' && strings.HasSuffix(s, "w"):
		s, mult = s[:len(s)-1], 7
	case unit == 'h' && strings.HasSuffix(s, "d"):
		s, mult = s[:len(s)-1], 24
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > limit/mult {
		return 0, false
	}
	return n * mult, true
}

// tokens lower-cases text and splits it into words, dropping a leading
// slash and the punctuation around words ("Archive." is "archive").
func tokens(text string) []string {
	text = strings.TrimPrefix(strings.TrimSpace(text), "/")
	var out []string
	for _, f := range strings.Fields(strings.ToLower(text)) {
		f = strings.TrimFunc(f, func(r rune) bool { return unicode.IsPunct(r) && r != '?' })
		if f == "" || (f != "?" && strings.Trim(f, "?") == "") {
			continue
		}
		if f != "?" {
			f = strings.TrimRight(f, "?")
		}
		out = append(out, f)
	}
	return out
}
