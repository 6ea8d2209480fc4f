package teams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/apacops/opsbot/bot"
)

// Keys of bot.Turn.Meta the endpoint sets and the replier reads.
const (
	metaServiceURL   = "service_url"
	metaConversation = "conversation_id" // the reply chain or chat replies go to
	metaReplyTo      = "reply_to_id"     // the activity answered
	metaConvType     = "conversation_type"
)

// Streaming pace and limits.
const (
	// streamEvery is the least time between two streamed updates: Teams
	// throttles a stream that updates faster than about once a second.
	streamEvery = 1500 * time.Millisecond
	// typingEvery repeats the typing indicator, which Teams shows for
	// about three seconds.
	typingEvery = 3 * time.Second
	// maxIndicating bounds how long a turn shows it is thinking, should
	// its Reply never come.
	maxIndicating = 3 * time.Minute
	// informative is the status shown in a 1:1 chat before the answer
	// starts.
	informative = "Searching runbooks…"
)

// Replier posts turn replies into Teams: in the reply chain or chat of
// the turn, as a stream in 1:1 chats and with a typing indicator
// elsewhere. It is safe for concurrent use.
type Replier struct {
	conn        *Connector
	log         *slog.Logger
	streamEvery time.Duration
	typingEvery time.Duration

	mu      sync.Mutex
	streams map[string]*stream // open streams and typing indicators, by turn key
}

var _ bot.StreamingReplier = (*Replier)(nil)

// NewReplier returns a replier posting through conn.
func NewReplier(conn *Connector, log *slog.Logger) *Replier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Replier{conn: conn, log: log, streamEvery: streamEvery, typingEvery: typingEvery, streams: map[string]*stream{}}
}

// stream is a turn's open stream (1:1 chats) or typing indicator (elsewhere).
type stream struct {
	id     string // the streamId, the id of the informative update; "" for typing
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	text string // the answer so far
	seq  int    // the last streamSequence sent
}

func (s *stream) add(piece string) {
	s.mu.Lock()
	s.text += piece
	s.mu.Unlock()
}

// stop ends the stream's updates and waits for the last one to finish.
func (s *stream) stop() {
	s.cancel()
	<-s.done
}

// streamInfo is the entity that makes a typing or message activity part
// of a stream.
func streamInfo(id, kind string, seq int) map[string]any {
	e := map[string]any{"type": "streaminfo", "streamType": kind}
	if id != "" {
		e["streamId"] = id
	}
	if seq > 0 {
		e["streamSequence"] = seq
	}
	return e
}

// Stream starts showing the turn's answer. In a 1:1 chat it sends the
// informative update and returns the function that takes the answer's
// pieces; every streamEvery the text so far goes out as a streaming
// update. Teams streams only in 1:1 chats: elsewhere the typing indicator
// runs until the reply, and Stream returns nil, so the answer comes in one
// message.
func (r *Replier) Stream(ctx context.Context, t bot.Turn) (func(string), error) {
	m := t.Meta
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxIndicating)
	st := &stream{cancel: cancel, done: make(chan struct{})}
	if m[metaConvType] != convPersonal {
		go r.typing(sctx, st, m)
		r.open(t.Key, st)
		return nil, nil
	}
	id, err := r.conn.Send(ctx, http.MethodPost, m[metaServiceURL], activityPath(m[metaConversation], m[metaReplyTo]),
		outActivity{Type: "typing", Text: informative, Entities: []any{streamInfo("", "informative", 1)}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start stream: %w", err)
	}
	if id == "" {
		cancel()
		return nil, errors.New("start stream: the connector gave no stream id")
	}
	st.id, st.seq = id, 1
	go r.pump(sctx, st, m)
	r.open(t.Key, st)
	return st.add, nil
}

