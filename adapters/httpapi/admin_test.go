package httpapi

import (
	"bytes"
	"encoding/csv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAdminRefusesNonAdmins(t *testing.T) {
	var logs syncBuffer
	a := newTestAPI(t, func(d *Deps) { d.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	u, tok := mustToken(t, "admin-refused", false)
	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/usage"},
		{"GET", "/api/v1/admin/usage?format=csv"},
		{"GET", "/api/v1/admin/budgets"},
		{"PUT", "/api/v1/admin/budgets"},
	} {
		var body any
		if rq.method == "PUT" {
			body = map[string]any{"org": map[string]any{"limit_usd": 1}}
		}
		resp, data := a.do(rq.method, rq.path, tok, body)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s: got %d, want 403", rq.method, rq.path, resp.StatusCode)
			continue
		}
		problemOf(t, resp, data)
	}
	if got := strings.Count(logs.String(), "admin route refused"); got != 4 {
		t.Errorf("refusals logged: got %d, want 4", got)
	}
	if !strings.Contains(logs.String(), u.ID.String()) {
		t.Errorf("log %q: want the refused user's id", logs.String())
	}
}

// newOrgAPI is a server on a database of its own, for tests of org-wide
// figures, and a function that makes users (with a token) in it.
func newOrgAPI(tb testing.TB, adjust ...func(*Deps)) (*testAPI, *pgxpool.Pool, func(handle string, admin bool) (users.User, string)) {
	tb.Helper()
	db := testdb.New(tb)
	store := users.NewStore(db, "Asia/Singapore")
	a := newTestAPI(tb, append([]func(*Deps){func(d *Deps) { d.DB, d.Users = db, store }}, adjust...)...)
	mk := func(handle string, admin bool) (users.User, string) {
		tb.Helper()
		return mustTokenIn(tb, store, handle, admin)
	}
	return a, db, mk
}

