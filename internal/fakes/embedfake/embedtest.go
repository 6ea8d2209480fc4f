// Package embedfake is a fake OpenAI embeddings endpoint for tests and
// benchmarks: POST /v1/embeddings (or an Azure deployment's .../embeddings)
// on a local httptest server, in OpenAI's wire format, driven through the
// real client library.
//
// Its vectors are deterministic and mean something: a hashed bag of the
// text's words (lower case, crudely stemmed, stop words dropped) and of
// their character trigrams, so texts sharing words or word pieces lie
// close ("certifcate" near "certificate") and the rest do not. That makes
// hybrid search with it a real measurement, if a modest one: it knows no
// synonyms, as a trained model would.
package embedfake

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// DefaultDimensions is the size of a vector when the request names none.
const DefaultDimensions = 256

// Call is one request the server answered or refused.
type Call struct {
	Path       string // "/v1/embeddings", or an Azure deployment's path
	Query      string
	APIKey     string // the Authorization bearer token, or Azure's api-key header
	Model      string
	Dimensions int
	Encoding   string
	Inputs     []string
}

// Server is the fake endpoint.
type Server struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []Call
	fail  int           // answer with this HTTP status; 0: answer
	delay time.Duration // wait before answering (or until the client gives up)
}

// New starts a server, stopped at the end of the test.
func New(tb testing.TB) *Server {
	s := &Server{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL a client is configured with (OPENAI_BASE_URL).
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Fail makes every later request fail with status (0: answer again).
func (s *Server) Fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = status
}

// Delay makes every later answer wait d, or until the client gives up.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Calls returns the requests so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/embeddings") {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	var req struct {
		Input      []string `json:"input"`
		Model      string   `json:"model"`
		Dimensions int      `json:"dimensions"`
		Encoding   string   `json:"encoding_format"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Input) == 0 || req.Model == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"message":"input and model are required","type":"invalid_request_error","param":null,"code":null}}`)
		return
	}
	s.mu.Lock()
	key := r.Header.Get("Api-Key")
	if key == "" {
		key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	s.calls = append(s.calls, Call{Path: r.URL.Path, Query: r.URL.RawQuery, APIKey: key, Model: req.Model,
		Dimensions: req.Dimensions, Encoding: req.Encoding, Inputs: req.Input})
	fail, delay := s.fail, s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fail)
		fmt.Fprintf(w, `{"error":{"message":"fake failure %d","type":"server_error","param":null,"code":null}}`, fail)
		return
	}
	dims := req.Dimensions
	if dims <= 0 {
		dims = DefaultDimensions
	}
	data := make([]map[string]any, len(req.Input))
	tokens := 0
	for i, in := range req.Input {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": Vector(in, dims)}
		tokens += Tokens(in)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// Tokens is the prompt_tokens the server reports for a text: one per four
// bytes, rounded up, about what OpenAI's tokenizer gives for English.
func Tokens(text string) int { return (len(text) + 3) / 4 }

// stopWords carry no meaning for the vectors.
var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "and": true, "or": true, "of": true, "to": true, "in": true, "on": true,
	"for": true, "is": true, "are": true, "be": true, "it": true, "its": true, "i": true, "we": true, "you": true,
	"do": true, "does": true, "how": true, "what": true, "my": true, "our": true, "with": true, "by": true,
	"at": true, "from": true, "this": true, "that": true, "can": true, "not": true, "if": true, "then": true,
}

// Vector is the unit vector of text in dims dimensions: every word (stem)
// and, at a third of the weight, every trigram of it, hashed to a
// dimension and a sign.
func Vector(text string, dims int) []float32 {
	v := make([]float64, dims)
	add := func(feature string, weight float64) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		x := h.Sum64()
		if x>>63 == 1 {
			weight = -weight
		}
		v[x%uint64(dims)] += weight
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		if stopWords[w] {
			continue
		}
		w = stem(w)
		add("w:"+w, 1)
		padded := []rune("^" + w + "$")
		for i := 0; i+3 <= len(padded); i++ {
			add("t:"+string(padded[i:i+3]), 1.0/3)
		}
	}
	var sum float64
	for _, x := range v {
		sum += x * x
	}
	out := make([]float32, dims)
	if sum == 0 {
		out[0] = 1 // no words: a fixed direction
		return out
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		out[i] = float32(x * inv)
	}
	return out
}

// stem strips the commonest English endings.
func stem(w string) string {
	for _, suf := range []string{"ing", "ed", "es", "s"} {
		if len(w) > len(suf)+3 && strings.HasSuffix(w, suf) {
			return w[:len(w)-len(suf)]
		}
	}
	return w
}
