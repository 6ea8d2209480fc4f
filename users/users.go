// Package users holds the people who own conversations: their handles,
// roles and time zones, the chat identities (Slack, Teams) that map to them,
// and the API tokens they authenticate with. Every surface needs it, which is
// why it is a package of its own rather than part of conversations.
package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Roles a user can have.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Errors returned by the store.
var (
	ErrNotFound     = errors.New("user not found")
	ErrUnauthorized = errors.New("invalid or revoked token")
	ErrInvalid      = errors.New("invalid user")
)

// User is a person opsbot answers.
type User struct {
	ID          uuid.UUID
	Handle      string
	DisplayName string
	Role        string
	TimeZone    string
	CreatedAt   time.Time
}

// IsAdmin reports whether the user may read org-wide figures.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// Location is the user's IANA zone, UTC when it does not load.
func (u User) Location() *time.Location {
	if loc, err := time.LoadLocation(u.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

// DBTX is what the store needs from a pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads and writes users, identities and tokens.
type Store struct {
	db          DBTX
	defaultZone string
}

// NewStore returns a store on db; new users get defaultZone (an IANA name).
func NewStore(db DBTX, defaultZone string) *Store {
	if defaultZone == "" {
		defaultZone = "Asia/Singapore"
	}
	return &Store{db: db, defaultZone: defaultZone}
}

const userColumns = "id, handle, display_name, role, time_zone, created_at"

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Handle, &u.DisplayName, &u.Role, &u.TimeZone, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

// Ensure returns the user with handle, creating it with role if it is new.
// An existing user's role is raised to admin when role is admin, never lowered.
func (s *Store) Ensure(ctx context.Context, handle, role string) (User, error) {
	handle = strings.TrimSpace(handle)
	if handle == "" || len(handle) > 200 {
		return User{}, fmt.Errorf("%w: handle must be 1 to 200 characters", ErrInvalid)
	}
	if role != RoleUser && role != RoleAdmin {
		return User{}, fmt.Errorf("%w: role %q", ErrInvalid, role)
	}
	u, err := scanUser(s.db.QueryRow(ctx, `
		INSERT INTO users (handle, display_name, role, time_zone)
		VALUES ($1, $1, $2, $3)
		ON CONFLICT (handle) DO UPDATE
		SET role = CASE WHEN EXCLUDED.role = 'admin' THEN 'admin' ELSE users.role END
		RETURNING `+userColumns, handle, role, s.defaultZone))
	if err != nil {
		return User{}, fmt.Errorf("ensure user %q: %w", handle, err)
	}
	return u, nil
}

// Get returns the user with id.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

// GetMany returns the users with the given ids, by id; ids that name no
// user are left out.
func (s *Store) GetMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]User, error) {
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("get users: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("get users: %w", err)
	}
	out := make(map[uuid.UUID]User, len(list))
	for _, u := range list {
		out[u.ID] = u
	}
	return out, nil
}

// GetByHandle returns the user with handle.
func (s *Store) GetByHandle(ctx context.Context, handle string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE handle = $1`, handle))
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", handle, err)
	}
	return u, nil
}

// Identity is a person's account on a chat platform.
type Identity struct {
	Platform    string // "slack" or "teams"
	Tenant      string // Slack team id or Teams tenant id
	ExternalID  string // Slack user id or Teams aadObjectId
	DisplayName string // used only when the user is created
}

// ResolveIdentity returns the user behind a chat identity, creating both the
// user (handle "platform:tenant:id") and the link on first contact. Safe under
// concurrent first contacts of the same person.
func (s *Store) ResolveIdentity(ctx context.Context, id Identity) (User, error) {
	if id.Platform == "" || id.Tenant == "" || id.ExternalID == "" {
		return User{}, fmt.Errorf("%w: identity needs platform, tenant and external id", ErrInvalid)
	}
	u, err := scanUser(s.db.QueryRow(ctx, `
		SELECT u.id, u.handle, u.display_name, u.role, u.time_zone, u.created_at
		FROM identities i JOIN users u ON u.id = i.user_id
		WHERE i.platform = $1 AND i.tenant = $2 AND i.external_id = $3`,
		id.Platform, id.Tenant, id.ExternalID))
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("resolve identity: %w", err)
	}
	handle := id.Platform + ":" + id.Tenant + ":" + id.ExternalID
	name := id.DisplayName
	if name == "" {
		name = handle
	}
	// One statement: create the user if needed, then link the identity; a
	// concurrent first contact loses the race harmlessly on both conflicts.
	u, err = scanUser(s.db.QueryRow(ctx, `
		WITH nu AS (
			INSERT INTO users (handle, display_name, role, time_zone)
			VALUES ($4, $5, 'user', $6)
			ON CONFLICT (handle) DO UPDATE SET handle = EXCLUDED.handle
			RETURNING `+userColumns+`
		), link AS (
			INSERT INTO identities (platform, tenant, external_id, user_id)
			SELECT $1, $2, $3, id FROM nu
			ON CONFLICT DO NOTHING
		)
		SELECT `+userColumns+` FROM nu`,
		id.Platform, id.Tenant, id.ExternalID, handle, name, s.defaultZone))
	if err != nil {
		return User{}, fmt.Errorf("create user for identity: %w", err)
	}
	return u, nil
}

// SetDisplayName changes the name the user is shown by (a chat profile's
// name, which can change after first contact).
func (s *Store) SetDisplayName(ctx context.Context, id uuid.UUID, name string) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: display name must be 1 to 200 characters", ErrInvalid)
	}
	tag, err := s.db.Exec(ctx, `UPDATE users SET display_name = $2 WHERE id = $1`, id, name)
	if err != nil {
		return fmt.Errorf("set display name: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetTimeZone changes the zone the user's days are counted in.
func (s *Store) SetTimeZone(ctx context.Context, id uuid.UUID, zone string) error {
	// "Local" would load as the server's own zone, not the person's.
	if _, err := time.LoadLocation(zone); err != nil || zone == "" || zone == "Local" {
		return fmt.Errorf("%w: unknown time zone %q", ErrInvalid, zone)
	}
	tag, err := s.db.Exec(ctx, `UPDATE users SET time_zone = $2 WHERE id = $1`, id, zone)
	if err != nil {
		return fmt.Errorf("set time zone: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
