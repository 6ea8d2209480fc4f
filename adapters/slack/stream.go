package slack

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/conversations"
)

// Streaming. While the model writes, the answer is shown as it grows:
// with chat.startStream / appendStream / stopStream where the workspace
// allows it, else as a message posted with chat.postMessage and rewritten
// with chat.update, no more often than Config.UpdateEvery and never while
// Slack asks us to back off. The message starts with the first words (a
// model that fails before writing anything leaves nothing to clean up).
// Reply then finishes it: the rest of the text, the sources and the vote
// buttons, and the turn key in its metadata. A stream its job abandoned
// (the attempt failed and will be retried) is deleted, so the retry's
// answer is the only one.

// thinking is the assistant panel's status while a turn runs.
var thinking = slack.AssistantThreadsSetStatusParameters{
	Status:          "is thinking…",
	LoadingMessages: []string{"Searching runbooks…", "Thinking…"},
}

// streamSet holds the streams in progress, by turn key.
type streamSet struct {
	mu sync.Mutex
	m  map[string]*stream
}

func (ss *streamSet) put(key string, s *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.m[key] = s
}

// take removes and returns the stream of a turn, nil when there is none.
func (ss *streamSet) take(key string) *stream {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[key]
	delete(ss.m, key)
	return s
}

// drop removes s if it is still the turn's stream.
func (ss *streamSet) drop(key string, s *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m[key] == s {
		delete(ss.m, key)
	}
}

// stream is one answer being shown as it is written. The flusher
// goroutine (run) owns ts, native and sent until it exits; Reply takes over
// after closing done and waiting for exited.
type stream struct {
	app  *App
	turn bot.Turn
	th   conversations.ThreadKey

	mu     sync.Mutex
	text   strings.Builder // everything the model wrote so far
	sent   int             // bytes of text shown
	paused time.Time       // no calls before this (a 429's Retry-After)

	ts     string // the message, once started
	native bool   // chat.startStream rather than postMessage + update

	wake   chan struct{}
	done   chan struct{}
	exited chan struct{}
}

// Stream starts showing a turn's answer as the model writes it; see
// bot.StreamingReplier. In an assistant thread it also sets the status.
func (a *App) Stream(ctx context.Context, t bot.Turn) (func(string), error) {
	th, err := threadOf(t)
	if err != nil {
		return nil, err
	}
	if t.Meta[metaAssistant] == "1" {
		a.setStatus(ctx, th)
	}
	s := &stream{app: a, turn: t, th: th, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	a.streams.put(t.Key, s)
	go s.run(ctx)
	return s.add, nil
}

func (a *App) setStatus(ctx context.Context, th conversations.ThreadKey) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	p := thinking
	p.ChannelID, p.ThreadTS = th.Channel, th.Thread
	if err := call(ctx, methodSetStatus, func(ctx context.Context) error {
		return a.api.SetAssistantThreadsStatusContext(ctx, p)
	}); err != nil {
		a.log.InfoContext(ctx, "set assistant thread status", "channel", th.Channel, "error", err)
	}
}

