package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/users"
)

func TestAuthRequired(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "auth-user-"+uuid.NewString()[:8], false)
	store := users.NewStore(testPool, "Asia/Singapore")
	revoked, err := store.Ensure(context.Background(), "auth-revoked", users.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	tk, revokedTok, err := store.CreateToken(context.Background(), revoked.ID, "soon revoked")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.RevokeToken(context.Background(), tk.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		header string
	}{
		{"no header", ""},
		{"not bearer", "Basic " + tok},
		{"empty bearer", "Bearer "},
		{"unknown token", "Bearer opsbot_nottherealtoken"},
		{"foreign format", "Bearer xoxb-123"},
		{"revoked token", "Bearer " + revokedTok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.srv.URL+"/api/v1/conversations", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := a.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %d, want 401", resp.StatusCode)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("no WWW-Authenticate header")
			}
		})
	}
	a.mustDo("GET", "/api/v1/conversations", tok, nil, http.StatusOK, nil)
}

func TestConversationLifecycle(t *testing.T) {
	a := newTestAPI(t)
	owner, tok := mustToken(t, "life-user-"+uuid.NewString()[:8], false)

	var c conversationJSON
	resp := a.mustDo("POST", "/api/v1/conversations", tok, map[string]string{"title": "  DB failover in sg  "}, http.StatusCreated, &c)
	if c.Title != "DB failover in sg" || c.Source != "api" || c.OwnerID != owner.ID || c.IsArchived || c.MessageCount != 0 {
		t.Fatalf("created: got %+v", c)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/conversations/"+c.ID.String() {
		t.Errorf("Location: got %q", loc)
	}
	var untitled conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, nil, http.StatusCreated, &untitled)
	if untitled.Title != conversations.DefaultTitle {
		t.Errorf("default title: got %q, want %q", untitled.Title, conversations.DefaultTitle)
	}

	var got conversationJSON
	a.mustDo("GET", "/api/v1/conversations/"+c.ID.String(), tok, nil, http.StatusOK, &got)
	if got.ID != c.ID {
		t.Errorf("get: got %s, want %s", got.ID, c.ID)
	}

	var renamed conversationJSON
	a.mustDo("PUT", "/api/v1/conversations/"+c.ID.String(), tok, map[string]string{"title": "Renamed"}, http.StatusOK, &renamed)
	if renamed.Title != "Renamed" || !renamed.UpdatedAt.After(c.UpdatedAt) && !renamed.UpdatedAt.Equal(c.UpdatedAt) {
		t.Errorf("rename: got %+v", renamed)
	}

	var arch archiveResponse
	a.mustDo("POST", "/api/v1/conversations/"+c.ID.String()+"/archive", tok, nil, http.StatusOK, &arch)
	if arch.Message != "Conversation archived successfully" || !arch.Conversation.IsArchived || arch.Conversation.ArchivedAt == nil {
		t.Errorf("archive: got %+v", arch)
	}
	if ids := listIDs(t, a, tok, ""); contains(ids, c.ID) || !contains(ids, untitled.ID) {
		t.Errorf("default list after archive: got %v; want %s hidden and %s shown", ids, c.ID, untitled.ID)
	}
	if ids := listIDs(t, a, tok, "include_archived=true"); !contains(ids, c.ID) {
		t.Errorf("include_archived list: %s missing from %v", c.ID, ids)
	}

	a.mustDo("POST", "/api/v1/conversations/"+c.ID.String()+"/unarchive", tok, nil, http.StatusOK, &arch)
	if arch.Conversation.IsArchived || arch.Conversation.ArchivedAt != nil {
		t.Errorf("unarchive: got %+v", arch.Conversation)
	}
	if ids := listIDs(t, a, tok, ""); !contains(ids, c.ID) {
		t.Errorf("list after unarchive: %s missing", c.ID)
	}

	a.mustDo("DELETE", "/api/v1/conversations/"+c.ID.String(), tok, nil, http.StatusNoContent, nil)
	resp, data := a.do("GET", "/api/v1/conversations/"+c.ID.String(), tok, nil)
	if resp.StatusCode != http.StatusNotFound || problemOf(t, resp, data).Detail != "Conversation not found" {
		t.Errorf("get after delete: got %d %s", resp.StatusCode, data)
	}
	resp, _ = a.do("DELETE", "/api/v1/conversations/"+c.ID.String(), tok, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: got %d, want 404", resp.StatusCode)
	}
}

