// Package modelfake is an OpenAI-compatible model on 127.0.0.1 for tests,
// the load tool and the fault tests: it speaks POST …/chat/completions as
// OpenAI does (a JSON answer, or server-sent events "data: {…}" ending in
// "data: [DONE]" with the usage in a last chunk whose choices are empty),
// so the real adapters/openai client and go-openai are driven against it.
// It answers at once, after a fixed latency, or as a slow stream, fails or
// hangs on request, and counts the calls. It does not import the adapter
// it stands in for: it is the other side of the wire.
package modelfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Usage is the token usage an answer reports.
type Usage struct {
	Prompt, Cached, Completion int
}

// Reply is how the fake answers one call.
type Reply struct {
	// Status, when neither 0 nor 200, answers with an OpenAI error body.
	Status int
	// Header holds extra response headers (Retry-After, Retry-After-Ms).
	Header map[string]string
	// Model names the model in the answer; "" echoes the request's.
	Model string
	// Chunks are the answer as stream deltas; JSON answers join them.
	Chunks []string
	// Usage is reported in JSON answers (zeros when nil) and, when the
	// request asks for it with stream_options.include_usage, in a last
	// stream chunk (none when nil).
	Usage *Usage
	// Finish is the finish_reason; "" is "stop".
	Finish string
	// Latency is waited before answering: a model that thinks.
	Latency time.Duration
	// Hang never answers: the call ends when the caller gives up or the
	// fake closes.
	Hang bool
	// ChunkDelay is waited before each stream delta: a slow, long answer.
	ChunkDelay time.Duration
	// CutAfterFirst ends a stream after its first delta, without [DONE]:
	// a connection dropped mid-answer.
	CutAfterFirst bool
}

// Words splits text into stream deltas the way a model sends them: word
// by word, each with its trailing space.
func Words(text string) []string { return strings.SplitAfter(text, " ") }

// DefaultText is what the fake answers when it is given no replies.
const DefaultText = "Check the runbook first."

// defaultReply answers at once with DefaultText and a small usage.
func defaultReply() Reply {
	return Reply{Chunks: Words(DefaultText), Usage: &Usage{Prompt: 100, Completion: 20}}
}

// Config sets up a fake.
type Config struct {
	// Replies answer the calls in order; the last one answers every call
	// after it. None: every call gets DefaultText at once, with 100 prompt
	// and 20 completion tokens.
	Replies []Reply
	// Record keeps every request for Requests (tests). A load run leaves
	// it off, so the fake's memory does not grow with the calls.
	Record bool
}

// Request is one call as the fake received it.
type Request struct {
	Path   string
	Query  string
	Header http.Header
	Body   map[string]any
	Stream bool
	// Messages are the request's messages (role, content, …).
	Messages []map[string]any
}

// Server is the fake model. Its methods are safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	record  bool
	closing chan struct{}
	once    sync.Once

	mu       sync.Mutex
	replies  []Reply
	scripted map[string]Reply // by the last message's content
	calls    int
	byQ      map[string]int
	inFlight int
	requests []Request
}

// Start starts a fake on 127.0.0.1.
func Start(cfg Config) *Server {
	s := &Server{record: cfg.Record, closing: make(chan struct{}), replies: append([]Reply(nil), cfg.Replies...),
		scripted: map[string]Reply{}, byQ: map[string]int{}}
	if len(s.replies) == 0 {
		s.replies = []Reply{defaultReply()}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// ForTest starts a fake answering with replies (as Config.Replies) that
// records every request, closed when the test ends.
func ForTest(tb testing.TB, replies ...Reply) *Server {
	tb.Helper()
	s := Start(Config{Replies: replies, Record: true})
	tb.Cleanup(s.Close)
	return s
}

// Close ends hanging and slow answers, then stops the server.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.srv.Close()
}

// URL is the server's root (an Azure OpenAI endpoint).
func (s *Server) URL() string { return s.srv.URL }

// BaseURL is the OpenAI base URL (OPENAI_BASE_URL): the root and /v1.
func (s *Server) BaseURL() string { return s.srv.URL + "/v1" }

// Script makes every call whose last message is question get r, before
// the configured replies.
func (s *Server) Script(question string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripted[question] = r
}

// SetReplies replaces the configured replies (as Config.Replies) for
// the calls from now on; calls being answered keep theirs. A load run
// changes how the model behaves between scenarios this way.
func (s *Server) SetReplies(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = append([]Reply(nil), replies...)
	if len(s.replies) == 0 {
		s.replies = []Reply{defaultReply()}
	}
}

// Reset forgets the scripted answers, the counts and the requests; the
// configured replies stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.scripted)
	clear(s.byQ)
	s.calls, s.requests = 0, nil
}