func TestAdminUsage(t *testing.T) {
	a, db, mk := newOrgAPI(t)
	admin, tok := mk("admin-usage", true)
	ann, _ := mk("=ann", false) // a handle a spreadsheet would run
	// Sydney, 2026-10-04 is the 23-hour day DST starts on.
	mustLedger(t, db, ann.ID, mustTime(t, "2026-10-03T14:00:00Z"), "gpt-4o", 10, 1, 3000)    // 00:00 4 Oct
	mustLedger(t, db, ann.ID, mustTime(t, "2026-10-04T12:59:59Z"), "gpt-4o-mini", 10, 1, 20) // 23:59:59 4 Oct
	mustLedger(t, db, admin.ID, mustTime(t, "2026-10-04T13:00:00Z"), "gpt-4o", 1, 1, 500)    // 00:00 5 Oct
	const rng = "&start=2026-10-04&end=2026-10-05&tz=Australia/Sydney"

	t.Run("by user", func(t *testing.T) {
		var got adminUsageJSON
		a.mustDo("GET", "/api/v1/admin/usage?group_by=user"+rng, tok, nil, http.StatusOK, &got)
		if len(got.Rows) != 2 || got.Rows[0].Label != "=ann" || got.Rows[0].CostMicroUSD != 3020 ||
			got.Rows[1].Key != admin.ID.String() || got.Rows[1].CostMicroUSD != 500 {
			t.Errorf("rows: got %+v, want =ann 3020 then admin 500", got.Rows)
		}
		if got.Totals.CostMicroUSD != 3520 || got.Totals.Messages != 3 {
			t.Errorf("totals: got %+v, want cost 3520 over 3 messages", got.Totals)
		}
	})
	t.Run("by day", func(t *testing.T) {
		var got adminUsageJSON
		a.mustDo("GET", "/api/v1/admin/usage?group_by=day"+rng, tok, nil, http.StatusOK, &got)
		if len(got.Rows) != 2 || got.Rows[0].Key != "2026-10-04" || got.Rows[0].CostMicroUSD != 3020 ||
			got.Rows[1].Key != "2026-10-05" || got.Rows[1].CostMicroUSD != 500 {
			t.Errorf("rows: got %+v, want 2026-10-04 3020, 2026-10-05 500", got.Rows)
		}
	})
	t.Run("by model", func(t *testing.T) {
		var got adminUsageJSON
		a.mustDo("GET", "/api/v1/admin/usage?group_by=model"+rng, tok, nil, http.StatusOK, &got)
		if len(got.Rows) != 2 || got.Rows[0].Key != "gpt-4o" || got.Rows[0].CostMicroUSD != 3500 {
			t.Errorf("rows: got %+v, want gpt-4o 3500 first", got.Rows)
		}
	})
	t.Run("by source", func(t *testing.T) {
		var got adminUsageJSON
		a.mustDo("GET", "/api/v1/admin/usage?group_by=source"+rng, tok, nil, http.StatusOK, &got)
		if len(got.Rows) != 1 || got.Rows[0].Key != "api" || got.Rows[0].CostMicroUSD != 3520 {
			t.Errorf("rows: got %+v, want api 3520", got.Rows)
		}
	})
	t.Run("csv", func(t *testing.T) {
		resp, body := a.do("GET", "/api/v1/admin/usage?group_by=user&format=csv"+rng, tok, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("got %d %s, want 200 text/csv", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("parse csv %s: %v", body, err)
		}
		want := [][]string{
			{"user_id", "handle", "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens", "cost_usd", "messages"},
			{ann.ID.String(), "'=ann", "20", "2", "0", "22", "0.00302", "2"},
			{admin.ID.String(), "admin-usage", "1", "1", "0", "2", "0.0005", "1"},
		}
		if len(recs) != len(want) {
			t.Fatalf("got %d records %v, want %d", len(recs), recs, len(want))
		}
		for i := range want {
			if strings.Join(recs[i], ",") != strings.Join(want[i], ",") {
				t.Errorf("line %d: got %v, want %v", i, recs[i], want[i])
			}
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "opsbot-usage-by-user-2026-10-04-2026-10-05.csv") {
			t.Errorf("Content-Disposition %q: want the file name", cd)
		}
	})
	t.Run("422", func(t *testing.T) {
		for q, field := range map[string]string{
			"?group_by=team":       "group_by",
			"?format=xml":          "format",
			"?start=2026-10-04":    "end",
			"?tz=Australia/Sidney": "tz",
		} {
			resp, body := a.do("GET", "/api/v1/admin/usage"+q, tok, nil)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s: got %d, want 422", q, resp.StatusCode)
				continue
			}
			if p := problemOf(t, resp, body); p.Field != field {
				t.Errorf("%s: got field %q, want %q", q, p.Field, field)
			}
		}
	})
}

