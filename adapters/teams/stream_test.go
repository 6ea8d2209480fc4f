package teams

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/commands"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/fakes/teamsfake"
	"github.com/apacops/opsbot/internal/testriver"
)

// interruptingLLM starts its first answer, then stops the job it runs in
// (cancel is the job's context: a worker shutting down), as a job that
// ends without its reply; later calls go to next.
type interruptingLLM struct {
	cancel context.CancelFunc
	next   bot.LLM
	called atomic.Bool
}

func (l *interruptingLLM) Complete(ctx context.Context, req bot.Request, onDelta func(string)) (bot.Completion, error) {
	if l.called.Swap(true) {
		return l.next.Complete(ctx, req, onDelta)
	}
	if onDelta != nil {
		onDelta("Kafka lag comes from ")
	}
	time.Sleep(30 * time.Millisecond) // room for a streamed update
	l.cancel()
	<-ctx.Done()
	return bot.Completion{}, ctx.Err()
}

// turnJob runs the turn worker, with the model llm, on one attempt of a
// Teams turn in the conversation convID of type convType, as River would.
func (h *harness) turnJob(t *testing.T, llm bot.LLM, convType, convID, activityID string) func(ctx context.Context, attempt int) error {
	t.Helper()
	ana := h.user(t, anaAAD)
	engine := bot.New(bot.Config{DB: h.db, LLM: llm, Model: "gpt-4o-mini", Retriever: fakeRunbooks{}})
	w := bot.NewTurnWorker(engine, nil, map[string]bot.Replier{Platform: h.replier}, nil)
	th := conversations.ThreadKey{Platform: Platform, Tenant: teamsfake.TenantID, Channel: convID, Thread: chatThread}
	args := bot.TurnArgs{Platform: Platform, UserID: ana.ID, Thread: &th, Text: "why is kafka lagging?", Source: Platform,
		Key:  Platform + ":" + activityID + "@" + convID,
		Meta: map[string]string{metaServiceURL: h.fake.ServiceURL(), metaConversation: convID, metaReplyTo: activityID, metaConvType: convType}}
	return func(ctx context.Context, attempt int) error {
		return w.Work(ctx, &river.Job[bot.TurnArgs]{
			JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: bot.TurnMaxAttempts}, Args: args})
	}
}

// openStreams counts the streams and typing indicators the replier holds.
func (h *harness) openStreams() int {
	h.replier.mu.Lock()
	defer h.replier.mu.Unlock()
	return len(h.replier.streams)
}

// A 1:1 stream whose job ends without a reply (here the worker stops
// mid-answer; River runs the job again) is closed with a final message
// saying the answer follows, before the retry opens its own stream, which
// its reply finishes; the replier forgets both.
func TestStreamClosedWhenItsJobEndsWithoutReply(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	work := h.turnJob(t, &interruptingLLM{cancel: cancel, next: h.llm}, convPersonal, chatID, "1:int-1")
	if err := work(ctx, 1); err == nil {
		t.Fatal("attempt 1 succeeded, want it interrupted")
	}
	isFinal := func(c teamsfake.Call) bool { return entityOf(c.Activity, "streaminfo")["streamType"] == "final" }
	closed := h.waitFor(t, "the interrupted stream closed", 1, isFinal)[0]
	testriver.WaitFor(t, "the interrupted stream forgotten", func() bool { return h.openStreams() == 0 })

	if err := work(context.Background(), 2); err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	if n := h.openStreams(); n != 0 {
		t.Errorf("%d streams held after the reply, want 0", n)
	}
	var opened []string // stream ids, in order
	finals := map[string][]teamsfake.Call{}
	closedAt, secondAt := -1, -1
	for i, c := range h.fake.Activities() {
		e := entityOf(c.Activity, "streaminfo")
		switch {
		case e["streamType"] == "informative":
			opened = append(opened, "1:act-"+strconv.Itoa(i+1)) // the fake numbers activities in order
			if len(opened) == 2 {
				secondAt = i
			}
		case e["streamType"] == "final":
			id, _ := e["streamId"].(string)
			finals[id] = append(finals[id], c)
			if c.Activity["text"] == streamClosed {
				closedAt = i
			}
		}
	}
	if len(opened) != 2 {
		t.Fatalf("streams opened %v, want one per attempt", opened)
	}
	first, second := opened[0], opened[1]
	if len(finals[first]) != 1 || closed.Activity["text"] != streamClosed || closed.Activity["type"] != "message" {
		t.Errorf("first stream %s ended by %v, want one final message %q", first, finals[first], streamClosed)
	}
	if closed.Path != "/v3/conversations/a:1personal-chat-with-ana/activities/1:int-1" {
		t.Errorf("closing message went to %s, want the turn's chat", closed.Path)
	}
	if closedAt > secondAt {
		t.Errorf("the first stream was closed (call %d) after the retry opened its own (call %d): Teams runs one stream per chat", closedAt, secondAt)
	}
	if len(finals[second]) != 1 {
		t.Fatalf("second stream %s has %d final messages, want 1", second, len(finals[second]))
	}
	if text, _ := finals[second][0].Activity["text"].(string); !strings.Contains(text, "journalctl [1]") {
		t.Errorf("second stream's final %q, want the answer", text)
	}
}

