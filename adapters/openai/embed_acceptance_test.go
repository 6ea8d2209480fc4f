package openai

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/internal/fakes/embedfake"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

// TestAcceptanceHybridRunbooks: turns through the engine, the real
// go-openai client for chat and embeddings, and the runbook index with
// embeddings. The question's embedding is on the asking user's ledger
// beside the chat call, priced from the table; when the embeddings endpoint
// fails, the turn still answers from the runbooks found by words, and the
// user is told nothing about it.
func TestAcceptanceHybridRunbooks(t *testing.T) {
	ctx := context.Background()
	const answer = "Clean up /var/log and the journal [1]."
	chat := modelfake.ForTest(t, modelfake.Reply{Model: "gpt-4o-mini", Chunks: []string{answer}, Usage: &modelfake.Usage{Prompt: 300, Completion: 20}})
	emb := embedfake.New(t)
	var sl sleeps
	llm := mustClient(t, Config{BaseURL: chat.BaseURL(), Model: "gpt-4o-mini"}, &sl)
	embedder := mustEmbedder(t, Config{BaseURL: emb.URL(), MaxRetries: -1}, &sl)
	// One price table for both calls: embeddings at $2 per 1M tokens, so a
	// short question costs whole micro-dollars.
	prices := usage.NewPrices("acceptance", map[string]usage.Price{
		"gpt-4o-mini":            {InputPerMTok: 150_000, CachedInputPerMTok: 75_000, OutputPerMTok: 600_000},
		"text-embedding-3-small": {InputPerMTok: 2_000_000, CachedInputPerMTok: 2_000_000},
	})
	var service uuid.UUID
	if err := testPool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ($1) RETURNING id`, "svc-"+uuid.NewString()).Scan(&service); err != nil {
		t.Fatal(err)
	}
	ix := knowledge.New(testPool, time.Now, knowledge.WithLogger(slog.New(slog.DiscardHandler)),
		knowledge.WithEmbeddings(knowledge.Embeddings{Embedder: embedder, Model: embedder.Model(), Prices: prices, ServiceUser: service}))
	if st, err := ix.Sync(ctx, "../../docs/runbooks", nil); err != nil || st.Embedded == 0 {
		t.Fatalf("sync: %+v, %v", st, err)
	}
	f := mustFixture(t, llm, 10*time.Second)
	e := bot.New(bot.Config{DB: testPool, LLM: llm, Model: "gpt-4o-mini", Prices: prices, Retriever: ix})

	const question = "disk full: clean up the journal logs"
	turn := func() bot.Reply {
		t.Helper()
		rep, err := e.Respond(ctx, bot.Turn{UserID: f.user, ConversationID: f.conv, Text: question, Source: "api"}, nil)
		if err != nil {
			t.Fatalf("Respond: %v", err)
		}
		if rep.Text != answer || rep.Notice != "" || rep.LowConfidence {
			t.Errorf("reply %q, notice %q, low confidence %v; want the model's answer and nothing else", rep.Text, rep.Notice, rep.LowConfidence)
		}
		if len(rep.Citations) == 0 || rep.Citations[0].Path != "disk-full.md" {
			t.Errorf("citations = %+v, want disk-full.md first", rep.Citations)
		}
		return rep
	}

	rep := turn()
	// 9 tokens (36 bytes) at $2 per 1M = 18 micro-USD; 300 x 0.15 + 20 x 0.6 = 57.
	want := []ledgerRow{
		{Model: "text-embedding-3-small", Prompt: 9, Cost: 18, PriceVersion: "acceptance"},
		{Model: "gpt-4o-mini", Prompt: 300, Completion: 20, Cost: 57, PriceVersion: "acceptance", MessageID: &rep.AssistantMessage.ID},
	}
	got := ledger(t, f.user)
	if len(got) != 2 || !sameRow(got[0], want[0]) || !sameRow(got[1], want[1]) {
		t.Fatalf("ledger = %+v, want %+v", got, want)
	}
	var source string
	var conv *uuid.UUID
	if err := testPool.QueryRow(ctx, `SELECT source, conversation_id FROM usage_events WHERE user_id = $1 AND model = 'text-embedding-3-small'`,
		f.user).Scan(&source, &conv); err != nil || source != "embedding" || conv == nil || *conv != f.conv {
		t.Errorf("embedding row: source %q, conversation %v (%v); want embedding in the turn's conversation", source, conv, err)
	}

	emb.Fail(http.StatusServiceUnavailable)
	rep = turn()
	got = ledger(t, f.user)
	if len(got) != 3 || !sameRow(got[2], ledgerRow{Model: "gpt-4o-mini", Prompt: 300, Completion: 20, Cost: 57,
		PriceVersion: "acceptance", MessageID: &rep.AssistantMessage.ID}) {
		t.Errorf("ledger after a failed embedding = %+v, want only the chat call added", got)
	}
}

func sameRow(a, b ledgerRow) bool {
	if (a.MessageID == nil) != (b.MessageID == nil) || a.MessageID != nil && *a.MessageID != *b.MessageID {
		return false
	}
	a.MessageID, b.MessageID = nil, nil
	return a == b
}
