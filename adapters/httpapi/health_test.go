package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/users"
)

func TestHealthAndReadiness(t *testing.T) {
	a := newTestAPI(t)
	a.mustDo("GET", "/healthz", "", nil, http.StatusOK, nil)
	a.mustDo("GET", "/readyz", "", nil, http.StatusOK, nil)

	// A database without migrations is reachable but not ready.
	ctx := context.Background()
	url, err := testdb.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testdb.Drop(context.Background(), url) })
	bare, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bare.Close)
	srv := httptest.NewServer(New(Deps{DB: bare, Users: users.NewStore(bare, "")}))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz on an unmigrated database: got %d, want 503", resp.StatusCode)
	}
	resp, err = srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: got %d, want 200", resp.StatusCode)
	}
}

func TestUnknownRouteIsProblem(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "unknown-route", false)
	resp, data := a.do("GET", "/api/v1/nothing-here", tok, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("got %d, want 404", resp.StatusCode)
	}
	problemOf(t, resp, data)
	resp, _ = a.do("PATCH", "/api/v1/conversations", tok, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("wrong method: got %d, want 405", resp.StatusCode)
	}
}

// On shutdown /readyz fails at once, while health stays up, and turns
// still running are cut when the grace runs out.
func TestDrainFailsReadiness(t *testing.T) {
	a := newTestAPI(t)
	a.mustDo("GET", "/readyz", "", nil, http.StatusOK, nil)
	a.s.Drain()
	a.mustDo("GET", "/readyz", "", nil, http.StatusServiceUnavailable, nil)
	a.mustDo("GET", "/healthz", "", nil, http.StatusOK, nil)
	a.s.StopTurns()
	if a.s.turns.Err() == nil {
		t.Errorf("StopTurns left the turns' context running")
	}
}
