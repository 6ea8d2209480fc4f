package conversations_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/users"
)

// pool is this package's fresh database, made in TestMain.
var pool *pgxpool.Pool

func TestMain(m *testing.M) {
	os.Exit(testdb.RunMain(m, &pool))
}

func mustUser(tb testing.TB, handle string) users.User {
	tb.Helper()
	u, err := users.NewStore(pool, "Asia/Singapore").Ensure(context.Background(), handle, users.RoleUser)
	if err != nil {
		tb.Fatalf("ensure user %s: %v", handle, err)
	}
	return u
}

func TestCreateGetOwnership(t *testing.T) {
	ctx := context.Background()
	s := conversations.NewStore(pool)
	alice, bob := mustUser(t, "alice-own"), mustUser(t, "bob-own")
	c, err := s.Create(ctx, conversations.NewConversation{OwnerID: alice.ID, Source: conversations.SourceAPI})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if c.Title != conversations.DefaultTitle {
		t.Errorf("title: got %q, want %q", c.Title, conversations.DefaultTitle)
	}
	if _, err := s.Get(ctx, bob.ID, c.ID); !errors.Is(err, conversations.ErrNotFound) {
		t.Errorf("bob get alice's: got %v, want ErrNotFound", err)
	}
	got, err := s.Get(ctx, alice.ID, c.ID)
	if err != nil || got.ID != c.ID {
		t.Errorf("alice get: got %v %v", got.ID, err)
	}
}

// Concurrent first messages in one chat thread end in one conversation.
func TestFindOrCreateByThreadConcurrent(t *testing.T) {
	ctx := context.Background()
	s := conversations.NewStore(pool)
	u := mustUser(t, "thread-racer")
	// A thread of its own per run, so the test repeats under -count=N.
	key := conversations.ThreadKey{Platform: "slack", Tenant: "T1", Channel: "C1", Thread: "1700000000." + uuid.NewString()[:6]}
	const racers = 8
	ids := make(chan conversations.Conversation, racers)
	created := make(chan bool, racers)
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			c, isNew, err := s.FindOrCreateByThread(ctx, conversations.NewConversation{
				OwnerID: u.ID, Source: conversations.SourceSlack, Title: "disk full", Thread: &key})
			if err != nil {
				t.Errorf("find or create: %v", err)
				return
			}
			ids <- c
			created <- isNew
		})
	}
	wg.Wait()
	close(ids)
	close(created)
	first := <-ids
	for c := range ids {
		if c.ID != first.ID {
			t.Errorf("two conversations for one thread: %s and %s", first.ID, c.ID)
		}
	}
	news := 0
	for n := range created {
		if n {
			news++
		}
	}
	if news != 1 {
		t.Errorf("created reported %d times, want once", news)
	}
	if first.Thread == nil || *first.Thread != key {
		t.Errorf("thread key: got %+v, want %+v", first.Thread, key)
	}
	got, err := s.GetByThread(ctx, key)
	if err != nil || got.ID != first.ID {
		t.Errorf("GetByThread: got %v %v", got.ID, err)
	}
}

// Messages written in one transaction keep their order.
func TestMessagesKeepOrderWithinTransaction(t *testing.T) {
	ctx := context.Background()
	u := mustUser(t, "order-user")
	c, err := conversations.NewStore(pool).Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: conversations.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		s := conversations.NewStore(tx)
		for _, text := range []string{"q1", "a1", "q2", "a2"} {
			role := conversations.RoleUser
			if text[0] == 'a' {
				role = conversations.RoleAssistant
			}
			if _, err := s.AppendMessage(ctx, conversations.NewMessage{ConversationID: c.ID, Role: role, Content: text}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recent, err := conversations.NewStore(pool).Recent(ctx, c.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range recent {
		got = append(got, m.Content)
	}
	if strings.Join(got, ",") != "a1,q2,a2" {
		t.Errorf("recent: got %v, want [a1 q2 a2]", got)
	}
}

func TestValidationErrors(t *testing.T) {
	ctx := context.Background()
	s := conversations.NewStore(pool)
	u := mustUser(t, "validation-user")
	tests := []struct {
		name  string
		err   error
		field string
	}{
		{"long title", func() error {
			_, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: "api", Title: strings.Repeat("x", 201)})
			return err
		}(), "title"},
		{"NUL in title", func() error {
			_, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: "api", Title: "disk\x00full"})
			return err
		}(), "title"},
		{"NUL in new title", func() error {
			c, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: "api"})
			if err != nil {
				return err
			}
			_, err = s.Rename(ctx, u.ID, c.ID, "a\x00b")
			return err
		}(), "title"},
		{"bad source", func() error {
			_, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: "fax"})
			return err
		}(), "source"},
		{"partial thread", func() error {
			_, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: "slack", Thread: &conversations.ThreadKey{Platform: "slack"}})
			return err
		}(), "thread"},
		{"empty content", conversations.ValidateContent("  \n"), "content"},
		{"limit", func() error {
			_, err := s.List(ctx, u.ID, conversations.ListOptions{PageOptions: conversations.PageOptions{Limit: 101}})
			return err
		}(), "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ve *conversations.ValidationError
			if !errors.As(tt.err, &ve) || ve.Field != tt.field {
				t.Errorf("got %v, want a ValidationError on %q", tt.err, tt.field)
			}
		})
	}
	var tl *conversations.TooLargeError
	if err := conversations.ValidateContent(strings.Repeat("a", conversations.MaxContentBytes+1)); !errors.As(err, &tl) {
		t.Errorf("oversize content: got %v, want TooLargeError", err)
	}
	if err := conversations.ValidateContent(strings.Repeat("a", conversations.MaxContentBytes)); err != nil {
		t.Errorf("content at the limit: got %v, want nil", err)
	}
}