// open records a turn's stream, stopping an earlier attempt's.
func (r *Replier) open(key string, st *stream) {
	r.mu.Lock()
	old := r.streams[key]
	r.streams[key] = st
	r.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// take removes and stops the turn's stream, if it has one.
func (r *Replier) take(key string) *stream {
	r.mu.Lock()
	st := r.streams[key]
	delete(r.streams, key)
	r.mu.Unlock()
	if st != nil {
		st.stop()
	}
	return st
}

// typing sends the typing indicator until ctx ends.
func (r *Replier) typing(ctx context.Context, st *stream, m map[string]string) {
	defer close(st.done)
	tick := time.NewTicker(r.typingEvery)
	defer tick.Stop()
	for {
		if _, err := r.conn.Send(ctx, http.MethodPost, m[metaServiceURL], activityPath(m[metaConversation], ""),
			outActivity{Type: "typing"}); err != nil && ctx.Err() == nil {
			r.log.DebugContext(ctx, "typing indicator", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pump sends the answer so far every streamEvery while it grows, until
// ctx ends. A failed update ends the updates; the reply still finishes
// the stream.
func (r *Replier) pump(ctx context.Context, st *stream, m map[string]string) {
	defer close(st.done)
	tick := time.NewTicker(r.streamEvery)
	defer tick.Stop()
	sent := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st.mu.Lock()
		text := st.text
		st.mu.Unlock()
		if text == sent {
			continue
		}
		st.mu.Lock()
		st.seq++
		seq := st.seq
		st.mu.Unlock()
		_, err := r.conn.Send(ctx, http.MethodPost, m[metaServiceURL], activityPath(m[metaConversation], m[metaReplyTo]),
			outActivity{Type: "typing", Text: teamsMarkdown(text), Entities: []any{streamInfo(st.id, "streaming", seq)}})
		if err != nil {
			if ctx.Err() == nil {
				r.log.WarnContext(ctx, "stream update", "error", err)
			}
			return
		}
		sent = text
	}
}

// Reply posts a turn's reply into its reply chain or chat and returns the
// activity id: a stored answer (AI-labelled with citations and feedback
// buttons in chats, with its sources written out in channels), a
// command's result (cards for usage and archive) or a failure notice. A
// turn that streamed finishes its stream with the reply. Teams lets a bot
// read nothing back from a conversation, so unlike Slack's a retried
// attempt (Reply.Attempt > 1) cannot look for its own earlier post: should
// an attempt die between posting and the worker recording the post, the
// answer is posted again.
func (r *Replier) Reply(ctx context.Context, t bot.Turn, rep bot.Reply) (string, error) {
	m := t.Meta
	if m[metaServiceURL] == "" || m[metaConversation] == "" {
		return "", errors.New("teams reply: the turn has no service url or conversation")
	}
	st := r.take(t.Key)
	var act outActivity
	switch {
	case rep.Command != nil:
		act = commandActivity(*rep.Command, m[metaConvType] == convPersonal)
	case !rep.Stored():
		act = noticeActivity(rep.Text)
	default:
		act = answerActivity(rep, m[metaConvType] != convChannel)
	}
	path := activityPath(m[metaConversation], m[metaReplyTo])
	if st != nil && st.id != "" {
		final := act
		final.Entities = append(append([]any(nil), act.Entities...), streamInfo(st.id, "final", 0))
		id, err := r.conn.Send(ctx, http.MethodPost, m[metaServiceURL], path, final)
		if err == nil {
			return firstNonEmpty(id, st.id), nil
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status/100 != 4 {
			return "", fmt.Errorf("teams reply: finish stream: %w", err)
		}
		// Teams refused the stream (it ended, or streaming is off): the
		// answer goes out as a message of its own.
		r.log.WarnContext(ctx, "stream refused; posting the reply as a message", "turn_key", t.Key, "error", err)
	}
	id, err := r.conn.Send(ctx, http.MethodPost, m[metaServiceURL], path, act)
	if err != nil {
		return "", fmt.Errorf("teams reply: %w", err)
	}
	return id, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