func listIDs(t *testing.T, a *testAPI, tok, query string) []uuid.UUID {
	t.Helper()
	var cs []conversationJSON
	a.mustDo("GET", "/api/v1/conversations?"+query, tok, nil, http.StatusOK, &cs)
	ids := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

func contains(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// A conversation owned by someone else must answer exactly like a missing one.
func TestOwnershipIsolation(t *testing.T) {
	a := newTestAPI(t)
	_, aliceTok := mustToken(t, "iso-alice-"+uuid.NewString()[:8], false)
	_, bobTok := mustToken(t, "iso-bob-"+uuid.NewString()[:8], false)
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", aliceTok, map[string]string{"title": "alice's"}, http.StatusCreated, &c)
	missing := uuid.New()

	reqs := []struct {
		method, suffix string
		body           any
	}{
		{"GET", "", nil},
		{"PUT", "", map[string]string{"title": "mine now"}},
		{"DELETE", "", nil},
		{"POST", "/archive", nil},
		{"POST", "/unarchive", nil},
		{"GET", "/messages", nil},
		{"POST", "/messages", map[string]string{"content": "what is in here?"}},
	}
	for _, r := range reqs {
		t.Run(r.method+r.suffix, func(t *testing.T) {
			fr, foreign := a.do(r.method, "/api/v1/conversations/"+c.ID.String()+r.suffix, bobTok, r.body)
			mr, miss := a.do(r.method, "/api/v1/conversations/"+missing.String()+r.suffix, bobTok, r.body)
			if fr.StatusCode != http.StatusNotFound || mr.StatusCode != http.StatusNotFound {
				t.Fatalf("got %d (foreign) and %d (missing), want 404 for both", fr.StatusCode, mr.StatusCode)
			}
			if string(foreign) != string(miss) {
				t.Errorf("bodies differ: foreign %s, missing %s", foreign, miss)
			}
		})
	}
	if ids := listIDs(t, a, bobTok, "include_archived=true"); contains(ids, c.ID) {
		t.Errorf("bob's list shows alice's conversation")
	}
	var still conversationJSON
	a.mustDo("GET", "/api/v1/conversations/"+c.ID.String(), aliceTok, nil, http.StatusOK, &still)
	if still.Title != "alice's" || still.IsArchived {
		t.Errorf("alice's conversation was changed by bob: %+v", still)
	}
}

func TestValidation(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "val-user-"+uuid.NewString()[:8], false)
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, nil, http.StatusCreated, &c)
	base := "/api/v1/conversations/" + c.ID.String()
	tests := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"bad uuid", "GET", "/api/v1/conversations/not-a-uuid", nil, "id"},
		{"bad uuid on messages", "GET", "/api/v1/conversations/123/messages", nil, "id"},
		{"limit zero", "GET", "/api/v1/conversations?limit=0", nil, "limit"},
		{"limit too big", "GET", "/api/v1/conversations?limit=101", nil, "limit"},
		{"limit not a number", "GET", "/api/v1/conversations?limit=ten", nil, "limit"},
		{"negative skip", "GET", "/api/v1/conversations?skip=-1", nil, "skip"},
		{"skip with cursor", "GET", "/api/v1/conversations?skip=2&cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, "skip"},
		{"bad cursor", "GET", "/api/v1/conversations?cursor=%21%21", nil, "cursor"},
		{"bad include_archived", "GET", "/api/v1/conversations?include_archived=maybe", nil, "include_archived"},
		{"messages limit", "GET", base + "/messages?limit=500", nil, "limit"},
		{"messages cursor", "GET", base + "/messages?cursor=zz", nil, "cursor"},
		{"empty title", "POST", "/api/v1/conversations", map[string]string{"title": "   "}, "title"},
		{"long title", "POST", "/api/v1/conversations", map[string]string{"title": strings.Repeat("é", 201)}, "title"},
		{"title wrong type", "POST", "/api/v1/conversations", `{"title": 42}`, "title"},
		{"NUL in title", "POST", "/api/v1/conversations", `{"title": "a\u0000b"}`, "title"},
		{"NUL in new title", "PUT", base, `{"title": "a\u0000b"}`, "title"},
		{"malformed json", "POST", "/api/v1/conversations", `{"title": `, "body"},
		{"two objects", "PUT", base, `{"title":"a"}{"title":"b"}`, "body"},
		{"trailing brace", "POST", "/api/v1/conversations", `{"title":"a"}}`, "body"},
		{"trailing bracket", "PUT", base, `{"title":"a"}]`, "body"},
		{"second value", "POST", "/api/v1/conversations", `{"title":"a"} 1`, "body"},
		{"trailing brace on a message", "POST", base + "/messages", `{"content":"hi"}}`, "body"},
		{"cursor in 5000 BC, before PostgreSQL's range", "GET", "/api/v1/conversations?cursor=" + rawCursor(-219950000000000000), nil, "cursor"},
		{"cursor at the smallest time", "GET", "/api/v1/conversations?cursor=" + rawCursor(math.MinInt64), nil, "cursor"},
		{"cursor a second before year 1", "GET", "/api/v1/conversations?cursor=" + rawCursor(-62135596800000000-1), nil, "cursor"},
		{"cursor after year 9999", "GET", "/api/v1/conversations?cursor=" + rawCursor(253402300800000000), nil, "cursor"},
		{"cursor at the largest time", "GET", "/api/v1/conversations?cursor=" + rawCursor(math.MaxInt64), nil, "cursor"},
		{"rename without title", "PUT", base, `{}`, "title"},
		{"rename empty body", "PUT", base, "", "body"},
		{"rename null title", "PUT", base, `{"title": null}`, "title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := a.do(tt.method, tt.path, tok, tt.body)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("got %d, want 422; body %s", resp.StatusCode, data)
			}
			if p := problemOf(t, resp, data); p.Field != tt.field || !strings.Contains(p.Detail, tt.field) {
				t.Errorf("field: got %q (detail %q), want %q", p.Field, p.Detail, tt.field)
			}
		})
	}
}

