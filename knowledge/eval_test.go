package knowledge_test

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/adapters/openai"
	"github.com/apacops/opsbot/internal/fakes/embedfake"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// evalQuestion is one line of testdata/eval/questions.tsv.
type evalQuestion struct {
	path     string // the runbook that should be cited
	kind     string // words, host, number, typo, fragment
	question string
}

// loadEval reads the evaluation set.
func loadEval(tb testing.TB) []evalQuestion {
	tb.Helper()
	f, err := os.Open("testdata/eval/questions.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []evalQuestion
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
			tb.Fatalf("questions.tsv line %d: want runbook<TAB>kind<TAB>question, got %q", n, line)
		}
		if _, err := os.Stat("testdata/runbooks/" + parts[0]); err != nil {
			tb.Fatalf("questions.tsv line %d: runbook %s: %v", n, parts[0], err)
		}
		out = append(out, evalQuestion{path: parts[0], kind: parts[1], question: parts[2]})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// evalDepth is how many results are read for the reciprocal rank: a
// runbook first cited below it counts as not found.
const evalDepth = 10

// evalScores are the figures of one run over the evaluation set.
type evalScores struct {
	recall1, recall3, mrr float64
	// answered is the share of questions whose top result is their
	// runbook and scores above the answer bar: answered without a hedge.
	answered float64
	misses   []string // questions whose runbook was not in the top 3
}

// searchFunc is a search as the evaluation runs it.
type searchFunc func(ctx context.Context, query string, limit int) ([]knowledge.Result, error)

// evaluate runs every question through search. A question's rank is the
// position of the first section of its runbook among the results.
func evaluate(tb testing.TB, ix *knowledge.Index, qs []evalQuestion, search searchFunc) evalScores {
	tb.Helper()
	var s evalScores
	for _, q := range qs {
		res, err := search(context.Background(), q.question, evalDepth)
		if err != nil {
			tb.Fatalf("Search(%q): %v", q.question, err)
		}
		rank := 0
		for i, r := range res {
			if r.Path == q.path {
				rank = i + 1
				break
			}
		}
		if rank == 1 {
			s.recall1++
			if ix.Answered(res[:1]) {
				s.answered++
			}
		}
		if rank >= 1 && rank <= 3 {
			s.recall3++
		} else {
			top := "nothing"
			if len(res) > 0 {
				top = res[0].Path + " > " + res[0].Section
			}
			s.misses = append(s.misses, q.kind+": "+q.question+" (want "+q.path+", rank "+strconvI(rank)+", top "+top+")")
		}
		if rank > 0 {
			s.mrr += 1 / float64(rank)
		}
	}
	n := float64(len(qs))
	s.recall1, s.recall3, s.mrr, s.answered = s.recall1/n, s.recall3/n, s.mrr/n, s.answered/n
	return s
}

func strconvI(i int) string {
	if i == 0 {
		return "none"
	}
	return strconvF(float64(i))[:len(strconvF(float64(i)))-4]
}

// The evaluation set is at least 60 questions, and lexical search puts the
// right runbook in the top 3 for at least 90% of them.
func TestEvalLexicalRecall(t *testing.T) {
	qs := loadEval(t)
	if len(qs) < 60 {
		t.Fatalf("evaluation set has %d questions, want at least 60", len(qs))
	}
	ix := mustIndex(t, "testdata/runbooks")
	s := evaluate(t, ix, qs, ix.Search)
	t.Logf("lexical over %d questions: recall@1 %.3f, recall@3 %.3f, MRR %.3f, answered %.3f", len(qs), s.recall1, s.recall3, s.mrr, s.answered)
	for _, m := range s.misses {
		t.Logf("missed %s", m)
	}
	if s.recall3 < 0.9 {
		t.Errorf("lexical recall@3 = %.3f, want >= 0.9", s.recall3)
	}
}

// hybridIndex is an index with embeddings from the fake embeddings server,
// through the real OpenAI adapter.
type hybridIndex struct {
	ix      *knowledge.Index
	pool    *pgxpool.Pool
	fake    *embedfake.Server
	service uuid.UUID // the user sync-time embedding calls are charged to
}

// mustHybridIndex makes a hybrid index on a fresh database, synced with
// dir when it is not empty.
func mustHybridIndex(tb testing.TB, dir string, opts ...knowledge.Option) hybridIndex {
	tb.Helper()
	h := hybridIndex{pool: testdb.New(tb), fake: embedfake.New(tb)}
	if err := h.pool.QueryRow(context.Background(),
		`INSERT INTO users (handle) VALUES ('system:runbooks') RETURNING id`).Scan(&h.service); err != nil {
		tb.Fatal(err)
	}
	emb := mustEmbedderFor(tb, h.fake)
	opts = append([]knowledge.Option{knowledge.WithEmbeddings(knowledge.Embeddings{
		Embedder: emb, Model: emb.Model(), ServiceUser: h.service})}, opts...)
	h.ix = knowledge.New(h.pool, func() time.Time { return fixedNow }, opts...)
	if dir != "" {
		st, err := h.ix.Sync(context.Background(), dir, nil)
		if err != nil || st.EmbedFailed != "" {
			tb.Fatalf("sync %s: %v %s", dir, err, st.EmbedFailed)
		}
	}
	return h
}

// mustEmbedderFor is the OpenAI adapter's embedder on the fake server, not
// retrying (the fallback tests want one failure to be the answer).
func mustEmbedderFor(tb testing.TB, fake *embedfake.Server) *openai.Embedder {
	tb.Helper()
	emb, err := openai.NewEmbedder(openai.Config{BaseURL: fake.URL(), MaxRetries: -1})
	if err != nil {
		tb.Fatal(err)
	}
	return emb
}

// Hybrid search over the evaluation set, with the fake embeddings server:
// fusing the ranking by meaning must not lose what the lexical one finds.
func TestEvalHybridRecall(t *testing.T) {
	qs := loadEval(t)
	h := mustHybridIndex(t, "testdata/runbooks")
	s := evaluate(t, h.ix, qs, h.ix.Search)
	t.Logf("hybrid over %d questions: recall@1 %.3f, recall@3 %.3f, MRR %.3f, answered %.3f", len(qs), s.recall1, s.recall3, s.mrr, s.answered)
	for _, m := range s.misses {
		t.Logf("missed %s", m)
	}
	if s.recall3 < 0.9 {
		t.Errorf("hybrid recall@3 = %.3f, want >= 0.9", s.recall3)
	}
	if n := len(h.fake.Calls()); n < len(qs) {
		t.Errorf("embedding calls = %d, want at least one a question (%d)", n, len(qs))
	}
}
