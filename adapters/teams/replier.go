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
	// maxIndicating bounds how long a turn shows it is thinking, however
	// long its job runs.
	maxIndicating = 3 * time.Minute
	// closeTimeout bounds the message that closes a stream whose job
	// ended without a reply.
	closeTimeout = 10 * time.Second
	// informative is the status shown in a 1:1 chat before the answer
	// starts.
	informative = "Searching runbooks…"
	// streamClosed ends a stream whose job ended without its reply (an
	// attempt that will be retried, a reply another run posts).
	streamClosed = "The answer follows in a separate message."
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

// stream is a turn's open stream (1:1 chats) or typing indicator
// (elsewhere). Its goroutine (run) sends the updates until the job's
// context ends or Reply takes the stream over. A stream whose job ends
// without a reply (a failure River retries, a reply another run posts, a
// stopping worker) is closed by run itself, since Teams shows a stream
// until its final message and runs one stream per chat at a time.
type stream struct {
	key    string // the turn key
	id     string // the streamId, the id of the informative update; "" for typing
	cancel context.CancelFunc
	exited chan struct{} // closed when run has returned
	// closing is true once run closes the stream itself; Reply then
	// leaves it alone. Guarded by Replier.mu.
	closing bool

	mu   sync.Mutex
	text string // the answer so far
	seq  int    // the last streamSequence sent
}

func (s *stream) add(piece string) {
	s.mu.Lock()
	s.text += piece
	s.mu.Unlock()
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

// Stream starts showing the turn's answer for as long as the job's
// context (ctx) lasts. In a 1:1 chat it sends the informative update and
// returns the function that takes the answer's pieces; every streamEvery
// the text so far goes out as a streaming update. Teams streams only in
// 1:1 chats: elsewhere the typing indicator runs until the reply, and
// Stream returns nil, so the answer comes in one message.
func (r *Replier) Stream(ctx context.Context, t bot.Turn) (func(string), error) {
	m := t.Meta
	// An earlier attempt's stream is closed first: one stream per chat.
	r.retire(t.Key)
	sctx, cancel := context.WithTimeout(ctx, maxIndicating)
	st := &stream{key: t.Key, cancel: cancel, exited: make(chan struct{})}
	if m[metaConvType] != convPersonal {
		r.put(st)
		go r.run(sctx, st, m, r.typing)
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
	r.put(st)
	go r.run(sctx, st, m, r.pump)
	return st.add, nil
}

// retire ends the turn's stream, if it has one, and waits until its
// goroutine has closed it.
func (r *Replier) retire(key string) {
	for {
		r.mu.Lock()
		old := r.streams[key]
		r.mu.Unlock()
		if old == nil {
			return
		}
		old.cancel()
		<-old.exited // run removed it
	}
}

// put records a turn's stream, retiring one a concurrent run of the turn
// opened meanwhile.
func (r *Replier) put(st *stream) {
	for {
		r.retire(st.key)
		r.mu.Lock()
		if r.streams[st.key] == nil {
			r.streams[st.key] = st
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// take takes the turn's stream over for Reply: it stops its updates and
// returns it, or nil when there is none or its goroutine is closing it
// (its job's context ended, or it showed for maxIndicating).
func (r *Replier) take(key string) *stream {
	r.mu.Lock()
	st := r.streams[key]
	closing := st != nil && st.closing
	if st != nil && !closing {
		delete(r.streams, key)
	}
	r.mu.Unlock()
	if st == nil {
		return nil
	}
	st.cancel()
	<-st.exited
	if closing {
		return nil
	}
	return st
}

// run sends a stream's updates until ctx ends. Unless Reply took the
// stream over meanwhile, it then closes the stream and forgets it.
func (r *Replier) run(ctx context.Context, st *stream, m map[string]string, updates func(context.Context, *stream, map[string]string)) {
	defer close(st.exited)
	updates(ctx, st, m)
	r.mu.Lock()
	mine := r.streams[st.key] == st
	st.closing = mine
	r.mu.Unlock()
	if !mine {
		return // Reply has it
	}
	if st.id != "" {
		r.closeStream(context.WithoutCancel(ctx), st, m)
	}
	r.mu.Lock()
	delete(r.streams, st.key)
	r.mu.Unlock()
}

// closeStream ends a stream whose job ended without a reply with a final
// message saying the answer comes separately: the retry's stream, or the
// reply another run posts.
func (r *Replier) closeStream(ctx context.Context, st *stream, m map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	_, err := r.conn.Send(ctx, http.MethodPost, m[metaServiceURL], activityPath(m[metaConversation], m[metaReplyTo]),
		outActivity{Type: "message", Text: streamClosed, TextFormat: "plain", Entities: []any{streamInfo(st.id, "final", 0)}})
	if err != nil {
		r.log.WarnContext(ctx, "close a stream its job left without a reply", "turn_key", st.key, "error", err)
	}
}

// typing sends the typing indicator until ctx ends.
func (r *Replier) typing(ctx context.Context, _ *stream, m map[string]string) {
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
// ctx ends. After a failed update it sends no more; the reply still
// finishes the stream.
func (r *Replier) pump(ctx context.Context, st *stream, m map[string]string) {
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
			<-ctx.Done()
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
