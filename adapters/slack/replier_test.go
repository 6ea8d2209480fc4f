package slack

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/testriver"
)

// hostile is model output trying every way to ping people or smuggle a
// link.
const hostile = "<!channel> deploy now! cc <@U999> <!here> <!subteam^S1|@oncall> <!everyone> " +
	"see <https://evil.example.com|the runbook> and [click](javascript:alert(1)) & [docs](https://x.example.com/a|<!channel>)"

// pingable finds what Slack would act on other than a web link: every
// "<" opens a control sequence, and only <http…> and <mailto:…> ones are
// allowed in model output.
func pingable(s string) []string {
	var bad []string
	for i := strings.IndexByte(s, '<'); i >= 0; i = strings.IndexByte(s, '<') {
		s = s[i+1:]
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "mailto:") {
			bad = append(bad, "<"+s[:min(len(s), 12)])
		}
	}
	return bad
}

func TestModelOutputCannotPing(t *testing.T) {
	e := testEnv(t)
	e.slack.DisableStreaming("C13POSTED")
	for _, tt := range []struct{ channel, team, ts string }{
		{"C13STREAM", "T0001", "1764000013.000100"},
		{"C13POSTED", "T0NOSTREAM", "1764000013.000200"},
	} {
		t.Run(tt.channel, func(t *testing.T) {
			q := "write something nasty in " + tt.channel
			e.model.Script(q, answer(hostile))
			e.deliverFrom(t, tt.team, "Ev13"+tt.channel, slackfake.AppMention("U1ANA", tt.channel, tt.ts, "", q), 0)
			msgs := e.answers(t, tt.channel, tt.ts, 1)
			m := msgs[0]
			for _, field := range []string{m.Text, m.Markdown, m.Blocks} {
				if bad := pingable(field); len(bad) > 0 {
					t.Errorf("posted %q contains %v", field, bad)
				}
			}
			all := m.Text + m.Markdown + m.Blocks
			if !strings.Contains(all, "&lt;!channel&gt;") || !strings.Contains(all, "&lt;@U999&gt;") {
				t.Errorf("posted %q: want the mentions shown as text", all)
			}
		})
	}
	// The posted rendering keeps the one safe link, with its URL encoded.
	got := toMrkdwn(hostile)
	if !strings.Contains(got, "<https://x.example.com/a%7C%3C!channel%3E|docs>") || !strings.Contains(got, "<https://evil.example.com|the runbook>") ||
		!strings.Contains(got, "[click](javascript:alert(1))") {
		t.Errorf("toMrkdwn(hostile) = %q", got)
	}
}

func TestPostMessageRateLimitHonoured(t *testing.T) {
	e := testEnv(t)
	const ts = "1764000014.000100"
	e.setFault(t, slackfake.RateLimit(methodPostMessage, 1, time.Second))
	mark := e.slack.Mark()
	// help in a DM is posted in the thread (a command, not streamed).
	e.deliver(t, "Ev14", slackfake.MessageEvent("U1ANA", "D14ANA", "im", ts, "", "help"), 0)
	msgs := e.answers(t, "D14ANA", ts, 1)
	posts := e.slack.CallsAfter(mark, methodPostMessage)
	if len(posts) != 2 || len(msgs) != 1 {
		t.Fatalf("postMessage calls %d, messages %d: want a 429, then one message", len(posts), len(msgs))
	}
	if gap := posts[1].At.Sub(posts[0].At); gap < time.Second {
		t.Errorf("retried after %s, want at least the Retry-After of 1s", gap)
	}
	if !strings.Contains(msgs[0].Blocks, "usage") {
		t.Errorf("help answer %s: want the command list", msgs[0].Blocks)
	}
}

