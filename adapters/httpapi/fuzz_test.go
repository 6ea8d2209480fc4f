package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/apacops/opsbot/bot"
)

// fuzzRoutes are the routes that decode what a client sends: JSON bodies,
// query strings (paging, cursors, dates, zones, grouping). {id} is a
// conversation of the fuzzing user.
var fuzzRoutes = []struct {
	method, path string
	admin, sse   bool
}{
	{method: "POST", path: "/api/v1/conversations"},
	{method: "PUT", path: "/api/v1/conversations/{id}"},
	{method: "GET", path: "/api/v1/conversations"},
	{method: "GET", path: "/api/v1/conversations/{id}/messages"},
	{method: "POST", path: "/api/v1/conversations/{id}/messages"},
	{method: "POST", path: "/api/v1/conversations/{id}/messages", sse: true},
	{method: "GET", path: "/api/v1/tokens/usage"},
	{method: "GET", path: "/api/v1/admin/usage", admin: true},
	{method: "PUT", path: "/api/v1/admin/budgets", admin: true},
}

// FuzzREST drives the real handler (an httptest server on the package's
// PostgreSQL database, with a real engine that answers from runbooks and no
// model) with arbitrary query strings and bodies on every decoding route:
// bad input must be a 4xx, never a 5xx. Its seed corpus (crafted cursors,
// trailing JSON, each route's ordinary input) is testdata/fuzz/FuzzREST.
func FuzzREST(f *testing.F) {
	a := newTestAPI(f, func(d *Deps) { d.Engine = bot.New(bot.Config{DB: testPool}) })
	_, tok := mustToken(f, "fuzz-user", false)
	_, adminTok := mustToken(f, "fuzz-admin", true)
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, nil, http.StatusCreated, &c)

	f.Fuzz(func(t *testing.T, route int, query string, body []byte) {
		rt := fuzzRoutes[uint(route)%uint(len(fuzzRoutes))]
		u, err := url.Parse(a.srv.URL + strings.ReplaceAll(rt.path, "{id}", c.ID.String()))
		if err != nil {
			t.Fatal(err)
		}
		u.RawQuery = query
		req, err := http.NewRequest(rt.method, u.String(), bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Authorization", "Bearer "+map[bool]string{false: tok, true: adminTok}[rt.admin])
		req.Header.Set("Content-Type", "application/json")
		if rt.sse {
			req.Header.Set("Accept", "text/event-stream")
		}
		resp, err := a.srv.Client().Do(req)
		if err != nil {
			return // refused by the client (say, a control character in the URL)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s?%s with body %q: status %d, body %s", rt.method, rt.path, query, body, resp.StatusCode, data)
		}
		if rt.sse && bytes.Contains(data, []byte("event: error")) && bytes.Contains(data, []byte(`"status":5`)) {
			t.Fatalf("%s %s (SSE) with body %q: stream ended in a server error: %s", rt.method, rt.path, body, data)
		}
	})
}
