package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// tokenPrefix marks opsbot tokens so secret scanners and the redactor can
// recognise them.
const tokenPrefix = "opsbot_"

// Token describes an API token; the secret itself is never stored.
type Token struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Name       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func hashToken(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// CreateToken issues a new token for user and returns it with the secret,
// which is shown once and kept only as a SHA-256 hash.
func (s *Store) CreateToken(ctx context.Context, userID uuid.UUID, name string) (Token, string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Token{}, "", fmt.Errorf("generate token: %w", err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t := Token{UserID: userID, Name: name}
	err := s.db.QueryRow(ctx, `
		INSERT INTO api_tokens (user_id, name, token_hash) VALUES ($1, $2, $3)
		RETURNING id, created_at`, userID, name, hashToken(secret)).Scan(&t.ID, &t.CreatedAt)
	if err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return t, secret, nil
}

// Authenticate returns the user a live token belongs to, or ErrUnauthorized.
// last_used_at is refreshed at most once a minute so that reads do not turn
// into a write per request.
func (s *Store) Authenticate(ctx context.Context, secret string) (User, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 200 {
		return User{}, ErrUnauthorized
	}
	var tokenID uuid.UUID
	var lastUsed *time.Time
	var u User
	err := s.db.QueryRow(ctx, `
		SELECT t.id, t.last_used_at, u.id, u.handle, u.display_name, u.role, u.time_zone, u.created_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL`, hashToken(secret)).
		Scan(&tokenID, &lastUsed, &u.ID, &u.Handle, &u.DisplayName, &u.Role, &u.TimeZone, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrUnauthorized
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if lastUsed == nil || time.Since(*lastUsed) > time.Minute {
		if _, err := s.db.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() WHERE id = $1`, tokenID); err != nil {
			return User{}, fmt.Errorf("touch token: %w", err)
		}
	}
	return u, nil
}

// RevokeToken revokes a token by id; revoking twice is not an error.
func (s *Store) RevokeToken(ctx context.Context, id uuid.UUID) error {
	tag, err := s.db.Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke token %s: %w", id, ErrNotFound)
	}
	return nil
}

// RevokeNamed revokes the user's live tokens named name and returns how
// many it revoked: a command that mints a token for a turn revokes what an
// earlier run of the same turn minted, so a retried job never leaves a
// second live token behind.
func (s *Store) RevokeNamed(ctx context.Context, userID uuid.UUID, name string) (int64, error) {
	tag, err := s.db.Exec(ctx, `UPDATE api_tokens SET revoked_at = now()
		WHERE user_id = $1 AND name = $2 AND revoked_at IS NULL`, userID, name)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens named %q: %w", name, err)
	}
	return tag.RowsAffected(), nil
}
