package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// The engine with the real runbook index: without a model it quotes the
// matching runbook and cites it; a question no runbook answers is recorded
// as a gap.
func TestRespondWithRunbookIndex(t *testing.T) {
	ctx := context.Background()
	pool := testdb.New(t) // its own index
	dir := t.TempDir()
	doc := "# Redis eviction storm\n\n## Stop the storm\n\nRaise `maxmemory` on the redis primary and restart the cache warmers one by one.\n"
	if err := os.WriteFile(filepath.Join(dir, "redis-eviction.md"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ix := knowledge.New(pool, time.Now, knowledge.WithLogger(slog.New(slog.DiscardHandler)))
	if _, err := ix.Sync(ctx, dir, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	e := New(Config{DB: pool, Retriever: ix})
	var user uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('rb') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Respond(ctx, Turn{UserID: user, Text: "redis eviction storm, how do I stop it?", Source: "console"}, nil)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	if !strings.Contains(rep.Text, "maxmemory") || len(rep.Citations) == 0 || rep.Citations[0].Path != "redis-eviction.md" {
		t.Errorf("answer %q, citations %+v; want a quote of the redis runbook, cited", rep.Text, rep.Citations)
	}
	zebra, err := e.Respond(ctx, Turn{UserID: user, Text: "how do I renew the zebra licence?", Source: "console"}, nil)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	// The stored answers say whether the runbooks covered them (a shift
	// handover marks the threads that still need a person).
	for _, r := range []struct {
		rep  Reply
		want bool
	}{{rep, false}, {zebra, true}} {
		var meta struct{ Unanswered bool }
		if err := json.Unmarshal(r.rep.AssistantMessage.Metadata, &meta); err != nil || meta.Unanswered != r.want {
			t.Errorf("metadata %s: unanswered %v, want %v (%v)", r.rep.AssistantMessage.Metadata, meta.Unanswered, r.want, err)
		}
	}
	var gaps int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_gaps WHERE question LIKE '%zebra%'`).Scan(&gaps); err != nil {
		t.Fatalf("gaps: %v", err)
	}
	if gaps != 1 {
		t.Errorf("gaps recorded = %d, want 1", gaps)
	}
}

// A newcomer's natural question against the shipped sample runbooks, with no
// model: even when the best section scores under the answer bar, it is
// quoted (with a caveat) rather than nothing, and the question is still
// recorded as a gap.
func TestRespondQuotesNearMissWithoutModel(t *testing.T) {
	ctx := context.Background()
	pool := testdb.New(t)
	ix := knowledge.New(pool, time.Now, knowledge.WithLogger(slog.New(slog.DiscardHandler)))
	if _, err := ix.Sync(ctx, "../docs/runbooks", nil); err != nil {
		t.Fatalf("sync sample runbooks: %v", err)
	}
	e := New(Config{DB: pool, Retriever: ix})
	var user uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO users (handle) VALUES ('newcomer') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	// The pasted token is redacted, and its marker must not count as
	// question words in the search.
	const q = "How do I free space on /var? xoxb-1234567890-abcdefghijklmnop"
	hits, err := ix.Search(ctx, withoutMarkers(Redact(q)), 3)
	if err != nil || len(hits) == 0 {
		t.Fatalf("search: %v %v", hits, err)
	}
	rep, err := e.Respond(ctx, Turn{UserID: user, Text: q, Source: "console"}, nil)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	if len(rep.Citations) == 0 || rep.Citations[0].Path != "disk-full.md" {
		t.Fatalf("citations %+v, want disk-full.md first; answer %q", rep.Citations, rep.Text)
	}
	wantCaveat := !ix.Answered(hits)
	if got := strings.Contains(rep.Text, "no runbook clearly answers this"); got != wantCaveat {
		t.Errorf("caveat shown = %v, want %v (top score %.3f, bar %.3f)", got, wantCaveat, hits[0].Score, ix.MinScore())
	}
	var gaps int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_gaps`).Scan(&gaps); err != nil {
		t.Fatal(err)
	}
	if want := map[bool]int{true: 1, false: 0}[wantCaveat]; gaps != want {
		t.Errorf("gaps = %d, want %d", gaps, want)
	}
}

// weakRetriever's sections never reach its answer bar: they are only the
// closest ones.
type weakRetriever struct{ fakeRetriever }

func (w *weakRetriever) Answered([]knowledge.Result) bool { return false }

// When no section reaches the answer bar, the closest sections are still
// cited, marked as such (in the reply, its stored metadata and, with a
// model, a notice and the prompt), and the question goes to the gap
// report. The search is made for the asking user in their conversation.
func TestRespondCitesClosestSectionsWhenUnsure(t *testing.T) {
	hits := []knowledge.Result{
		{Document: "Disk full on a host", Section: "Clean up logs", Path: "disk-full.md", Score: 0.15, LowConfidence: true,
			Snippet: "journalctl --vacuum-size", Content: "sudo journalctl --vacuum-size=500M"},
		{Document: "Kafka consumer lag", Section: "Broker health", Path: "kafka.md", Score: 0.01, LowConfidence: true,
			Snippet: "broker disk alert", Content: "check the broker disk alert"},
	}
	for _, withModel := range []bool{false, true} {
		t.Run(map[bool]string{false: "no model", true: "model"}[withModel], func(t *testing.T) {
			ctx := context.Background()
			r := &weakRetriever{fakeRetriever{hits: hits}}
			cfg := Config{DB: testPool, Retriever: r}
			llm := &fakeLLM{text: "The closest runbook sections suggest vacuuming the journal [1].", model: "gpt-4o-mini",
				usage: &ProviderUsage{PromptTokens: 10, CompletionTokens: 5}}
			if withModel {
				cfg.LLM = llm
			}
			e := New(cfg)
			user := mustUser(t)
			conv := mustConversation(t, user)
			turn := Turn{UserID: user, ConversationID: conv, Text: "journald eating the root fs", Source: "api", Key: "api:" + uuid.NewString()}
			rep, err := e.Respond(ctx, turn, nil)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if len(rep.Citations) != 2 || rep.Citations[1].Path != "kafka.md" {
				t.Errorf("citations = %+v, want both closest sections, the weakest too", rep.Citations)
			}
			if !rep.LowConfidence {
				t.Error("LowConfidence = false, want true")
			}
			var meta messageMeta
			if err := json.Unmarshal(rep.AssistantMessage.Metadata, &meta); err != nil || !meta.LowConfidence {
				t.Errorf("stored metadata %s (%v), want low_confidence true", rep.AssistantMessage.Metadata, err)
			}
			if withModel {
				if rep.Notice != ClosestSectionsNotice {
					t.Errorf("notice = %q, want %q", rep.Notice, ClosestSectionsNotice)
				}
				if sys := llm.calls()[0].Messages[1].Content; !strings.Contains(sys, "closest runbook sections") {
					t.Errorf("runbook context %q does not tell the model the sections are only the closest", sys)
				}
			} else if !strings.Contains(rep.Text, "these are the closest sections") {
				t.Errorf("answer %q does not say the sections are the closest", rep.Text)
			}
			if len(r.gaps) != 1 {
				t.Errorf("gaps = %v, want the question recorded", r.gaps)
			}
			if want := (knowledge.Asker{UserID: user, ConversationID: conv}); len(r.askers) != 1 || r.askers[0] != want {
				t.Errorf("searched for %+v, want %+v", r.askers, want)
			}
			again, err := e.Respond(ctx, turn, nil)
			if err != nil || !again.Replayed || !again.LowConfidence {
				t.Errorf("replay: replayed %v, low confidence %v, err %v; want the stored low-confidence reply", again.Replayed, again.LowConfidence, err)
			}
		})
	}
}
