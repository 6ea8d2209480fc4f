package knowledge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// SyncStats says what Sync did, file by file where it matters.
type SyncStats struct {
	Indexed   []string  // new or changed files, (re)indexed
	Unchanged int       // files whose content hash matched: not touched
	Removed   []string  // documents dropped: file gone or now unreadable
	Skipped   []Skipped // files not indexed, with the reason
	Sections  int       // sections written for the indexed files
	// Embedded counts the section texts given a vector (hybrid search
	// only): new and changed ones, or all when embeddings were just turned
	// on. EmbedFailed says why some have none yet, "" when all have one;
	// they are searched by words until a later sync embeds them.
	Embedded    int
	EmbedFailed string
}

// Skipped is a file Sync would not index, and why.
type Skipped struct {
	Path   string
	Reason string
}

// sourceFile is a candidate file found under the synced directory.
type sourceFile struct {
	abs string
	rel string // slash-separated, relative to the directory: the document path
}

// Sync makes the index mirror the Markdown (.md, .markdown) and plain-text
// (.txt) files under dir: new and changed files are (re)indexed, each in its
// own transaction, files whose SHA-256 matches the stored hash are skipped
// without a write, and documents whose file is gone (or no longer readable)
// are removed in one transaction. Hidden directories are not descended.
// Binary files, files over the size limit and invalid UTF-8 are skipped with
// a reason in SyncStats.Skipped and a warning in the log.
//
// progress, if not nil, is called once with done = 0 when the file count is
// known and then after every file.
func (ix *Index) Sync(ctx context.Context, dir string, progress func(done, total int, path string)) (SyncStats, error) {
	var st SyncStats
	if progress == nil {
		progress = func(int, int, string) {}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return st, fmt.Errorf("sync runbooks: %w", err)
	}
	if !info.IsDir() {
		return st, fmt.Errorf("sync runbooks: %s is not a directory", dir)
	}
	files, walkSkips := findFiles(dir)
	for _, s := range walkSkips {
		ix.skip(ctx, &st, s.Path, s.Reason)
	}

	stored, err := ix.storedHashes(ctx)
	if err != nil {
		return st, err
	}
	keep := make(map[string]bool, len(files))
	progress(0, len(files), "")
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("sync runbooks: %w", err)
		}
		data, reason := ix.readFile(f.abs)
		if reason != "" {
			ix.skip(ctx, &st, f.rel, reason)
			progress(i+1, len(files), f.rel)
			continue
		}
		keep[f.rel] = true
		sum := sha256.Sum256(data)
		if old, ok := stored[f.rel]; ok && bytes.Equal(old, sum[:]) {
			st.Unchanged++
			progress(i+1, len(files), f.rel)
			continue
		}
		n, err := ix.writeDocument(ctx, f.rel, data, sum[:])
		if err != nil {
			return st, err
		}
		st.Indexed = append(st.Indexed, f.rel)
		st.Sections += n
		progress(i+1, len(files), f.rel)
	}

	var gone []string
	for p := range stored {
		if !keep[p] {
			gone = append(gone, p)
		}
	}
	sort.Strings(gone)
	if len(gone) > 0 {
		if _, err := ix.db.Exec(ctx, `DELETE FROM knowledge_documents WHERE path = ANY($1)`, gone); err != nil {
			return st, fmt.Errorf("remove %d runbooks: %w", len(gone), err)
		}
		st.Removed = gone
	}
	if len(st.Indexed) > 0 || len(st.Removed) > 0 {
		// The planner's statistics, for good plans as the index grows.
		if _, err := ix.db.Exec(ctx, `ANALYZE knowledge_sections`); err != nil {
			return st, fmt.Errorf("analyze runbook sections: %w", err)
		}
	}
	if ix.emb != nil {
		st.Embedded, err = ix.embedSections(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return st, fmt.Errorf("sync runbooks: %w", ctx.Err())
			}
			// The words are indexed: search works, by words, for the
			// sections still without a vector.
			st.EmbedFailed = err.Error()
			ix.log.WarnContext(ctx, "runbook sections not embedded; they are searched by words until the next sync",
				"embedded", st.Embedded, "error", err)
		}
	}
	ix.log.InfoContext(ctx, "runbooks synced", "dir", dir, "indexed", len(st.Indexed),
		"unchanged", st.Unchanged, "removed", len(st.Removed), "skipped", len(st.Skipped), "sections", st.Sections,
		"embedded", st.Embedded)
	return st, nil
}

