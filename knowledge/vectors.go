package knowledge

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

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
// stale (another space, an older generation) starts a reload, one at a
// time, and waits for it up to reloadWait: at the sample size a load takes
// a millisecond; over 50k sections it takes seconds, and meanwhile
// searches go on with the stale snapshot (its sections that are gone drop
// out when their rows are fetched, new ones are found by words only) or,
// with none, rank by words only.
type vectorCache struct {
	mu      sync.Mutex
	snap    *vectorSnapshot
	loading chan struct{} // closed when the reload in progress ends; nil: none
	lastErr error         // of the last reload
}

// reloadWait is how long a search waits for fresh vectors.
const reloadWait = 50 * time.Millisecond

// vectorLoadTimeout bounds a reload, which runs on after the search that
// started it has returned.
const vectorLoadTimeout = 2 * time.Minute

// loadVectorsSQL reads a space's section vectors and, in the same
// snapshot, the generation they belong to.
const loadVectorsSQL = `
SELECT (SELECT generation FROM knowledge_state), s.id, e.vector
FROM knowledge_sections s
JOIN knowledge_embeddings e ON e.space = $1 AND e.sha = s.embed_sha
ORDER BY s.id`

// get returns the vectors of space at generation gen or later when they
// are loaded; else it starts their reload and waits for it up to
// reloadWait (or ctx), then returns what there is: fresh vectors, the
// stale ones of space, or nil with the error of a failed reload.
func (c *vectorCache) get(ctx context.Context, db DBTX, space string, gen int64) (*vectorSnapshot, error) {
	c.mu.Lock()
	if s := c.snap; s != nil && s.space == space && s.gen >= gen {
		c.mu.Unlock()
		return s, nil
	}
	if c.loading == nil {
		done := make(chan struct{})
		c.loading = done
		go c.reload(db, space, gen, done)
	}
	loading := c.loading
	c.mu.Unlock()

	t := time.NewTimer(reloadWait)
	defer t.Stop()
	select {
	case <-loading:
	case <-t.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snap
	if s != nil && s.space != space {
		s = nil
	}
	return s, c.lastErr
}

// reload reads the vectors of space and makes them the snapshot. It has
// its own deadline: the search that started it may be over long before.
func (c *vectorCache) reload(db DBTX, space string, gen int64, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), vectorLoadTimeout)
	defer cancel()
	n, err := loadVectors(ctx, db, space, gen)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.snap = n
	}
	c.lastErr = err
	c.loading = nil
	close(done)
}

// loadVectors runs loadVectorsSQL.
func loadVectors(ctx context.Context, db DBTX, space string, gen int64) (*vectorSnapshot, error) {
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
	return n, nil
}

// scoredID is a section and its score in one ranking.
type scoredID struct {
	id    int64
	score float64
}

// nearestChunk is the most vectors one goroutine scans: big enough that a
// goroutine costs little beside its scan (half a millisecond or more).
const nearestChunk = 8192

// nearest returns the k sections whose vectors have the largest dot
// product (the cosine: all are unit length) with q, best first; none when
// q is not of the snapshot's size. Large snapshots are scanned in
// parallel chunks, one goroutine each, all done before it returns.
func (s *vectorSnapshot) nearest(q []float32, k int) []scoredID {
	if s == nil || len(q) != s.dims || s.dims == 0 || k <= 0 {
		return nil
	}
	chunks := min(runtime.GOMAXPROCS(0), (len(s.ids)+nearestChunk-1)/nearestChunk)
	if chunks <= 1 {
		return s.scan(q, k, 0, len(s.ids))
	}
	tops := make([][]scoredID, chunks)
	var wg sync.WaitGroup
	per := (len(s.ids) + chunks - 1) / chunks
	for c := range chunks {
		wg.Go(func() { tops[c] = s.scan(q, k, c*per, min(len(s.ids), (c+1)*per)) })
	}
	wg.Wait()
	var all []scoredID
	for _, t := range tops {
		all = append(all, t...)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].score != all[j].score {
			return all[i].score > all[j].score
		}
		return all[i].id < all[j].id
	})
	return all[:min(k, len(all))]
}

// scan returns the k best of the vectors from, up to to, best first.
func (s *vectorSnapshot) scan(q []float32, k, from, to int) []scoredID {
	top := make([]scoredID, 0, k+1)
	for i := from; i < to; i++ {
		d := float64(dot(q, s.vecs[i*s.dims:(i+1)*s.dims]))
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
		top[j] = scoredID{id: s.ids[i], score: d}
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// dot is the dot product of two vectors of the same length, eight lanes
// at a time (the compiler drops the bounds checks of the fixed-size
// windows).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x, y := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}