// Titles are redacted wherever they are set; the length limit is on what
// the caller sent, and a redacted title is cut to it.
func TestNormalizeTitleRedacts(t *testing.T) {
	const token = "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	got, err := conversations.NormalizeTitle("  bot token " + token + " leaked  ")
	if err != nil || got != "bot token [REDACTED:slack-token] leaked" {
		t.Errorf("got %q, %v; want %q", got, err, "bot token [REDACTED:slack-token] leaked")
	}
	// 190 runes sent; the marker makes the redacted text 5 runes longer
	// than the 200 allowed ("pwd=abcd" is 8 runes, "pwd=[REDACTED:password]"
	// 23), so it is cut to 199 runes and an ellipsis.
	long := strings.Repeat("é", 182) + "pwd=abcd"
	got, err = conversations.NormalizeTitle(long)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got); n != conversations.MaxTitleRunes || strings.Contains(got, "abcd") || !strings.HasSuffix(got, "…") {
		t.Errorf("got %q (%d runes), want %d runes ending in … without the password", got, n, conversations.MaxTitleRunes)
	}
}

// A turn key stores one message per role; a second is ErrTurnStored and the
// stored ones come back by key.
func TestTurnKey(t *testing.T) {
	ctx := context.Background()
	s := conversations.NewStore(pool)
	u := mustUser(t, "turnkey-user-"+uuid.NewString())
	c, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: conversations.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	key := "api:" + uuid.NewString()
	for _, role := range []string{conversations.RoleUser, conversations.RoleAssistant} {
		if _, err := s.AppendMessage(ctx, conversations.NewMessage{TurnKey: key, ConversationID: c.ID, Role: role, Content: role}); err != nil {
			t.Fatalf("append %s: %v", role, err)
		}
	}
	_, err = s.AppendMessage(ctx, conversations.NewMessage{TurnKey: key, ConversationID: c.ID, Role: conversations.RoleUser, Content: "again"})
	if !errors.Is(err, conversations.ErrTurnStored) {
		t.Errorf("second user message of the turn: got %v, want ErrTurnStored", err)
	}
	got, err := s.MessagesOfTurn(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Role != conversations.RoleUser || got[1].Role != conversations.RoleAssistant {
		t.Errorf("messages of turn: got %+v, want the user message then the reply", got)
	}
	if none, err := s.MessagesOfTurn(ctx, "api:never"); err != nil || len(none) != 0 {
		t.Errorf("unknown turn: got %d messages, %v", len(none), err)
	}
}

// One poster per message: a claim marks it, a second claim finds it busy
// until the mark is older than the lease, and a posted message is done.
func TestClaimPost(t *testing.T) {
	ctx := context.Background()
	s := conversations.NewStore(pool)
	u := mustUser(t, "poster-"+uuid.NewString()[:8])
	c, err := s.Create(ctx, conversations.NewConversation{OwnerID: u.ID, Source: conversations.SourceSlack})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.AppendMessage(ctx, conversations.NewMessage{ConversationID: c.ID, Role: conversations.RoleAssistant, Content: "answer"})
	if err != nil {
		t.Fatal(err)
	}
	claim := func(lease time.Duration, want int) {
		t.Helper()
		if got, err := s.ClaimPost(ctx, m.ID, lease); err != nil || got != want {
			t.Fatalf("ClaimPost(lease %v) = %d, %v; want %d", lease, got, err, want)
		}
	}
	claim(time.Hour, conversations.PostClaimed)
	claim(time.Hour, conversations.PostBusy)
	claim(0, conversations.PostClaimed) // the first poster's mark has expired: take over
	if err := s.ReleasePost(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	claim(time.Hour, conversations.PostClaimed) // released: free again
	if err := s.SetPlatformMessageID(ctx, m.ID, "1764560000.000300"); err != nil {
		t.Fatal(err)
	}
	claim(0, conversations.PostDone)
	if err := s.ReleasePost(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	claim(0, conversations.PostDone) // releasing never undoes a real post
}