// Posts in one channel are spaced by PostEvery.
func TestPostsPacedPerChannel(t *testing.T) {
	p := newPacer(200 * time.Millisecond)
	ctx := context.Background()
	start := time.Now()
	var at []time.Duration
	for range 3 {
		if err := p.wait(ctx, "C1"); err != nil {
			t.Fatal(err)
		}
		at = append(at, time.Since(start))
	}
	if err := p.wait(ctx, "C2"); err != nil { // another channel does not wait
		t.Fatal(err)
	}
	other := time.Since(start) - at[2]
	if at[1] < 200*time.Millisecond || at[2] < 400*time.Millisecond || other > 100*time.Millisecond {
		t.Errorf("post times %v then another channel after %s: want 0, 200ms, 400ms and no wait", at, other)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.wait(cctx, "C1"); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting with a cancelled context: got %v", err)
	}
}

func TestAssistantThread(t *testing.T) {
	e := testEnv(t)
	const thread = "1764000015.000100"
	mark := e.slack.Mark()
	e.deliver(t, "Ev15START", map[string]any{"type": "assistant_thread_started", "event_ts": thread,
		"assistant_thread": map[string]any{"user_id": "U1ANA", "channel_id": "D15ANA", "thread_ts": thread,
			"context": map[string]any{"channel_id": "C0OPS", "team_id": "T0001"}}}, 0)
	prompts := e.slack.CallsAfter(mark, methodSetPrompts)
	if len(prompts) != 1 || !strings.Contains(prompts[0].Form.Get("prompts"), "How do I clear a full /var") ||
		prompts[0].Form.Get("thread_ts") != thread {
		t.Fatalf("suggested prompts %v, want the manifest's prompts in the new thread", prompts)
	}
	e.deliver(t, "Ev15Q", slackfake.MessageEvent("U1ANA", "D15ANA", "im", "1764000015.000200", thread, "how do we fail over postgres?"), 0)
	e.answers(t, "D15ANA", thread, 1)
	status := e.slack.CallsAfter(mark, methodSetStatus)
	if len(status) != 1 || !strings.Contains(status[0].Form.Get("loading_messages"), "Searching runbooks…") {
		t.Errorf("status calls %v, want one with Searching runbooks… and Thinking…", status)
	}
	title := e.slack.CallsAfter(mark, methodSetTitle)
	if len(title) != 1 || title[0].Form.Get("title") != "how do we fail over postgres?" {
		t.Errorf("title calls %v, want the first question", title)
	}
	// A second question in the thread keeps the title.
	e.deliver(t, "Ev15Q2", slackfake.MessageEvent("U1ANA", "D15ANA", "im", "1764000015.000300", thread, "and back again?"), 0)
	e.answers(t, "D15ANA", thread, 2)
	if n := len(e.slack.CallsAfter(mark, methodSetTitle)); n != 1 {
		t.Errorf("title set %d times, want once", n)
	}
}

// failingInbox is a database that is gone; it tells tried about every
// event it refused, when tried is not nil.
type failingInbox struct{ tried chan string }

func (f failingInbox) Accept(_ context.Context, key string, _ bot.TurnArgs) (bool, error) {
	if f.tried != nil {
		f.tried <- key
	}
	return false, errors.New("dial tcp 127.0.0.1:5432: connection refused")
}

// When the event cannot be recorded Slack gets a 503 and delivers it
// again; on its last delivery the person is told.
func TestUnrecordedEventRedeliveredThenToldOnTheLast(t *testing.T) {
	e := testEnv(t)
	mux := http.NewServeMux()
	for _, r := range e.app.Routes(failingInbox{}) {
		mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	down := &env{db: e.db, slack: e.slack, srv: httptest.NewServer(mux)}
	t.Cleanup(down.srv.Close)
	const ts = "1764000016.000100"
	for retry := range finalDelivery + 1 {
		if resp := down.deliver(t, "Ev16DOWN", slackfake.AppMention("U1ANA", "C16DOWN", ts, "", "anyone there?"), retry); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("delivery %d: got %d, want 503", retry, resp.StatusCode)
		}
		told := e.slack.InThread("C16DOWN", ts)
		if want := retry == finalDelivery; (len(told) == 1) != want || len(told) > 1 {
			t.Fatalf("after delivery %d: %d notices, want one only after the last", retry, len(told))
		}
	}
	if got := e.slack.InThread("C16DOWN", ts)[0].Text; got != escape(lostNotice) {
		t.Errorf("notice %q", got)
	}
}

