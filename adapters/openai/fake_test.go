package openai

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

// step is one scripted answer of the fake OpenAI server.
type step struct {
	status     int               // non-200: an OpenAI error body with this status
	headers    map[string]string // extra response headers (Retry-After)
	model      string
	chunks     []string // the answer, as stream deltas; joined for JSON answers
	usage      *[3]int  // prompt, cached, completion; nil: no usage (streams only)
	finish     string
	hang       bool          // never answer; return when the client gives up
	chunkDelay time.Duration // wait before each stream chunk (a slow, long answer)
	stopStream bool          // cut a stream after the first chunk, without [DONE]
}

func withUsage(prompt, cached, completion int) *[3]int { return &[3]int{prompt, cached, completion} }

// fakeOpenAI speaks /v1/chat/completions like OpenAI: JSON bodies, and
// server-sent events "data: {...}" ending in "data: [DONE]" for streams,
// with the usage in a last chunk whose choices are empty.
type fakeOpenAI struct {
	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	steps    []step
	requests []recorded
}

type recorded struct {
	Path    string
	Query   string
	Header  http.Header
	Body    map[string]any
	Stream  bool
	Content []map[string]any
}

func newFakeOpenAI(t testing.TB, steps ...step) *fakeOpenAI {
	f := &fakeOpenAI{t: t, steps: steps}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenAI) URL() string { return f.srv.URL + "/v1" }

func (f *fakeOpenAI) Requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	rec := recorded{Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	rec.Stream, _ = body["stream"].(bool)
	if msgs, ok := body["messages"].([]any); ok {
		for _, m := range msgs {
			rec.Content = append(rec.Content, m.(map[string]any))
		}
	}
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	if len(f.steps) == 0 {
		f.mu.Unlock()
		f.t.Errorf("fake OpenAI: unexpected request %d", len(f.requests))
		http.Error(w, "no more steps", http.StatusTeapot)
		return
	}
	s := f.steps[0]
	if len(f.steps) > 1 {
		f.steps = f.steps[1:]
	}
	f.mu.Unlock()

	for k, v := range s.headers {
		w.Header().Set(k, v)
	}
	switch {
	case s.hang:
		<-r.Context().Done()
		return
	case s.status != 0 && s.status != http.StatusOK:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		fmt.Fprintf(w, `{"error":{"message":"fake failure %d","type":"server_error","param":null,"code":null}}`, s.status)
		return
	}
	model := s.model
	if model == "" {
		model, _ = body["model"].(string)
	}
	finish := s.finish
	if finish == "" {
		finish = "stop"
	}
	if !rec.Stream {
		u := s.usage
		if u == nil {
			u = withUsage(0, 0, 0)
		}
		resp := map[string]any{
			"id": "chatcmpl-fake", "object": "chat.completion", "created": 1764028800, "model": model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": finish,
				"message": map[string]any{"role": "assistant", "content": strings.Join(s.chunks, "")}}},
			"usage": map[string]any{"prompt_tokens": u[0], "completion_tokens": u[2], "total_tokens": u[0] + u[2],
				"prompt_tokens_details": map[string]any{"cached_tokens": u[1], "audio_tokens": 0}},
			"system_fingerprint": "fp_fake",
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		fl.Flush()
	}
	chunk := func(choices []any, usage any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1764028800,
			"model": model, "system_fingerprint": "fp_fake", "choices": choices, "usage": usage}
	}
	send(chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": ""}, "finish_reason": nil}}, nil))
	for i, c := range s.chunks {
		select {
		case <-time.After(s.chunkDelay):
		case <-r.Context().Done():
			return
		}
		send(chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"content": c}, "finish_reason": nil}}, nil))
		if s.stopStream && i == 0 {
			return // the connection ends mid-answer
		}
	}
	send(chunk([]any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": finish}}, nil))
	includeUsage := false
	if so, ok := body["stream_options"].(map[string]any); ok {
		includeUsage, _ = so["include_usage"].(bool)
	}
	if s.usage != nil && includeUsage {
		u := s.usage
		send(chunk([]any{}, map[string]any{"prompt_tokens": u[0], "completion_tokens": u[2], "total_tokens": u[0] + u[2],
			"prompt_tokens_details": map[string]any{"cached_tokens": u[1]}}))
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}