// rawCursor is a conversation cursor made by hand, as a client crafting one
// would: 8 bytes of big-endian microseconds since 1970, then a 16-byte id.
func rawCursor(micros int64) string {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b, uint64(micros))
	return base64.RawURLEncoding.EncodeToString(b)
}

// Cursors a client can craft but that lie inside what the database can
// compare page normally (here: to nothing), never 5xx.
func TestCraftedCursorsInRange(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "cursor-user-"+uuid.NewString()[:8], false)
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, nil, http.StatusCreated, &c)
	msgCursor := func(seq uint64) string {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, seq)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, path := range []string{
		"/api/v1/conversations?cursor=" + rawCursor(-62135596800000000), // 0001-01-01T00:00:00Z
		"/api/v1/conversations?cursor=" + rawCursor(253402300799999999), // 9999-12-31T23:59:59.999999Z
		"/api/v1/conversations?skip=9223372036854775807",
		"/api/v1/conversations/" + c.ID.String() + "/messages?cursor=" + msgCursor(1<<63),
		"/api/v1/conversations/" + c.ID.String() + "/messages?cursor=" + msgCursor(1<<63-1),
		"/api/v1/conversations/" + c.ID.String() + "/messages?skip=9223372036854775807",
	} {
		var out []json.RawMessage
		a.mustDo("GET", path, tok, nil, http.StatusOK, &out)
	}
}

// A title is redacted when it is set through REST, as when the engine
// derives one from a first message: the listing never shows the secret.
func TestTitlesAreRedacted(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "title-user-"+uuid.NewString()[:8], false)
	const secret = "ghp_1A2b3C4d5E6f7G8h9I0j1K2l3M4n5O6p7Q8r"
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, map[string]string{"title": "deploy with " + secret}, http.StatusCreated, &c)
	if c.Title != "deploy with [REDACTED:github-token]" {
		t.Errorf("created title: got %q, want %q", c.Title, "deploy with [REDACTED:github-token]")
	}
	a.mustDo("PUT", "/api/v1/conversations/"+c.ID.String(), tok,
		map[string]string{"title": "db DATABASE_URL=postgres://app:Sup3rS3cret@db/app"}, http.StatusOK, &c)
	if want := "db DATABASE_URL=postgres://app:[REDACTED:password]@db/app"; c.Title != want {
		t.Errorf("renamed title: got %q, want %q", c.Title, want)
	}
	var stored string
	if err := testPool.QueryRow(context.Background(), `SELECT title FROM conversations WHERE id = $1`, c.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "Sup3rS3cret") || strings.Contains(stored, secret) {
		t.Errorf("stored title %q holds a secret", stored)
	}
}