// add takes a piece of the answer; it never blocks the model's stream.
func (s *stream) add(piece string) {
	s.mu.Lock()
	s.text.WriteString(piece)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run shows new text as it comes, paced, until Reply takes over or the
// job's context ends without a reply.
func (s *stream) run(ctx context.Context) {
	defer close(s.exited)
	for {
		select {
		case <-s.done:
			return
		case <-ctx.Done():
			s.abandonUnlessTaken()
			return
		case <-s.wake:
		}
		s.flush(ctx)
		pause := time.NewTimer(s.app.cfg.UpdateEvery)
		select {
		case <-s.done:
			pause.Stop()
			return
		case <-ctx.Done():
			pause.Stop()
			s.abandonUnlessTaken()
			return
		case <-pause.C:
		}
	}
}

// flush shows the text written so far. Intermediate updates are
// expendable: a failure is logged and the next flush (or Reply) catches up.
func (s *stream) flush(ctx context.Context) {
	s.mu.Lock()
	all, sent, paused := s.text.String(), s.sent, time.Now().Before(s.paused)
	s.mu.Unlock()
	if paused || len(all) == sent {
		return
	}
	var err error
	switch {
	case s.ts == "":
		err = s.start(ctx, all)
	case s.native:
		_, _, err = s.app.api.AppendStreamContext(ctx, s.th.Channel, s.ts, slack.MsgOptionMarkdownText(escape(all[sent:])))
	default:
		_, _, _, err = s.app.api.UpdateMessageContext(ctx, s.th.Channel, s.ts,
			slack.MsgOptionText(toMrkdwn(all)+" …", false), slack.MsgOptionMetadata(replyMetadata(s.turn.Key, 1, false)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, limited := rateLimited(err); limited {
		s.paused = time.Now().Add(d)
		return
	}
	if err != nil {
		s.app.log.InfoContext(ctx, "streamed update failed", "turn_key", s.turn.Key, "error", err)
		return
	}
	s.sent = len(all)
}

// start opens the message: a chat.startStream stream where the workspace
// allows it, else a postMessage carrying the turn key, marked unfinished.
func (s *stream) start(ctx context.Context, text string) error {
	a, team := s.app, s.th.Tenant
	if a.streamingAllowed(team) {
		opts := []slack.MsgOption{slack.MsgOptionTS(s.th.Thread), slack.MsgOptionMarkdownText(escape(text))}
		if s.turn.Meta[metaDM] != "1" { // outside a DM Slack needs the recipient
			opts = append(opts, slack.MsgOptionRecipientTeamID(s.turn.Meta[metaUserTeam]),
				slack.MsgOptionRecipientUserID(s.turn.Meta[metaUser]))
		}
		_, ts, err := a.api.StartStreamContext(ctx, s.th.Channel, opts...)
		if err == nil {
			s.ts, s.native = ts, true
			return nil
		}
		if _, limited := rateLimited(err); limited {
			return err
		}
		a.refuseStreaming(team)
		a.log.InfoContext(ctx, "chat.startStream unavailable; streaming with chat.update", "team", team, "error", err)
	}
	ts, err := a.post(ctx, s.th.Channel, s.th.Thread, outMsg{text: toMrkdwn(text) + " …"}, replyMetadata(s.turn.Key, 1, false))
	if err != nil {
		return err
	}
	s.ts = ts
	return nil
}

// stop takes the stream over from its flusher.
func (s *stream) stop() {
	close(s.done)
	<-s.exited
}

// finish completes the streamed message with the stored answer.
func (s *stream) finish(ctx context.Context, r bot.Reply) (string, error) {
	s.stop()
	a := s.app
	if s.ts == "" {
		return a.postOnce(ctx, s.turn, r.Attempt, answerMessages(r))
	}
	if !s.native {
		return s.ts, s.complete(ctx, answerMessages(r))
	}
	s.mu.Lock()
	shown := s.text.String()[:s.sent]
	s.mu.Unlock()
	opts := []slack.MsgOption{slack.MsgOptionMetadata(replyMetadata(s.turn.Key, 1, true))}
	if tail := tailBlocks(r); len(tail) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(tail...))
	}
	same := strings.HasPrefix(r.Text, shown)
	if rest := strings.TrimPrefix(r.Text, shown); same && rest != "" {
		opts = append(opts, slack.MsgOptionMarkdownText(escape(rest)))
	}
	if err := s.stopStream(ctx, opts...); err != nil {
		// Without its metadata a retry could not find this message: delete
		// it, and the retry posts the answer afresh.
		s.abandon()
		return "", err
	}
	if !same { // what was shown is not what was stored: show the stored answer
		return s.ts, s.complete(ctx, answerMessages(r))
	}
	return s.ts, nil
}

// fail ends the streamed message with a failure notice (an unstored
// reply's text) instead.
func (s *stream) fail(ctx context.Context, r bot.Reply) (string, error) {
	s.stop()
	notice := r.Text
	md := replyMetadata(s.turn.Key, 1, true)
	switch {
	case s.ts == "":
		return s.app.postOnce(ctx, s.turn, r.Attempt, []outMsg{{text: escape(notice)}})
	case s.native:
		return s.ts, s.stopStream(ctx, slack.MsgOptionMarkdownText("\n\n"+escape(notice)), slack.MsgOptionMetadata(md))
	}
	return s.ts, s.app.update(ctx, s.th.Channel, s.ts, outMsg{text: escape(notice)}, md)
}

// complete makes the streamed message the answer's first part and posts
// the other parts.
func (s *stream) complete(ctx context.Context, msgs []outMsg) error {
	a := s.app
	if err := a.update(ctx, s.th.Channel, s.ts, msgs[0], replyMetadata(s.turn.Key, 1, true)); err != nil {
		return err
	}
	for i, m := range msgs[1:] {
		if _, err := a.post(ctx, s.th.Channel, s.th.Thread, m, replyMetadata(s.turn.Key, i+2, true)); err != nil {
			return err
		}
	}
	return nil
}

func (s *stream) stopStream(ctx context.Context, opts ...slack.MsgOption) error {
	return call(ctx, methodStopStream, func(ctx context.Context) error {
		_, _, err := s.app.api.StopStreamContext(ctx, s.th.Channel, s.ts, opts...)
		return err
	})
}

// abandonUnlessTaken abandons the stream unless Reply has just taken it
// over.
func (s *stream) abandonUnlessTaken() {
	select {
	case <-s.done:
	default:
		s.abandon()
	}
}

// abandon deletes the partial message of a turn whose job ended without a
// reply (a failure River retries, or a replica shutting down): the retry
// answers afresh.
func (s *stream) abandon() {
	s.app.streams.drop(s.turn.Key, s)
	if s.ts == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.native {
		_ = s.stopStream(ctx)
	}
	err := call(ctx, methodDelete, func(ctx context.Context) error {
		_, _, err := s.app.api.DeleteMessageContext(ctx, s.th.Channel, s.ts)
		return err
	})
	if err != nil {
		s.app.log.WarnContext(ctx, "delete an abandoned streamed answer", "turn_key", s.turn.Key, "error", err)
	}
}
