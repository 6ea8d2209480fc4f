package bot

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/knowledge"
)

// DefaultSystemPrompt is the instruction every model call starts with.
const DefaultSystemPrompt = `You are opsbot, the assistant of the APAC operations team.
Answer operations questions precisely and briefly. Prefer concrete steps and commands.
When runbook excerpts are given, base the answer on them and cite them inline as [1], [2], ... by their numbers; never invent a runbook or a citation.
If you do not know, say so and suggest who or what to check. Never ask for or repeat passwords, tokens or keys.`

// ClosestSectionsNotice tells the user that the cited runbook sections are
// only the closest ones found.
const ClosestSectionsNotice = "No runbook clearly answers this; the cited sections are the closest ones found."

// runbookContext renders the retrieved sections as a system message, within
// a token budget: each section gets at most an equal share, and sections
// that no longer fit are left out (and not cited). weak says no section
// clearly answers the question, which the model is told to say.
func runbookContext(hits []knowledge.Result, budget int, weak bool) (string, []Citation) {
	if len(hits) == 0 || budget <= 0 {
		return "", nil
	}
	var b strings.Builder
	b.WriteString("Runbook excerpts (cite as [n]):\n")
	if weak {
		b.WriteString("None of them clearly answers the question: they are the closest runbook sections found. " +
			"If you use them, say that they are the closest sections, not an exact match.\n")
	}
	used := EstimateTokens(b.String())
	share := budget / len(hits)
	var cites []Citation
	for _, h := range hits {
		body := h.Content
		if body == "" {
			body = h.Snippet
		}
		head := fmt.Sprintf("\n[%d] %s", len(cites)+1, h.Document)
		if h.Section != "" && h.Section != h.Document {
			head += " — " + h.Section
		}
		if h.Path != "" {
			head += " (" + h.Path + ")"
		}
		head += "\n"
		room := min(share, budget-used) - EstimateTokens(head)
		if room < 16 {
			break
		}
		body = truncateTokens(body, room)
		b.WriteString(head)
		b.WriteString(body)
		b.WriteString("\n")
		used += EstimateTokens(head) + EstimateTokens(body) + 1
		cites = append(cites, Citation{Document: h.Document, Section: h.Section, Path: h.Path, Score: h.Score, Snippet: h.Snippet})
	}
	if len(cites) == 0 {
		return "", nil
	}
	return b.String(), cites
}

// truncateTokens cuts s to about n estimated tokens on a rune boundary,
// marking the cut.
func truncateTokens(s string, n int) string {
	if EstimateTokens(s) <= n {
		return s
	}
	// Binary search on the byte length: EstimateTokens grows with it.
	lo, hi := 0, len(s)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if EstimateTokens(s[:mid]) <= n-2 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for lo > 0 && !utf8.RuneStart(s[lo]) {
		lo--
	}
	return s[:lo] + " …"
}

// fitContext builds the request messages: the system messages and the new
// user message are always kept; history is added newest first while it fits
// in budget tokens, so the oldest turns are the ones dropped. It returns the
// messages in chronological order and how many history messages were left
// out.
func fitContext(system []ChatMessage, history []conversations.Message, text string, budget int, redactHistory bool) ([]ChatMessage, int) {
	user := ChatMessage{Role: ChatUser, Content: text}
	used := EstimateMessages(append(append([]ChatMessage(nil), system...), user))
	kept := make([]ChatMessage, 0, len(history))
	dropped := 0
	for i := len(history) - 1; i >= 0; i-- {
		m := history[i]
		role := ChatUser
		switch m.Role {
		case conversations.RoleAssistant:
			role = ChatAssistant
		case conversations.RoleUser:
		default:
			continue // stored system notes are not replayed to the model
		}
		content := m.Content
		if redactHistory {
			content = Redact(content)
		}
		cost := tokensPerMessage + EstimateTokens(content)
		if used+cost > budget {
			dropped = i + 1
			break
		}
		used += cost
		kept = append(kept, ChatMessage{Role: role, Content: content})
	}
	out := make([]ChatMessage, 0, len(system)+len(kept)+1)
	out = append(out, system...)
	for i := len(kept) - 1; i >= 0; i-- {
		out = append(out, kept[i])
	}
	return append(out, user), dropped
}

// NoModelMessage is the answer when no model is configured and no runbook
// matched.
const NoModelMessage = "No language model is configured for opsbot, and no runbook matched your question, so I cannot answer it. " +
	"An admin can set OPENAI_API_KEY (or OPENAI_BASE_URL, or the AZURE_OPENAI_* variables) to turn on model answers, " +
	"or add a runbook with `opsbot runbooks sync`."

// extractiveAnswer answers without a model by quoting the best runbook
// sections, numbered like model citations. weak says the sections fall short
// of an answer, which the reply admits.
func extractiveAnswer(hits []knowledge.Result, weak bool) (string, []Citation) {
	if len(hits) == 0 {
		return NoModelMessage, []Citation{}
	}
	var b strings.Builder
	if weak {
		b.WriteString("No language model is configured and no runbook clearly answers this; these are the closest sections (quoting runbooks):\n")
	} else {
		b.WriteString("No language model is configured, so here is what the runbooks say (quoting runbooks):\n")
	}
	cites := make([]Citation, 0, len(hits))
	for i, h := range hits {
		title := h.Document
		if h.Section != "" && h.Section != h.Document {
			title += " — " + h.Section
		}
		fmt.Fprintf(&b, "\n[%d] %s\n", i+1, title)
		body := strings.TrimSpace(h.Content)
		if body == "" {
			body = strings.TrimSpace(h.Snippet)
		}
		body = truncateTokens(body, 200)
		for _, line := range strings.Split(body, "\n") {
			b.WriteString("> " + line + "\n")
		}
		cites = append(cites, Citation{Document: h.Document, Section: h.Section, Path: h.Path, Score: h.Score, Snippet: h.Snippet})
	}
	return strings.TrimRight(b.String(), "\n"), cites
}

// titleFrom makes a conversation title from its first message.
func titleFrom(text string) string {
	line := strings.TrimSpace(strings.SplitN(strings.TrimSpace(text), "\n", 2)[0])
	if utf8.RuneCountInString(line) > 80 {
		r := []rune(line)
		line = strings.TrimSpace(string(r[:77])) + "…"
	}
	if line == "" {
		return conversations.DefaultTitle
	}
	return line
}