func TestBodyTooLarge(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "big-user-"+uuid.NewString()[:8], false)
	body := `{"title":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	resp, data := a.do("POST", "/api/v1/conversations", tok, body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413; body %s", resp.StatusCode, data)
	}
	problemOf(t, resp, data)
}

// Keyset pages neither repeat nor skip rows while new conversations arrive
// between requests; offset pages are the seed's skip/limit.
func TestListPaging(t *testing.T) {
	a := newTestAPI(t)
	_, tok := mustToken(t, "page-user-"+uuid.NewString()[:8], false)
	const n = 25
	want := map[uuid.UUID]bool{}
	for i := range n {
		var c conversationJSON
		a.mustDo("POST", "/api/v1/conversations", tok, map[string]string{"title": fmt.Sprintf("c%02d", i)}, http.StatusCreated, &c)
		want[c.ID] = true
	}

	t.Run("cursor", func(t *testing.T) {
		seen := map[uuid.UUID]int{}
		next := "/api/v1/conversations?limit=7"
		pages := 0
		for next != "" {
			var cs []conversationJSON
			resp := a.mustDo("GET", next, tok, nil, http.StatusOK, &cs)
			for _, c := range cs {
				seen[c.ID]++
			}
			// Rows inserted between pages land before page one, never in the middle.
			a.mustDo("POST", "/api/v1/conversations", tok, map[string]string{"title": "interloper"}, http.StatusCreated, nil)
			next = nextLink(t, resp)
			if pages++; pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("conversation %s seen %d times, want once", id, seen[id])
			}
		}
		if pages != 4 {
			t.Errorf("pages: got %d, want 4 (25 rows by 7)", pages)
		}
	})

	t.Run("offset", func(t *testing.T) {
		var all, p1, p2 []conversationJSON
		a.mustDo("GET", "/api/v1/conversations?limit=100", tok, nil, http.StatusOK, &all)
		a.mustDo("GET", "/api/v1/conversations?skip=0&limit=5", tok, nil, http.StatusOK, &p1)
		a.mustDo("GET", "/api/v1/conversations?skip=5&limit=5", tok, nil, http.StatusOK, &p2)
		for i, c := range append(p1, p2...) {
			if c.ID != all[i].ID {
				t.Fatalf("offset row %d: got %s, want %s", i, c.ID, all[i].ID)
			}
		}
		for i := 1; i < len(all); i++ {
			if all[i].CreatedAt.After(all[i-1].CreatedAt) {
				t.Fatalf("not newest first at %d", i)
			}
		}
	})
}

func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	l := resp.Header.Get("Link")
	if l == "" {
		return ""
	}
	start, end := strings.Index(l, "<"), strings.Index(l, ">")
	if start != 0 || end < 0 || !strings.HasSuffix(l, `; rel="next"`) {
		t.Fatalf("malformed Link header %q", l)
	}
	u, err := url.Parse(l[1:end])
	if err != nil {
		t.Fatalf("Link url: %v", err)
	}
	return u.String()
}

// Deleting a conversation removes its messages and keeps its spend.
func TestDeleteCascadeKeepsUsage(t *testing.T) {
	ctx := context.Background()
	a := newTestAPI(t)
	owner, tok := mustToken(t, "cascade-user-"+uuid.NewString()[:8], false)
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, nil, http.StatusCreated, &c)
	store := conversations.NewStore(testPool)
	m, err := store.AppendMessage(ctx, conversations.NewMessage{ConversationID: c.ID, Role: "assistant", Content: "hi", TotalTokens: 30, CostMicroUSD: 1234})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testPool.Exec(ctx, `INSERT INTO usage_events (user_id, conversation_id, message_id, source, model, prompt_tokens, completion_tokens, cost_micro_usd)
		VALUES ($1, $2, $3, 'api', 'gpt-4o-mini', 20, 10, 1234)`, owner.ID, c.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	a.mustDo("DELETE", "/api/v1/conversations/"+c.ID.String(), tok, nil, http.StatusNoContent, nil)

	var msgs int
	if err := testPool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE conversation_id = $1`, c.ID).Scan(&msgs); err != nil {
		t.Fatal(err)
	}
	if msgs != 0 {
		t.Errorf("messages left: got %d, want 0", msgs)
	}
	var cost int64
	var convRef, msgRef *uuid.UUID
	if err := testPool.QueryRow(ctx, `SELECT cost_micro_usd, conversation_id, message_id FROM usage_events WHERE user_id = $1`, owner.ID).
		Scan(&cost, &convRef, &msgRef); err != nil {
		t.Fatalf("usage row gone: %v", err)
	}
	if cost != 1234 || convRef != nil || msgRef != nil {
		t.Errorf("usage row: got cost %d conv %v msg %v, want 1234 and NULL references", cost, convRef, msgRef)
	}
}

