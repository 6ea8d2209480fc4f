package knowledge_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/fakes/embedfake"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// benchSections is the index size of BenchmarkSearch50k; set
// OPSBOT_BENCH_SECTIONS to shrink it on a slow machine.
func benchSections(tb testing.TB) int {
	if s := os.Getenv("OPSBOT_BENCH_SECTIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			tb.Fatalf("OPSBOT_BENCH_SECTIONS=%q: want a number >= 100", s)
		}
		return n
	}
	return 50000
}

// BenchmarkSearch50k searches an index of 50k sections (the fixture
// runbooks plus synthetic ones in the same vocabulary, common words far more
// frequent than rare ones) with realistic questions, lexical and hybrid
// (every section with a vector of the fake embeddings server's kind, the
// question's vector from that server through the OpenAI adapter), and
// reports the p50 and p95 latency of one Search next to the machine's
// pgbench -S tps.
func BenchmarkSearch50k(b *testing.B) {
	ctx := context.Background()
	h := mustHybridIndex(b, "testdata/runbooks")
	n := benchSections(b)
	start := time.Now()
	texts := mustLoadSynthetic(b, h.pool, n)
	mustEmbedSynthetic(b, h.pool, texts)
	b.Logf("loaded %d synthetic sections and their vectors in %s", n, time.Since(start).Round(time.Millisecond))
	tps := pgbenchSelectTPS(b)

	queries := make([]string, 0, len(labelled)+len(unanswerable))
	for _, q := range labelled {
		queries = append(queries, q.question)
	}
	queries = append(queries, unanswerable...)

	for _, mode := range []string{"lexical", "hybrid"} {
		ix := h.ix
		if mode == "lexical" {
			ix = knowledge.New(h.pool, func() time.Time { return fixedNow })
		}
		// Ranking quality at this size: the labelled questions against the
		// fixture runbooks buried in 50k synthetic sections.
		hits := 0
		for _, q := range labelled {
			res, err := ix.Search(ctx, q.question, 3)
			if err != nil {
				b.Fatal(err)
			}
			found := false
			for _, r := range res {
				if r.Path == q.path && slices.Contains(q.sections, sectionTitle(r)) {
					found = true
				}
			}
			if found {
				hits++
			} else if len(res) > 0 {
				b.Logf("%s missed at %d sections: %q, top %s %q %.3f", mode, n, q.question, res[0].Path, res[0].Section, res[0].Score)
			}
		}
		recall := float64(hits) / float64(len(labelled))
		b.Logf("%s recall@3 over %d sections: %.3f (%d/%d)", mode, n, recall, hits, len(labelled))
		if recall < 0.8 {
			b.Errorf("%s recall@3 over %d sections = %.3f, want >= 0.8", mode, n, recall)
		}

		b.Run(mode, func(b *testing.B) {
			benchSearches(b, ix, queries, 5)
			b.ReportMetric(float64(n), "sections")
			b.ReportMetric(recall, "recall@3")
			if tps > 0 {
				b.ReportMetric(tps, "pgbench-S-tps")
			}
		})
	}
}

// benchVocab is the ops vocabulary of the synthetic sections.
var benchVocab = strings.Fields(`
	the check run restart service host pod node error log alert database disk
	kubectl get describe logs deployment namespace payments gateway ledger
	replica primary failover switchover patroni pgbouncer connection pool timeout
	latency lag consumer topic partition offset broker kafka msk dns record ttl
	resolver certificate tls renew expiry acme vault secret rotate password key
	aws iam ec2 ebs volume resize route53 alb target health probe liveness
	readiness memory oom cpu throttle quota limit scale replicas hpa ingress nginx
	upstream 502 503 504 retry backoff queue worker cron schedule backup restore
	snapshot wal archive vacuum index bloat lock deadlock migration schema rollout
	rollback helm argocd terraform atlantis plan apply drift vpn okta mfa sso
	onboarding offboarding pagerduty escalate incident sev1 sev2 postmortem
	singapore manila sydney jakarta tokyo mumbai ap-southeast-1 ap-southeast-2
	db-sg-01 db-sg-02 db-mnl-01 pgb-sg kafka-sg-03 edge-sg-01 web-mnl-02 build-sg-01
	ERR_CONN_RESET ERR_UPSTREAM_TIMEOUT PGW-5003 ENOSPC OOMKilled CrashLoopBackOff
	--force --previous --execute --dry-run --all-namespaces --reset-offsets
	cloudwatch grafana prometheus loki tempo jaeger opentelemetry sentry statuspage
	redis memcached elasticsearch opensearch rabbitmq sqs sns lambda fargate eks
	firewall bgp peering transit nat subnet vpc cidr mtu packet loss jitter
	invoice refund chargeback settlement merchant acquirer adyen paymongo xendit`)

