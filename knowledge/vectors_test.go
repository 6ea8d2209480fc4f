package knowledge

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomUnit(r *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	normalize(v)
	return v
}

func TestNearest(t *testing.T) {
	// Three 2-D unit vectors; the query is closest to id 30, then 10.
	s := &vectorSnapshot{dims: 2, ids: []int64{10, 20, 30}, vecs: []float32{0.6, 0.8, -1, 0, 0.8, 0.6}}
	got := s.nearest([]float32{1, 0}, 2)
	want := []scoredID{{30, 0.800000011920929}, {10, 0.6000000238418579}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("nearest = %v, want %v", got, want)
	}
	if got := s.nearest([]float32{1, 0, 0}, 2); got != nil {
		t.Errorf("nearest of a vector of another size = %v, want none", got)
	}
	var none *vectorSnapshot
	if got := none.nearest([]float32{1, 0}, 2); got != nil {
		t.Errorf("nearest without vectors = %v, want none", got)
	}
}

func TestVectorEncoding(t *testing.T) {
	v := []float32{3, 4}
	if !normalize(v) || v[0] != 0.6 || v[1] != 0.8 {
		t.Fatalf("normalize = %v, want [0.6 0.8]", v)
	}
	if normalize([]float32{0, 0}) {
		t.Error("normalize of a zero vector: true, want false")
	}
	if got := decodeVector(nil, encodeVector(v)); !reflect.DeepEqual(got, v) {
		t.Errorf("decode(encode(%v)) = %v", v, got)
	}
}

// BenchmarkNearest50k is the ranking by meaning of one question over 50k
// sections of 256 dimensions.
func BenchmarkNearest50k(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, dims = 50000, 256
	s := &vectorSnapshot{dims: dims, ids: make([]int64, n), vecs: make([]float32, 0, n*dims)}
	for i := range n {
		s.ids[i] = int64(i)
		s.vecs = append(s.vecs, randomUnit(r, dims)...)
	}
	q := randomUnit(r, dims)
	for b.Loop() {
		s.nearest(q, fusionDepth)
	}
}