func (ix *Index) skip(ctx context.Context, st *SyncStats, path, reason string) {
	st.Skipped = append(st.Skipped, Skipped{Path: path, Reason: reason})
	ix.log.WarnContext(ctx, "runbook skipped", "path", path, "reason", reason)
}

// findFiles lists the indexable files under dir, sorted by path, and the
// entries it could not use.
func findFiles(dir string) ([]sourceFile, []Skipped) {
	var files []sourceFile
	var skips []Skipped
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, rerr := filepath.Rel(dir, p)
		if rerr != nil {
			rel = p
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			if p != dir {
				skips = append(skips, Skipped{Path: rel, Reason: "unreadable: " + err.Error()})
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || !indexable(d.Name()) {
			return nil
		}
		if !utf8.ValidString(rel) {
			skips = append(skips, Skipped{Path: strings.ToValidUTF8(rel, "?"), Reason: "file name is not valid UTF-8"})
			return nil
		}
		files = append(files, sourceFile{abs: p, rel: rel})
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, skips
}

// indexable reports whether a file name has an extension Sync reads.
func indexable(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".markdown", ".txt":
		return true
	}
	return false
}

// readFile reads a candidate and returns why it cannot be indexed, if so.
func (ix *Index) readFile(abs string) ([]byte, string) {
	info, err := os.Stat(abs)
	if err != nil {
		return nil, "unreadable: " + unwrapPath(err)
	}
	if !info.Mode().IsRegular() {
		return nil, "not a regular file"
	}
	if info.Size() > ix.maxFileSize {
		return nil, fmt.Sprintf("too large: %d bytes, limit %d", info.Size(), ix.maxFileSize)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, "unreadable: " + unwrapPath(err)
	}
	if int64(len(data)) > ix.maxFileSize {
		return nil, fmt.Sprintf("too large: %d bytes, limit %d", len(data), ix.maxFileSize)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, "binary: contains NUL bytes"
	}
	if !utf8.Valid(data) {
		return nil, "not valid UTF-8 text"
	}
	return data, ""
}

// unwrapPath drops the path from an *fs.PathError: the caller reports it.
func unwrapPath(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// storedHashes maps each indexed document path to its content hash.
func (ix *Index) storedHashes(ctx context.Context) (map[string][]byte, error) {
	rows, err := ix.db.Query(ctx, `SELECT path, content_hash FROM knowledge_documents`)
	if err != nil {
		return nil, fmt.Errorf("list indexed runbooks: %w", err)
	}
	out := map[string][]byte{}
	var p string
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&p, &h}, func() error {
		out[p] = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list indexed runbooks: %w", err)
	}
	return out, nil
}

// writeDocument replaces one document and its sections in a transaction and
// returns the number of sections written.
func (ix *Index) writeDocument(ctx context.Context, rel string, data, sum []byte) (int, error) {
	doc := parseDocument(rel, string(data))
	err := pgx.BeginFunc(ctx, ix.db, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `
			INSERT INTO knowledge_documents (path, title, content_hash, size_bytes, indexed_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (path) DO UPDATE
			SET title = EXCLUDED.title, content_hash = EXCLUDED.content_hash,
			    size_bytes = EXCLUDED.size_bytes, indexed_at = EXCLUDED.indexed_at
			RETURNING id`,
			rel, doc.title, sum, len(data), ix.now()).Scan(&id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM knowledge_sections WHERE document_id = $1`, id); err != nil {
			return err
		}
		rows := make([][]any, len(doc.sections))
		for i, s := range doc.sections {
			sha := sha256.Sum256([]byte(embedText(s.path, s.content)))
			rows[i] = []any{id, i, s.title, s.path, s.content, sha[:]}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"knowledge_sections"},
			[]string{"document_id", "ord", "title", "heading_path", "content", "embed_sha"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("index runbook %s: %w", rel, err)
	}
	return len(doc.sections), nil
}