// benchFunctionWords are the most frequent words of any English text.
var benchFunctionWords = strings.Fields(`the to and a of in is for on with it
	that be this check if run from as are at by or not you then should when
	we can will an all`)

// benchCorpus draws words with a Zipf distribution over a 20k-word
// vocabulary: function words first, the ops words spread over ranks 60 to
// about 3000, synthetic words (some host-name shaped) everywhere else.
type benchCorpus struct {
	vocab []string
	zipf  *rand.Zipf
	r     *rand.Rand
}

func newBenchCorpus(r *rand.Rand) *benchCorpus {
	const size = 20000
	vocab := append([]string(nil), benchFunctionWords...)
	syll := strings.Fields("ka to ri mu se na lo pe vi da go zu ne bo fi ra me ti su ho")
	ops := 0
	for len(vocab) < size {
		if n := len(vocab); n >= 60 && n%10 == 0 && ops < len(benchVocab) {
			vocab = append(vocab, strings.ToLower(benchVocab[ops]))
			ops++
			continue
		}
		n := len(vocab)
		w := syll[n%20] + syll[(n/20)%20] + syll[(n/400)%20]
		if n%7 == 0 {
			w = fmt.Sprintf("%s-%s-%02d", w, []string{"sg", "mnl", "syd", "jkt"}[n%4], n%97)
		}
		vocab = append(vocab, w)
	}
	return &benchCorpus{vocab: vocab, zipf: rand.NewZipf(r, 1.05, 2, size-1), r: r}
}

func (c *benchCorpus) text(words int, skipFunction bool) string {
	var sb strings.Builder
	for i := 0; i < words; i++ {
		k := int(c.zipf.Uint64())
		if skipFunction && k < len(benchFunctionWords) {
			i--
			continue
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(c.vocab[k])
	}
	return sb.String()
}

// mustLoadSynthetic bulk-inserts n sections in documents of 25 with COPY
// and returns the text of each, as it is embedded.
func mustLoadSynthetic(tb testing.TB, pool *pgxpool.Pool, n int) []string {
	tb.Helper()
	ctx := context.Background()
	c := newBenchCorpus(rand.New(rand.NewPCG(1, 2)))
	const perDoc = 25
	docs := (n + perDoc - 1) / perDoc
	docRows := make([][]any, docs)
	for d := range docs {
		hash := make([]byte, 32)
		copy(hash, fmt.Sprintf("synthetic-%08d", d))
		docRows[d] = []any{fmt.Sprintf("synthetic/%05d.md", d), "Synthetic " + c.text(3, true), hash, 1000, fixedNow}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"knowledge_documents"},
		[]string{"path", "title", "content_hash", "size_bytes", "indexed_at"}, pgx.CopyFromRows(docRows)); err != nil {
		tb.Fatal(err)
	}
	ids := map[string]int64{}
	rows, err := pool.Query(ctx, `SELECT path, id FROM knowledge_documents WHERE path LIKE 'synthetic/%'`)
	if err != nil {
		tb.Fatal(err)
	}
	var p string
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&p, &id}, func() error { ids[p] = id; return nil }); err != nil {
		tb.Fatal(err)
	}
	secRows := make([][]any, 0, n)
	texts := make([]string, 0, n)
	for i := range n {
		doc := docRows[i/perDoc]
		title := c.text(2+c.r.IntN(4), true)
		path, content := doc[1].(string)+" > "+title, c.text(40+c.r.IntN(200), false)
		texts = append(texts, knowledge.EmbedText(path, content))
		sha := sha256.Sum256([]byte(texts[i]))
		secRows = append(secRows, []any{ids[doc[0].(string)], i % perDoc, title, path, content, sha[:]})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"knowledge_sections"},
		[]string{"document_id", "ord", "title", "heading_path", "content", "embed_sha"}, pgx.CopyFromRows(secRows)); err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE knowledge_sections`); err != nil {
		tb.Fatal(err)
	}
	return texts
}

// mustEmbedSynthetic stores the vectors the fake embeddings server would
// return for texts, as Sync would (faster than 800 calls through HTTP).
func mustEmbedSynthetic(tb testing.TB, pool *pgxpool.Pool, texts []string) {
	tb.Helper()
	rows := make([][]any, 0, len(texts))
	seen := map[[32]byte]bool{}
	for _, t := range texts {
		sha := sha256.Sum256([]byte(t))
		if seen[sha] {
			continue
		}
		seen[sha] = true
		rows = append(rows, []any{"text-embedding-3-small/256", sha[:],
			knowledge.EncodeVector(embedfake.Vector(t, embedfake.DefaultDimensions))})
	}
	if _, err := pool.CopyFrom(context.Background(), pgx.Identifier{"knowledge_embeddings"},
		[]string{"space", "sha", "vector"}, pgx.CopyFromRows(rows)); err != nil {
		tb.Fatal(err)
	}
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+)`)

