package knowledge_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// copyRunbooks copies the fixture set into a fresh temporary directory.
func copyRunbooks(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	entries, err := os.ReadDir("testdata/runbooks")
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata/runbooks", e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		mustWrite(tb, filepath.Join(dir, e.Name()), data)
	}
	return dir
}

func mustWrite(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// rowVersions fingerprints every stored row (id and xmin), so a test can see
// whether a sync wrote anything at all.
func rowVersions(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `
		SELECT coalesce((SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM knowledge_documents), '') || '|' ||
		       coalesce((SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM knowledge_sections), '')`).Scan(&s)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func docPaths(tb testing.TB, pool *pgxpool.Pool) []string {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT path FROM knowledge_documents ORDER BY path`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			tb.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSyncIsIdempotent(t *testing.T) {
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow })
	ctx := context.Background()

	var calls, lastDone, lastTotal int
	first, err := ix.Sync(ctx, "testdata/runbooks", func(done, total int, _ string) {
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(first.Indexed), 10; got != want {
		t.Errorf("first sync indexed %d files, want %d", got, want)
	}
	if first.Sections < 50 {
		t.Errorf("first sync wrote %d sections, want at least 50", first.Sections)
	}
	if calls != 11 || lastDone != 10 || lastTotal != 10 {
		t.Errorf("progress: %d calls ending at %d/%d, want 11 calls ending at 10/10", calls, lastDone, lastTotal)
	}
	before := rowVersions(t, pool)

	second, err := ix.Sync(ctx, "testdata/runbooks", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Indexed) != 0 || second.Unchanged != 10 || len(second.Removed) != 0 || len(second.Skipped) != 0 {
		t.Errorf("second sync = %+v, want all 10 unchanged", second)
	}
	if after := rowVersions(t, pool); after != before {
		t.Errorf("second sync rewrote rows:\n got %s\nwant %s", after, before)
	}
}

func TestSyncChangedAddedRemoved(t *testing.T) {
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow })
	ctx := context.Background()
	dir := copyRunbooks(t)
	if _, err := ix.Sync(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}

	// Change one runbook, delete another, add a new one in a subdirectory.
	f := filepath.Join(dir, "disk-full.md")
	data, _ := os.ReadFile(f)
	data = append(data, "\n## Inode exhaustion on mx-sg-03\n\nRun `find /var/spool/postfix -xdev -type f | wc -l` and purge the deferred queue.\n"...)
	mustWrite(t, f, data)
	if err := os.Remove(filepath.Join(dir, "kafka-consumer-lag.md")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "network", "bgp-session-down.txt"),
		[]byte("BGP session to the Equinix SG3 peer is down.\n\nCheck with `show bgp summary` on edge-sg-01.\n"))

	st, err := ix.Sync(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"disk-full.md", "network/bgp-session-down.txt"}; !reflect.DeepEqual(st.Indexed, want) {
		t.Errorf("indexed %v, want %v", st.Indexed, want)
	}
	if want := []string{"kafka-consumer-lag.md"}; !reflect.DeepEqual(st.Removed, want) {
		t.Errorf("removed %v, want %v", st.Removed, want)
	}
	if st.Unchanged != 8 {
		t.Errorf("unchanged %d, want 8", st.Unchanged)
	}

	tests := []struct {
		query    string
		wantPath string
	}{
		{"inode exhaustion on mx-sg-03", "disk-full.md"},
		{"BGP session down edge-sg-01", "network/bgp-session-down.txt"},
	}
	for _, tt := range tests {
		res, err := ix.Search(ctx, tt.query, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == 0 || res[0].Path != tt.wantPath {
			t.Errorf("Search(%q) = %v, want top result from %s", tt.query, res, tt.wantPath)
		}
	}
	res, err := ix.Search(ctx, "kafka consumer lag reset offsets", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Path == "kafka-consumer-lag.md" {
			t.Errorf("Search found section %q of the removed kafka-consumer-lag.md", r.Section)
		}
	}
	var orphans int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_sections s
		WHERE NOT EXISTS (SELECT 1 FROM knowledge_documents d WHERE d.id = s.document_id)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d orphaned sections, want 0", orphans)
	}
}

func TestSyncSkipsBadFiles(t *testing.T) {
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow }, knowledge.WithMaxFileSize(4096))
	ctx := context.Background()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "good.md"), []byte("# Good runbook\n\n## Restart nginx\n\nsudo systemctl restart nginx\n"))
	mustWrite(t, filepath.Join(dir, "turns-binary.md"), []byte("# Was fine\n\nonce upon a time\n"))
	if _, err := ix.Sync(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}

	mustWrite(t, filepath.Join(dir, "binary.md"), []byte("# Looks like markdown\x00\x01\x02\xff"))
	mustWrite(t, filepath.Join(dir, "huge.md"), []byte("# Huge\n\n"+strings.Repeat("log line\n", 1000)))
	mustWrite(t, filepath.Join(dir, "latin1.txt"), []byte("Caf\xe9 r\xe9seau: red\xe9marrer le routeur\n"))
	mustWrite(t, filepath.Join(dir, "turns-binary.md"), []byte("\x00\x00\x00"))
	mustWrite(t, filepath.Join(dir, "diagram.png"), []byte("\x89PNG\r\n\x1a\n"))
	mustWrite(t, filepath.Join(dir, ".git", "notes.md"), []byte("# not a runbook\n"))

	st, err := ix.Sync(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range st.Skipped {
		got[s.Path] = s.Reason
	}
	want := map[string]string{
		"binary.md":       "binary",
		"huge.md":         "too large",
		"latin1.txt":      "not valid UTF-8",
		"turns-binary.md": "binary",
	}
	if len(got) != len(want) {
		t.Errorf("skipped %v, want exactly %v", got, want)
	}
	for path, reason := range want {
		if !strings.Contains(got[path], reason) {
			t.Errorf("skip reason for %s = %q, want it to mention %q", path, got[path], reason)
		}
	}
	if st.Unchanged != 1 {
		t.Errorf("unchanged %d, want 1 (good.md)", st.Unchanged)
	}
	// A file that became unreadable no longer backs its old sections.
	if want := []string{"turns-binary.md"}; !reflect.DeepEqual(st.Removed, want) {
		t.Errorf("removed %v, want %v", st.Removed, want)
	}
	if got, want := docPaths(t, pool), []string{"good.md"}; !reflect.DeepEqual(got, want) {
		t.Errorf("documents %v, want %v", got, want)
	}
}

func TestSyncMissingDirectory(t *testing.T) {
	ix := mustIndex(t, "")
	if _, err := ix.Sync(context.Background(), filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Error("Sync of a missing directory: got nil error, want one")
	}
}

// TestSyncHugeHeading: a file within the size limit whose heading is one
// enormous line (a pasted dump) is indexed, and does not stop the sync, even
// though its words alone would exceed PostgreSQL's 1 MB tsvector limit.
func TestSyncHugeHeading(t *testing.T) {
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow })
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("# ")
	for i := range 100_000 {
		fmt.Fprintf(&b, "w%06x ", i*7919)
	}
	b.WriteString("\n\nRestart the exporter on mon-sg-01.\n")
	mustWrite(t, filepath.Join(dir, "a-dump.md"), []byte(b.String()))
	mustWrite(t, filepath.Join(dir, "b-good.md"), []byte("# Good runbook\n\n## Restart nginx\n\nsudo systemctl restart nginx\n"))

	st, err := ix.Sync(context.Background(), dir, nil)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if want := []string{"a-dump.md", "b-good.md"}; !reflect.DeepEqual(st.Indexed, want) {
		t.Errorf("indexed %v, want %v", st.Indexed, want)
	}
	res, err := ix.Search(context.Background(), "restart exporter mon-sg-01", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Path != "a-dump.md" || len(res[0].Document) > 200 {
		t.Errorf("Search = %+v, want a-dump.md with a title cut to at most 200 bytes", res)
	}
}

// knowledge_terms, kept by triggers, always holds what a recount of the
// sections gives: after a first sync, a changed and a removed file, and a
// direct update of a section.
func TestTermCountsFollowSections(t *testing.T) {
	ctx := context.Background()
	pool := testdb.New(t)
	ix := knowledge.New(pool, func() time.Time { return fixedNow })
	dir := copyRunbooks(t)
	check := func(step string) {
		t.Helper()
		var wrong int
		err := pool.QueryRow(ctx, `
			WITH recount AS (
			    SELECT u.lexeme, count(*) AS sections, count(*) FILTER (WHERE u.weights && '{A,B}'::text[]) AS headings
			    FROM knowledge_sections s, unnest(s.tsv) AS u GROUP BY u.lexeme)
			SELECT count(*) FROM recount r FULL JOIN knowledge_terms k ON k.lexeme = r.lexeme
			WHERE r.sections IS DISTINCT FROM k.sections OR r.headings IS DISTINCT FROM k.headings`).Scan(&wrong)
		if err != nil {
			t.Fatal(err)
		}
		if wrong != 0 {
			t.Errorf("%s: %d lexemes counted wrong in knowledge_terms", step, wrong)
		}
	}
	if _, err := ix.Sync(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	check("first sync")
	mustWrite(t, filepath.Join(dir, "dns-propagation.md"), []byte("# DNS\n\n## Zonk\n\nzonkify the resolver\n"))
	if err := os.Remove(filepath.Join(dir, "vpn-access-new-staff.md")); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Sync(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	check("changed and removed files")
	if _, err := pool.Exec(ctx, `UPDATE knowledge_sections SET content = content || ' quuxbar' WHERE ord = 0`); err != nil {
		t.Fatal(err)
	}
	check("sections updated in place")
}