// Outside 1:1 chats the typing indicator of a job that ends without a
// reply stops with the job, and the replier forgets it; nothing is posted.
func TestTypingStopsWhenItsJobEndsWithoutReply(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const groupID = "19:ops-huddle@thread.v2"
	work := h.turnJob(t, &interruptingLLM{cancel: cancel, next: h.llm}, convGroupChat, groupID, "1:int-2")
	if err := work(ctx, 1); err == nil {
		t.Fatal("attempt 1 succeeded, want it interrupted")
	}
	h.waitFor(t, "a typing indicator", 1, func(c teamsfake.Call) bool { return c.Activity["type"] == "typing" })
	testriver.WaitFor(t, "the typing indicator stopped", func() bool { return h.openStreams() == 0 })
	typing := h.fake.Counts().Typing
	time.Sleep(5 * h.replier.typingEvery) // five more indicators, were it still running
	if n := h.fake.Counts().Typing; n != typing {
		t.Errorf("%d typing indicators after the job ended, want none", n-typing)
	}
	if n := h.fake.Counts().Messages; n != 0 {
		t.Errorf("%d messages posted, want none", n)
	}
}

// However a job's end and its reply interleave, each stream gets exactly
// one final message and the reply is posted exactly once: as the stream's
// final, or on its own when the stream was already being closed.
func TestStreamEndAndReplyRace(t *testing.T) {
	fake := teamsfake.ForTest(t)
	conn := NewConnector(NewTokenSource(Credentials{AppID: teamsfake.AppID, AppPassword: teamsfake.AppPassword, TokenURL: fake.TokenURL()}, nil), nil)
	noWait(conn)
	r := NewReplier(conn, nil)
	r.streamEvery = time.Millisecond
	const turns = 20
	for i := range turns {
		id := "1:race-" + strconv.Itoa(i)
		turn := bot.Turn{Key: "teams:" + id, Meta: map[string]string{metaServiceURL: fake.ServiceURL(), metaConversation: chatID,
			metaReplyTo: id, metaConvType: convPersonal}}
		ctx, cancel := context.WithCancel(context.Background())
		add, err := r.Stream(ctx, turn)
		if err != nil {
			t.Fatal(err)
		}
		add("partial")
		cancel() // the job ends as its reply goes out
		res := commands.Result{Command: commands.CmdHelp, Text: "answer " + id}
		if _, err := r.Reply(context.Background(), turn, bot.Reply{Text: res.Text, Command: &res}); err != nil {
			t.Fatal(err)
		}
	}
	testriver.WaitFor(t, "every stream forgotten", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.streams) == 0
	})
	finals, answers := map[string]int{}, map[string]int{}
	for _, c := range fake.Activities() {
		if e := entityOf(c.Activity, "streaminfo"); e["streamType"] == "final" {
			finals[e["streamId"].(string)]++
		}
		if text, _ := c.Activity["text"].(string); c.Activity["type"] == "message" && strings.HasPrefix(text, "answer ") {
			answers[text]++
		}
	}
	if len(finals) != turns {
		t.Errorf("%d streams got a final message, want %d", len(finals), turns)
	}
	for id, n := range finals {
		if n != 1 {
			t.Errorf("stream %s got %d final messages, want 1", id, n)
		}
	}
	for i := range turns {
		if n := answers["answer 1:race-"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("turn %d's answer posted %d times, want 1", i, n)
		}
	}
}