// pgbenchSelectTPS measures the machine's pgbench -S (select-only) tps on a
// scratch database it creates and drops; 0 when pgbench is not installed.
func pgbenchSelectTPS(tb testing.TB) float64 {
	tb.Helper()
	if _, err := exec.LookPath("pgbench"); err != nil {
		tb.Logf("pgbench not installed: no baseline")
		return 0
	}
	dbURL, err := testdb.Create(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := testdb.Drop(context.Background(), dbURL); err != nil {
			tb.Errorf("drop pgbench database: %v", err)
		}
	}()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("pgbench", "-i", "-q", "-s", "10", dbURL).CombinedOutput(); err != nil {
		tb.Fatalf("pgbench -i on %s: %v\n%s", u.Path, err, out)
	}
	out, err := exec.Command("pgbench", "-S", "-c", "2", "-j", "2", "-T", "5", dbURL).CombinedOutput()
	if err != nil {
		tb.Fatalf("pgbench -S: %v\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		tb.Fatalf("no tps in pgbench output:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	tb.Logf("pgbench -S -c 2 -j 2 -T 5 (scale 10): %.0f tps", tps)
	return tps
}

// BenchmarkSearchSample is one turn's runbook search at the size of the
// sample runbooks (docs/runbooks, about 60 sections), lexical and hybrid
// (the fake embeddings server of internal/fakes/embedfake): the evaluation set's
// recall@1, recall@3 and MRR, and the p50 and p95 of one Search over its
// questions in turn.
func BenchmarkSearchSample(b *testing.B) {
	qs := loadEval(b)
	for _, mode := range []string{"lexical", "hybrid"} {
		b.Run(mode, func(b *testing.B) {
			var ix *knowledge.Index
			if mode == "hybrid" {
				ix = mustHybridIndex(b, "testdata/runbooks").ix
			} else {
				ix = mustIndex(b, "testdata/runbooks")
			}
			s := evaluate(b, ix, qs, ix.Search)
			questions := make([]string, len(qs))
			for i, q := range qs {
				questions[i] = q.question
			}
			benchSearches(b, ix, questions, 3)
			b.ReportMetric(s.recall1, "recall@1")
			b.ReportMetric(s.recall3, "recall@3")
			b.ReportMetric(s.mrr, "MRR")
			b.ReportMetric(s.answered, "answered")
		})
	}
}

// benchSearches times one Search (for limit results) per iteration over
// queries in turn, and reports its p50 and p95.
func benchSearches(b *testing.B, ix *knowledge.Index, queries []string, limit int) {
	b.Helper()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := ix.Search(ctx, queries[i%len(queries)], limit); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		i++
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}
