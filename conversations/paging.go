package conversations

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// PageOptions selects a page either by offset (Skip) or by keyset (Cursor, an
// opaque token from a previous page's Next). Keyset pages neither repeat nor
// skip rows when rows are added between requests; offset pages exist for
// clients of the service we replace.
type PageOptions struct {
	Skip   int
	Limit  int
	Cursor string
}

func (o *PageOptions) validate() error {
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	switch {
	case o.Limit < 1 || o.Limit > MaxLimit:
		return invalid("limit", "must be between 1 and %d", MaxLimit)
	case o.Skip < 0:
		return invalid("skip", "must not be negative")
	case o.Skip > 0 && o.Cursor != "":
		return invalid("skip", "cannot be combined with cursor")
	}
	return nil
}

// conversationCursor encodes (activity_at, id) of the last row of a page.
func conversationCursor(c Conversation) string {
	b := make([]byte, 8+16)
	binary.BigEndian.PutUint64(b, uint64(c.activityAt().UnixMicro()))
	copy(b[8:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b)
}

// Cursor times outside these bounds are refused: PostgreSQL cannot compare
// with a time before 4713 BC (a crafted cursor answered 500), and no row
// this server wrote carries a time outside years 1 to 9999.
var (
	minCursorTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

func parseConversationCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return time.Time{}, uuid.UUID{}, errForeignCursor
	}
	at := time.UnixMicro(int64(binary.BigEndian.Uint64(b))).UTC()
	if at.Before(minCursorTime) || at.After(maxCursorTime) {
		return time.Time{}, uuid.UUID{}, errForeignCursor
	}
	var id uuid.UUID
	copy(id[:], b[8:])
	return at, id, nil
}

// errForeignCursor refuses a cursor that no page of this server returned.
var errForeignCursor = invalid("cursor", "is not a cursor this server issued")

// messageCursor encodes the seq of the last message of a page.
func messageCursor(m Message) string {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(m.Seq))
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseMessageCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 8 {
		return 0, errForeignCursor
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
