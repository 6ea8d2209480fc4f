package conversations

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what the store needs from a pool or a transaction, so the same
// methods can join a caller's transaction (a message and its usage row).
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads and writes conversations and messages.
type Store struct {
	db DBTX
}

// NewStore returns a store on a pool or a transaction.
func NewStore(db DBTX) *Store { return &Store{db: db} }

const conversationColumns = `id, owner_id, title, source,
	thread_platform, thread_tenant, thread_channel, thread_id,
	created_at, updated_at, last_message_at, message_count, archived_at`

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// scanConversation scans conversationColumns, then extra destinations for
// columns a query selects after them.
func scanConversation(row pgx.Row, extra ...any) (Conversation, error) {
	var c Conversation
	var platform, tenant, channel, thread *string
	err := row.Scan(append([]any{&c.ID, &c.OwnerID, &c.Title, &c.Source,
		&platform, &tenant, &channel, &thread,
		&c.CreatedAt, &c.UpdatedAt, &c.LastMessageAt, &c.MessageCount, &c.ArchivedAt}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Conversation{}, ErrNotFound
	}
	if err != nil {
		return Conversation{}, err
	}
	if platform != nil {
		c.Thread = &ThreadKey{Platform: *platform, Tenant: *tenant, Channel: *channel, Thread: *thread}
	}
	return c, nil
}

func collectConversations(rows pgx.Rows) ([]Conversation, error) {
	defer rows.Close()
	var out []Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// turnKeyIndex is the unique index (migration 002) that stores a turn once.
const turnKeyIndex = "messages_turn_key_role"

func mapWriteError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			if pgErr.ConstraintName == turnKeyIndex {
				return ErrTurnStored
			}
			return ErrConflict
		case "23503": // the owner or conversation is gone
			return ErrNotFound
		}
	}
	return err
}

// NewConversation is what Create writes.
type NewConversation struct {
	// ID, when set, is the new conversation's id; else one is made.
	ID      uuid.UUID
	OwnerID uuid.UUID
	Title   string // empty means DefaultTitle
	Source  string
	Thread  *ThreadKey
}

func (n *NewConversation) normalize() error {
	if n.Title == "" {
		n.Title = DefaultTitle
	}
	t, err := NormalizeTitle(n.Title)
	if err != nil {
		return err
	}
	n.Title = t
	if !validSource(n.Source) {
		return invalid("source", "must be one of api, slack, teams, console")
	}
	if n.Thread != nil {
		return n.Thread.validate()
	}
	return nil
}

func threadArgs(k *ThreadKey) (platform, tenant, channel, thread *string) {
	if k == nil {
		return nil, nil, nil, nil
	}
	return &k.Platform, &k.Tenant, &k.Channel, &k.Thread
}

// Create starts a conversation.
func (s *Store) Create(ctx context.Context, n NewConversation) (Conversation, error) {
	sql, args, err := createStatement(n)
	if err != nil {
		return Conversation{}, err
	}
	c, err := scanConversation(s.db.QueryRow(ctx, sql, args...))
	if err != nil {
		return Conversation{}, fmt.Errorf("create conversation: %w", mapWriteError(err))
	}
	return c, nil
}

// QueueCreate is Create queued on b (see QueueAppendMessage): the
// conversation is in *out once b's results are read without error. Set n.ID
// to name it in the batch's later statements.
func QueueCreate(b *pgx.Batch, n NewConversation, out *Conversation) error {
	sql, args, err := createStatement(n)
	if err != nil {
		return err
	}
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		c, err := scanConversation(row)
		if err != nil {
			return fmt.Errorf("create conversation: %w", mapWriteError(err))
		}
		*out = c
		return nil
	})
	return nil
}

// createStatement checks n and returns the statement that creates it.
func createStatement(n NewConversation) (string, []any, error) {
	if err := n.normalize(); err != nil {
		return "", nil, err
	}
	id := n.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	p, te, ch, th := threadArgs(n.Thread)
	return `
		INSERT INTO conversations (id, owner_id, title, source, thread_platform, thread_tenant, thread_channel, thread_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING ` + conversationColumns, []any{id, n.OwnerID, n.Title, n.Source, p, te, ch, th}, nil
}

// Get returns the owner's conversation; anyone else's is ErrNotFound.
func (s *Store) Get(ctx context.Context, ownerID, id uuid.UUID) (Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx,
		`SELECT `+conversationColumns+` FROM conversations WHERE id = $1 AND owner_id = $2`, id, ownerID))
	if err != nil {
		return Conversation{}, fmt.Errorf("get conversation %s: %w", id, err)
	}
	return c, nil
}

// Lookup returns a conversation whoever owns it. It is for callers that have
// already decided the caller may see it (a chat thread the person is in);
// API handlers use Get.
func (s *Store) Lookup(ctx context.Context, id uuid.UUID) (Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx,
		`SELECT `+conversationColumns+` FROM conversations WHERE id = $1`, id))
	if err != nil {
		return Conversation{}, fmt.Errorf("lookup conversation %s: %w", id, err)
	}
	return c, nil
}

