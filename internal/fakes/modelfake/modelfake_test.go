package modelfake_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/apacops/opsbot/internal/fakes/modelfake"
)

func client(f *modelfake.Server) *openai.Client {
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = f.BaseURL()
	return openai.NewClientWithConfig(cfg)
}

func ask(q string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: "You are opsbot."}, {Role: openai.ChatMessageRoleUser, Content: q}}}
}

// stream reads a streamed answer through go-openai: the text and the
// usage of its last chunk.
func stream(t *testing.T, c *openai.Client, q string) (string, *openai.Usage) {
	t.Helper()
	req := ask(q)
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	s, err := c.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	defer s.Close()
	var text strings.Builder
	var usage *openai.Usage
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return text.String(), usage
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		for _, ch := range r.Choices {
			text.WriteString(ch.Delta.Content)
		}
		if r.Usage != nil {
			usage = r.Usage
		}
	}
}

// With no replies configured every call gets DefaultText at once, with
// 100 prompt and 20 completion tokens, as JSON or as a stream; calls are
// counted whether or not they are recorded.
func TestDefaultAnswer(t *testing.T) {
	f := modelfake.Start(modelfake.Config{})
	t.Cleanup(f.Close)
	c := client(f)
	resp, err := c.CreateChatCompletion(context.Background(), ask("is db-2 up?"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != modelfake.DefaultText || resp.Choices[0].FinishReason != openai.FinishReasonStop ||
		resp.Usage.PromptTokens != 100 || resp.Usage.CompletionTokens != 20 || resp.Usage.TotalTokens != 120 || resp.Model != "gpt-4o-mini" {
		t.Errorf("answer %+v, want %q with 100 + 20 tokens from gpt-4o-mini", resp, modelfake.DefaultText)
	}
	text, usage := stream(t, c, "is db-2 up?")
	if text != modelfake.DefaultText || usage == nil || usage.PromptTokens != 100 || usage.CompletionTokens != 20 {
		t.Errorf("streamed %q with usage %+v, want %q with 100 + 20 tokens", text, usage, modelfake.DefaultText)
	}
	if f.Calls() != 2 || f.CallsFor("is db-2 up?") != 2 || f.CallsFor("You are opsbot.") != 0 || len(f.Requests()) != 0 {
		t.Errorf("calls %d, for the question %d, requests kept %d; want 2, 2 and none (not recording)",
			f.Calls(), f.CallsFor("is db-2 up?"), len(f.Requests()))
	}
}

// Replies go in order, the last repeating; a scripted question comes
// first; Reset forgets the scripts and the counts.
func TestRepliesInOrderAndScripted(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Chunks: []string{"one"}}, modelfake.Reply{Chunks: []string{"two"}})
	c := client(f)
	f.Script("special?", modelfake.Reply{Chunks: modelfake.Words("a scripted answer"), Model: "gpt-4o"})
	var got []string
	for _, q := range []string{"a", "special?", "b", "c"} {
		resp, err := c.CreateChatCompletion(context.Background(), ask(q))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.Model+":"+resp.Choices[0].Message.Content)
	}
	want := "gpt-4o-mini:one gpt-4o:a scripted answer gpt-4o-mini:two gpt-4o-mini:two"
	if strings.Join(got, " ") != want {
		t.Errorf("answers %q, want %q", got, want)
	}
	if reqs := f.Requests(); len(reqs) != 4 || reqs[1].Path != "/v1/chat/completions" || len(reqs[1].Messages) != 2 ||
		reqs[1].Messages[1]["content"] != "special?" || reqs[1].Header.Get("Authorization") != "Bearer sk-test" {
		t.Errorf("requests %+v, want 4 recorded, the second with its path, messages and key", reqs)
	}
	f.Reset()
	resp, err := c.CreateChatCompletion(context.Background(), ask("special?"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "two" || f.Calls() != 1 || len(f.Requests()) != 1 {
		t.Errorf("after Reset: %q, %d calls; want the configured reply and the counts from 0", got, f.Calls())
	}
}

// A model with latency holds the call (counted in flight) at least that
// long, then answers.
func TestLatency(t *testing.T) {
	const latency = 300 * time.Millisecond
	f := modelfake.ForTest(t, modelfake.Reply{Latency: latency, Chunks: []string{"late"}})
	c := client(f)
	type result struct {
		text string
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, err := c.CreateChatCompletion(context.Background(), ask("slow?"))
		r := result{took: time.Since(start), err: err}
		if err == nil {
			r.text = resp.Choices[0].Message.Content
		}
		done <- r
	}()
	waitInFlight(t, f, 1)
	r := <-done
	if r.err != nil || r.text != "late" || r.took < latency {
		t.Errorf("answer %q after %v (%v), want late after at least %v", r.text, r.took, r.err, latency)
	}
	if n := f.InFlight(); n != 0 {
		t.Errorf("%d calls in flight after the answer, want 0", n)
	}
}

// A hanging model's calls end when the fake closes, so Close does not
// wait for its callers to give up.
func TestCloseEndsHangingCalls(t *testing.T) {
	f := modelfake.Start(modelfake.Config{Replies: []modelfake.Reply{{Hang: true}}})
	c := client(f)
	done := make(chan error, 1)
	go func() {
		_, err := c.CreateChatCompletion(context.Background(), ask("anyone?"))
		done <- err
	}()
	waitInFlight(t, f, 1)
	go f.Close() // were the call not ended, Close would wait for it
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("a hanging call answered, want an error once the fake closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging call did not end when the fake closed")
	}
}

// A failure is an OpenAI error body with its status.
func TestFailure(t *testing.T) {
	f := modelfake.ForTest(t, modelfake.Reply{Status: 429, Header: map[string]string{"Retry-After": "2"}})
	_, err := client(f).CreateChatCompletion(context.Background(), ask("x"))
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 429 || apiErr.Message != "fake failure 429" {
		t.Errorf("error %v, want an APIError with status 429", err)
	}
}

func waitInFlight(t *testing.T, f *modelfake.Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.InFlight() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in flight, want %d", f.InFlight(), n)
		}
	}
}

// SetReplies changes the answers of the calls that follow.
func TestSetReplies(t *testing.T) {
	f := modelfake.ForTest(t)
	c := client(f)
	f.SetReplies(modelfake.Reply{Chunks: []string{"changed"}})
	for range 2 {
		resp, err := c.CreateChatCompletion(context.Background(), ask("q"))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "changed" {
			t.Errorf("answer %q, want the new reply", got)
		}
	}
	f.SetReplies()
	resp, err := c.CreateChatCompletion(context.Background(), ask("q"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != modelfake.DefaultText {
		t.Errorf("with no replies: answer %q, want the default", got)
	}
}