func TestListMessages(t *testing.T) {
	ctx := context.Background()
	a := newTestAPI(t)
	owner, tok := mustToken(t, "msg-user-"+uuid.NewString()[:8], false)
	var c conversationJSON
	a.mustDo("POST", "/api/v1/conversations", tok, nil, http.StatusCreated, &c)
	store := conversations.NewStore(testPool)
	for i := range 7 {
		role, author := "user", &owner.ID
		if i%2 == 1 {
			role, author = "assistant", nil
		}
		if _, err := store.AppendMessage(ctx, conversations.NewMessage{ConversationID: c.ID, AuthorID: author, Role: role,
			Content: fmt.Sprintf("m%d", i), Metadata: []byte(`{"model":"gpt-4o-mini"}`), PromptTokens: 5, CompletionTokens: 3, TotalTokens: 8, CostMicroUSD: 2500}); err != nil {
			t.Fatal(err)
		}
	}
	var got []messageJSON
	next := "/api/v1/conversations/" + c.ID.String() + "/messages?limit=3"
	for pages := 0; next != ""; pages++ {
		var page []messageJSON
		resp := a.mustDo("GET", next, tok, nil, http.StatusOK, &page)
		got = append(got, page...)
		next = nextLink(t, resp)
		if pages < 2 {
			// Messages arriving between pages come after the ones already
			// listed, neither repeating nor hiding any.
			if _, err := store.AppendMessage(ctx, conversations.NewMessage{ConversationID: c.ID, AuthorID: &owner.ID, Role: "user",
				Content: fmt.Sprintf("late%d", pages)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var contents []string
	for _, m := range got {
		contents = append(contents, m.Content)
	}
	if strings.Join(contents, ",") != "m0,m1,m2,m3,m4,m5,m6,late0,late1" {
		t.Fatalf("cursor pages with messages arriving between them: got %v", contents)
	}
	got = got[:7]
	for i, m := range got {
		if m.Content != fmt.Sprintf("m%d", i) {
			t.Errorf("message %d: got %q, want m%d (oldest first)", i, m.Content, i)
		}
		if m.Role == "assistant" && (m.Usage == nil || m.Usage.CostUSD != usd(2500) || m.Usage.Model != "gpt-4o-mini" || m.Usage.TotalTokens != 8) {
			t.Errorf("assistant usage: got %+v", m.Usage)
		}
		if m.Role == "user" && (m.Usage != nil || m.AuthorID == nil || *m.AuthorID != owner.ID) {
			t.Errorf("user message: got usage %v author %v", m.Usage, m.AuthorID)
		}
	}
	var conv conversationJSON
	a.mustDo("GET", "/api/v1/conversations/"+c.ID.String(), tok, nil, http.StatusOK, &conv)
	if conv.MessageCount != 9 || conv.LastMessageAt == nil {
		t.Errorf("conversation counters: got count %d last %v", conv.MessageCount, conv.LastMessageAt)
	}
	var offset []messageJSON
	a.mustDo("GET", "/api/v1/conversations/"+c.ID.String()+"/messages?skip=5&limit=10", tok, nil, http.StatusOK, &offset)
	if len(offset) != 4 || offset[0].Content != "m5" {
		t.Errorf("offset page: got %d messages starting %v", len(offset), offset)
	}
}
