package knowledge

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// vectorSnapshot is every section vector of one embedding space at one
// index generation, in one block of memory: a search by meaning is a scan
// of dot products over it (PostgreSQL 15 from Debian has no pgvector; 50k
// sections of 256 dimensions are 51 MB and a few milliseconds).
type vectorSnapshot struct {
	space string
	gen   int64
	dims  int
	ids   []int64   // section ids
	vecs  []float32 // len(ids) * dims, unit length each
}

// vectorCache holds the snapshot searches use. A search that finds it
// stale (another space, an older generation) reloads it, one search at a
// time; the others meanwhile use the stale one, whose sections that are
// gone simply drop out when their rows are fetched.
type vectorCache struct {
	mu      sync.Mutex
	snap    *vectorSnapshot
	loading sync.Mutex
}

// loadVectorsSQL reads a space's section vectors and, in the same
// snapshot, the generation they belong to.
const loadVectorsSQL = `
SELECT (SELECT generation FROM knowledge_state), s.id, e.vector
FROM knowledge_sections s
JOIN knowledge_embeddings e ON e.space = $1 AND e.sha = s.embed_sha
ORDER BY s.id`

// get returns the vectors of space at generation gen or later, or a stale
// snapshot (possibly nil) while another search loads them.
func (c *vectorCache) get(ctx context.Context, db DBTX, space string, gen int64) (*vectorSnapshot, error) {
	current := func() *vectorSnapshot {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.snap
	}
	fresh := func(s *vectorSnapshot) bool { return s != nil && s.space == space && s.gen >= gen }
	s := current()
	if fresh(s) {
		return s, nil
	}
	if !c.loading.TryLock() {
		if s != nil && s.space != space {
			s = nil
		}
		return s, nil
	}
	defer c.loading.Unlock()
	if s = current(); fresh(s) {
		return s, nil
	}
	rows, err := db.Query(ctx, loadVectorsSQL, space)
	if err != nil {
		return nil, fmt.Errorf("load section vectors: %w", err)
	}
	n := &vectorSnapshot{space: space, gen: gen}
	var id int64
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&n.gen, &id, &raw}, func() error {
		if n.dims == 0 {
			n.dims = len(raw) / 4
		}
		if len(raw) != 4*n.dims {
			return nil // not of this space's size: never compared
		}
		n.ids = append(n.ids, id)
		n.vecs = decodeVector(n.vecs, raw)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load section vectors: %w", err)
	}
	c.mu.Lock()
	c.snap = n
	c.mu.Unlock()
	return n, nil
}

// scoredID is a section and its score in one ranking.
type scoredID struct {
	id    int64
	score float64
}

// nearest returns the k sections whose vectors have the largest dot
// product (the cosine: all are unit length) with q, best first; none when
// q is not of the snapshot's size.
func (s *vectorSnapshot) nearest(q []float32, k int) []scoredID {
	if s == nil || len(q) != s.dims || s.dims == 0 || k <= 0 {
		return nil
	}
	top := make([]scoredID, 0, k+1)
	for i, id := range s.ids {
		v := s.vecs[i*s.dims : (i+1)*s.dims]
		d := float64(dot(q, v))
		if len(top) == k && d <= top[k-1].score {
			continue
		}
		// Insert in order; k is small.
		j := len(top)
		top = append(top, scoredID{})
		for j > 0 && top[j-1].score < d {
			top[j] = top[j-1]
			j--
		}
		top[j] = scoredID{id: id, score: d}
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// dot is the dot product of two vectors of the same length, four lanes at
// a time.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