// Calls counts the calls so far.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// CallsFor counts the calls whose last message was question.
func (s *Server) CallsFor(question string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byQ[question]
}

// InFlight counts the calls being answered now (waiting out a latency,
// hanging or streaming).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// Requests returns the requests so far (with Config.Record only).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// request is the part of a chat completion request the fake reads.
type request struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages []struct {
		Content any `json:"content"`
	} `json:"messages"`
}

// next picks the reply for a call and counts it.
func (s *Server) next(question string, rec *Request) Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.byQ[question]++
	s.inFlight++
	if rec != nil {
		s.requests = append(s.requests, *rec)
	}
	if r, ok := s.scripted[question]; ok {
		return r
	}
	r := s.replies[0]
	if len(s.replies) > 1 {
		s.replies = s.replies[1:]
	}
	return r
}

func (s *Server) done() {
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
}

// wait waits d, or until the call or the fake ends; it reports whether
// the whole time passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	raw, err := io.ReadAll(r.Body)
	var req request
	if err == nil {
		err = json.Unmarshal(raw, &req)
	}
	if err != nil || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "bad request")
		return
	}
	question, _ := req.Messages[len(req.Messages)-1].Content.(string)
	var rec *Request
	if s.record {
		rec = &Request{Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Stream: req.Stream}
		_ = json.Unmarshal(raw, &rec.Body)
		msgs, _ := rec.Body["messages"].([]any)
		for _, m := range msgs {
			if m, ok := m.(map[string]any); ok {
				rec.Messages = append(rec.Messages, m)
			}
		}
	}
	rep := s.next(question, rec)
	defer s.done()

	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	if rep.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	if !s.wait(r, rep.Latency) {
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeError(w, rep.Status, fmt.Sprintf("fake failure %d", rep.Status))
		return
	}
	model := rep.Model
	if model == "" {
		model = req.Model
	}
	finish := rep.Finish
	if finish == "" {
		finish = "stop"
	}
	if !req.Stream {
		writeJSON(w, rep, model, finish)
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	s.writeStream(w, r, rep, model, finish, includeUsage)
}

// writeError answers as OpenAI does when a call fails.
func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(message)
	fmt.Fprintf(w, `{"error":{"message":%s,"type":"server_error","param":null,"code":null}}`, b)
}

func usageJSON(u Usage) map[string]any {
	return map[string]any{"prompt_tokens": u.Prompt, "completion_tokens": u.Completion, "total_tokens": u.Prompt + u.Completion,
		"prompt_tokens_details": map[string]any{"cached_tokens": u.Cached}}
}

func writeJSON(w http.ResponseWriter, rep Reply, model, finish string) {
	u := Usage{}
	if rep.Usage != nil {
		u = *rep.Usage
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": 1764028800, "model": model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": finish,
			"message": map[string]any{"role": "assistant", "content": strings.Join(rep.Chunks, "")}}},
		"usage": usageJSON(u), "system_fingerprint": "fp_fake",
	})
}

func (s *Server) writeStream(w http.ResponseWriter, r *http.Request, rep Reply, model, finish string, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	send := func(choices []any, usage any) {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1764028800,
			"model": model, "system_fingerprint": "fp_fake", "choices": choices, "usage": usage})
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	send([]any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": ""}, "finish_reason": nil}}, nil)
	for i, c := range rep.Chunks {
		if !s.wait(r, rep.ChunkDelay) {
			return
		}
		send([]any{map[string]any{"index": 0, "delta": map[string]any{"content": c}, "finish_reason": nil}}, nil)
		if rep.CutAfterFirst && i == 0 {
			return
		}
	}
	send([]any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": finish}}, nil)
	if rep.Usage != nil && includeUsage {
		send([]any{}, usageJSON(*rep.Usage))
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}