func TestAdminBudgets(t *testing.T) {
	sgt, _ := time.LoadLocation("Asia/Singapore")
	now := mustTime(t, "2026-08-20T04:00:00Z")
	var b *usage.Budgets
	a, db, mk := newOrgAPI(t, func(d *Deps) {
		b = usage.NewBudgets(d.DB, usage.BudgetOptions{Location: sgt, Now: func() time.Time { return now }})
		d.Budgets = b
	})
	_, tok := mk("admin-budgets", true)
	bea, _ := mk("bea-budget", false)
	cal, _ := mk("cal-budget", false)
	mustLedger(t, db, bea.ID, mustTime(t, "2026-08-01T00:00:00Z"), "gpt-4o", 1, 1, 2_500_000)

	var got budgetsJSON
	a.mustDo("PUT", "/api/v1/admin/budgets", tok, `{"org":{"limit_usd":500},"users":[
		{"user":"bea-budget","limit_usd":"12.345678"},{"user":"`+cal.ID.String()+`","limit_usd":3}]}`, http.StatusOK, &got)
	if got.TimeZone != "Asia/Singapore" || got.Month != "2026-08" || !got.ResetsAt.Equal(time.Date(2026, 9, 1, 0, 0, 0, 0, sgt)) {
		t.Errorf("got zone %s month %s resets %v; want Asia/Singapore, 2026-08, 1 Sep 00:00 SGT", got.TimeZone, got.Month, got.ResetsAt)
	}
	if got.Org == nil || got.Org.LimitMicroUSD != 500_000_000 {
		t.Errorf("org: got %+v, want a $500 limit", got.Org)
	}
	byHandle := map[string]budgetJSON{}
	for _, u := range got.Users {
		byHandle[u.Handle] = u
	}
	if g := byHandle["bea-budget"]; g.LimitMicroUSD != 12_345_678 || g.SpentMicroUSD != 2_500_000 || g.SpentUSD != 2_500_000 {
		t.Errorf("bea: got %+v, want limit 12.345678, spent 2.5", g)
	}
	if g := byHandle["cal-budget"]; g.LimitMicroUSD != 3_000_000 || g.UserID == nil || *g.UserID != cal.ID {
		t.Errorf("cal: got %+v, want limit 3 and her id", g)
	}

	// Remove cal's and the org budget; bea's stays.
	a.mustDo("PUT", "/api/v1/admin/budgets", tok, `{"org":null,"users":[{"user":"cal-budget","limit_usd":null}]}`, http.StatusOK, &got)
	if got.Org != nil || len(got.Users) != 1 || got.Users[0].Handle != "bea-budget" {
		t.Errorf("after removal: got org %+v users %+v, want only bea", got.Org, got.Users)
	}
	a.mustDo("GET", "/api/v1/admin/budgets", tok, nil, http.StatusOK, &got)
	if len(got.Users) != 1 {
		t.Errorf("GET: got %+v, want bea's budget", got.Users)
	}

	for _, tt := range []struct {
		body, field string
	}{
		{`{"users":[{"user":"nobody-here","limit_usd":1}]}`, "users[0].user"},
		{`{"users":[{"user":"bea-budget","limit_usd":-1}]}`, "users[0].limit_usd"},
		{`{"users":[{"user":"bea-budget","limit_usd":1.0000001}]}`, "users[0].limit_usd"},
		{`{"users":[{"user":"bea-budget"}]}`, "users[0].limit_usd"},
		{`{"org":{"limit_usd":"lots"}}`, "org.limit_usd"},
		{`{"org":5}`, "org"},
		{`{"users":5}`, "users"},
		{`not json`, "body"},
	} {
		resp, body := a.do("PUT", "/api/v1/admin/budgets", tok, tt.body)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: got %d, want 422", tt.body, resp.StatusCode)
			continue
		}
		if p := problemOf(t, resp, body); p.Field != tt.field {
			t.Errorf("%s: got field %q, want %q", tt.body, p.Field, tt.field)
		}
	}
}

func TestDashboardPage(t *testing.T) {
	a := newTestAPI(t)
	resp, body := a.do("GET", "/admin", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("got %d %s, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	i := strings.Index(csp, "'nonce-")
	if i < 0 || !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q: want a nonce, default-src 'none' and connect-src 'self'", csp)
	}
	nonce, _, _ := strings.Cut(csp[i+len("'nonce-"):], "'")
	if got := strings.Count(string(body), `nonce="`+nonce+`"`); got != 2 {
		t.Errorf("page carries the nonce %d times, want 2 (style and script)", got)
	}
	for _, want := range []string{`id="chart"`, `id="token"`, "sessionStorage", "/api/v1/admin/usage?group_by=day"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page: want %s", want)
		}
	}
	// The admin token lives in this tab's sessionStorage only: never in
	// localStorage (it would outlive the tab) nor in a URL.
	for _, banned := range []string{"localStorage", "?token=", "&token="} {
		if strings.Contains(string(body), banned) {
			t.Errorf("page mentions %s", banned)
		}
	}
	_, body2 := a.do("GET", "/admin", "", nil)
	if bytes.Contains(body2, []byte(nonce)) {
		t.Error("nonce reused across requests")
	}
}

func TestCSVCellDefusesFormulas(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ana", "ana"},
		{"=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
		{"  =1+1", "'  =1+1"},
		{"+61", "'+61"},
		{"-x", "'-x"},
		{"@sum", "'@sum"},
		{"\tcmd", "'\tcmd"},
		{"gpt-4o", "gpt-4o"},
		{"  plain", "  plain"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := csvCell(tt.in); got != tt.want {
			t.Errorf("csvCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
