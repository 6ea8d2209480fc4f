package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/users"
)

// testPool is this package's fresh database.
var testPool *pgxpool.Pool

func TestMain(m *testing.M) {
	os.Exit(testdb.RunMain(m, &testPool))
}

// testAPI is a running server and helpers to call it.
type testAPI struct {
	tb  testing.TB
	srv *httptest.Server
	s   *Server
}

// newTestAPI starts a server on the package database with default deps;
// adjust deps before the server is built with the optional function.
func newTestAPI(tb testing.TB, adjust ...func(*Deps)) *testAPI {
	tb.Helper()
	d := Deps{DB: testPool, Users: users.NewStore(testPool, "Asia/Singapore")}
	for _, f := range adjust {
		f(&d)
	}
	s := New(d)
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	return &testAPI{tb: tb, srv: srv, s: s}
}

// mustToken creates a user (if new) with a fresh token and returns both.
func mustToken(tb testing.TB, handle string, admin bool) (users.User, string) {
	tb.Helper()
	return mustTokenIn(tb, users.NewStore(testPool, "Asia/Singapore"), handle, admin)
}

// mustTokenIn is mustToken on another database's store.
func mustTokenIn(tb testing.TB, store *users.Store, handle string, admin bool) (users.User, string) {
	tb.Helper()
	role := users.RoleUser
	if admin {
		role = users.RoleAdmin
	}
	u, err := store.Ensure(context.Background(), handle, role)
	if err != nil {
		tb.Fatalf("ensure %s: %v", handle, err)
	}
	_, secret, err := store.CreateToken(context.Background(), u.ID, "test")
	if err != nil {
		tb.Fatalf("token for %s: %v", handle, err)
	}
	return u, secret
}

// do sends a request; body may be nil, a string (sent raw) or a value
// (sent as JSON). It returns the response with its body read.
func (a *testAPI) do(method, path, token string, body any) (*http.Response, []byte) {
	a.tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			a.tb.Fatalf("marshal body: %v", err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, r)
	if err != nil {
		a.tb.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.tb.Fatalf("read body: %v", err)
	}
	return resp, data
}

// mustDo is do that fails the test unless the status is want, and decodes
// the JSON body into out when out is not nil.
func (a *testAPI) mustDo(method, path, token string, body any, want int, out any) *http.Response {
	a.tb.Helper()
	resp, data := a.do(method, path, token, body)
	if resp.StatusCode != want {
		a.tb.Fatalf("%s %s: got status %d, want %d; body %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.tb.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp
}

// problemOf decodes a problem+json body, checking the content type.
func problemOf(tb testing.TB, resp *http.Response, data []byte) problem {
	tb.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("content type: got %q, want application/problem+json (body %s)", ct, data)
	}
	var p problem
	if err := json.Unmarshal(data, &p); err != nil {
		tb.Fatalf("decode problem %s: %v", data, err)
	}
	if p.Detail == "" || p.Status != resp.StatusCode {
		tb.Fatalf("problem %+v: want a detail and status %d", p, resp.StatusCode)
	}
	return p
}