// A stream whose job ends without a reply (an attempt that failed and will
// be retried) is deleted, so the retry's answer is the only one.
func TestAbandonedStreamDeleted(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	turn := bot.Turn{Key: "slack:Ev17", Thread: &conversations.ThreadKey{Platform: Platform, Tenant: "T0001", Channel: "C17", Thread: "1764000017.000100"},
		Meta: map[string]string{metaUser: "U1ANA", metaUserTeam: "T0001"}}
	add, err := e.app.Stream(ctx, turn)
	if err != nil {
		t.Fatal(err)
	}
	add("First words of an answer ")
	testriver.WaitFor(t, "the stream to start", func() bool { return len(e.slack.InThread("C17", "1764000017.000100")) == 1 })
	cancel()
	testriver.WaitFor(t, "the stream to be deleted", func() bool { return len(e.slack.InThread("C17", "1764000017.000100")) == 0 })
	if s := e.app.streams.take(turn.Key); s != nil {
		t.Errorf("the abandoned stream is still held")
	}
}

// A failure after the stream started ends the streamed message with the
// notice rather than leaving it unfinished or posting a second message.
func TestStreamEndsWithFailureNotice(t *testing.T) {
	e := testEnv(t)
	turn := bot.Turn{Key: "slack:Ev18", Thread: &conversations.ThreadKey{Platform: Platform, Tenant: "T0001", Channel: "C18", Thread: "1764000018.000100"},
		Meta: map[string]string{metaUser: "U1ANA", metaUserTeam: "T0001"}}
	add, err := e.app.Stream(context.Background(), turn)
	if err != nil {
		t.Fatal(err)
	}
	add("Partial ")
	testriver.WaitFor(t, "the stream to start", func() bool { return len(e.slack.InThread("C18", "1764000018.000100")) == 1 })
	const notice = "The language model did not answer in time."
	if _, err := e.app.Reply(context.Background(), turn, bot.Reply{Text: notice, Attempt: 5}); err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.InThread("C18", "1764000018.000100")
	if len(msgs) != 1 || msgs[0].Streaming || !strings.HasSuffix(msgs[0].Markdown, notice) {
		t.Errorf("messages %+v, want the stream stopped with the notice", msgs)
	}
}

// A long answer is split into several messages, each with its part in the
// metadata; a retry finds every part and posts none again.
func TestLongAnswerSplitIntoParts(t *testing.T) {
	e := testEnv(t)
	var b strings.Builder
	for i := range 40 {
		b.WriteString(strings.Repeat("word ", 140))
		b.WriteString("end of paragraph " + string(rune('A'+i%26)) + ".\n\n")
	}
	answer := bot.Reply{Text: b.String(), AssistantMessage: conversations.Message{ID: uuid.New()}, Attempt: 1}
	turn := bot.Turn{Key: "slack:Ev19", Thread: &conversations.ThreadKey{Platform: Platform, Tenant: "T0001", Channel: "C19", Thread: "1764000019.000100"},
		Meta: map[string]string{metaUser: "U1ANA", metaTS: "1764000019.000100"}}
	first, err := e.app.Reply(context.Background(), turn, answer)
	if err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.InThread("C19", "1764000019.000100")
	if len(msgs) < 2 || msgs[0].TS != first {
		t.Fatalf("posted %d messages (first %s), want several, the first returned", len(msgs), first)
	}
	for i, m := range msgs {
		if md := metadataOf(t, m); md[mdPart] != float64(i+1) {
			t.Errorf("message %d has part %v", i, md[mdPart])
		}
		if strings.Contains(m.Blocks, actionVoteUp) != (i == len(msgs)-1) {
			t.Errorf("message %d: the vote buttons belong on the last part only", i)
		}
	}
	mark := e.slack.Mark()
	answer.Attempt = 2
	again, err := e.app.Reply(context.Background(), turn, answer)
	if err != nil || again != first || len(e.slack.CallsAfter(mark, methodPostMessage)) != 0 {
		t.Errorf("retry: %s, %v, %d posts; want the first part's ts and no post", again, err, len(e.slack.CallsAfter(mark, methodPostMessage)))
	}
}