// GetByThread returns the conversation of a chat thread.
func (s *Store) GetByThread(ctx context.Context, k ThreadKey) (Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE thread_platform = $1 AND thread_tenant = $2 AND thread_channel = $3 AND thread_id = $4`,
		k.Platform, k.Tenant, k.Channel, k.Thread))
	if err != nil {
		return Conversation{}, fmt.Errorf("get conversation by thread: %w", err)
	}
	return c, nil
}

// FindOrCreateByThread returns the conversation of a chat thread, starting
// one owned by n.OwnerID on first contact; created reports which happened.
// Concurrent first messages in one thread end in one conversation.
func (s *Store) FindOrCreateByThread(ctx context.Context, n NewConversation) (c Conversation, created bool, err error) {
	if n.Thread == nil {
		return Conversation{}, false, invalid("thread", "is required")
	}
	if err := n.normalize(); err != nil {
		return Conversation{}, false, err
	}
	for range 2 {
		c, err = s.GetByThread(ctx, *n.Thread)
		if err == nil {
			return c, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Conversation{}, false, err
		}
		p, te, ch, th := threadArgs(n.Thread)
		c, err = scanConversation(s.db.QueryRow(ctx, `
			INSERT INTO conversations (owner_id, title, source, thread_platform, thread_tenant, thread_channel, thread_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (thread_platform, thread_tenant, thread_channel, thread_id)
				WHERE thread_platform IS NOT NULL DO NOTHING
			RETURNING `+conversationColumns, n.OwnerID, n.Title, n.Source, p, te, ch, th))
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, ErrNotFound) { // ErrNotFound here means we lost the race: read again
			return Conversation{}, false, fmt.Errorf("create thread conversation: %w", mapWriteError(err))
		}
	}
	return Conversation{}, false, fmt.Errorf("find or create thread conversation: %w", ErrConflict)
}

// ListOptions selects conversations for List.
type ListOptions struct {
	PageOptions
	IncludeArchived bool
}

// Page is one page of a listing; Next is the cursor of the following page,
// empty on the last one.
type Page[T any] struct {
	Items []T
	Next  string
}

// List returns the owner's conversations, newest activity first.
func (s *Store) List(ctx context.Context, ownerID uuid.UUID, o ListOptions) (Page[Conversation], error) {
	if err := o.validate(); err != nil {
		return Page[Conversation]{}, err
	}
	q := `SELECT ` + conversationColumns + ` FROM conversations WHERE owner_id = $1`
	args := []any{ownerID}
	if !o.IncludeArchived {
		q += ` AND archived_at IS NULL`
	}
	if o.Cursor != "" {
		at, id, err := parseConversationCursor(o.Cursor)
		if err != nil {
			return Page[Conversation]{}, err
		}
		q += ` AND (activity_at, id) < ($2, $3)`
		args = append(args, at, id)
	}
	q += ` ORDER BY activity_at DESC, id DESC LIMIT ` + strconv.Itoa(o.Limit+1) + ` OFFSET ` + strconv.Itoa(o.Skip)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return Page[Conversation]{}, fmt.Errorf("list conversations: %w", err)
	}
	items, err := collectConversations(rows)
	if err != nil {
		return Page[Conversation]{}, fmt.Errorf("list conversations: %w", err)
	}
	p := Page[Conversation]{Items: items}
	if len(items) > o.Limit {
		p.Items = items[:o.Limit]
		p.Next = conversationCursor(p.Items[o.Limit-1])
	}
	return p, nil
}

// update runs a single-row UPDATE scoped to the owner and returns the row.
func (s *Store) update(ctx context.Context, what string, ownerID, id uuid.UUID, set string, args ...any) (Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx,
		`UPDATE conversations SET `+set+`, updated_at = now() WHERE id = $1 AND owner_id = $2 RETURNING `+conversationColumns,
		append([]any{id, ownerID}, args...)...))
	if err != nil {
		return Conversation{}, fmt.Errorf("%s conversation %s: %w", what, id, err)
	}
	return c, nil
}

// Rename changes a conversation's title.
func (s *Store) Rename(ctx context.Context, ownerID, id uuid.UUID, title string) (Conversation, error) {
	t, err := NormalizeTitle(title)
	if err != nil {
		return Conversation{}, err
	}
	return s.update(ctx, "rename", ownerID, id, `title = $3`, t)
}

// Archive hides a conversation from default listings; archiving twice keeps
// the first archive time.
func (s *Store) Archive(ctx context.Context, ownerID, id uuid.UUID) (Conversation, error) {
	return s.update(ctx, "archive", ownerID, id, `archived_at = coalesce(archived_at, now())`)
}

// Unarchive undoes Archive.
func (s *Store) Unarchive(ctx context.Context, ownerID, id uuid.UUID) (Conversation, error) {
	return s.update(ctx, "unarchive", ownerID, id, `archived_at = NULL`)
}

// Delete removes a conversation and its messages; its usage rows stay in the
// ledger with their conversation reference set to NULL.
func (s *Store) Delete(ctx context.Context, ownerID, id uuid.UUID) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM conversations WHERE id = $1 AND owner_id = $2`, id, ownerID)
	if err != nil {
		return fmt.Errorf("delete conversation %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete conversation %s: %w", id, ErrNotFound)
	}
	return nil
}
