package conversations

import (
	"errors"
	"testing"
)

// FuzzParseCursor: any cursor string is either refused as a 422 on
// "cursor" or yields a position the database can compare with (a time in
// years 1..9999) that encodes back to the same position. No panic.
func FuzzParseCursor(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		at, id, err := parseConversationCursor(s)
		if err != nil {
			assertCursorError(t, err)
		} else {
			if at.Before(minCursorTime) || at.After(maxCursorTime) {
				t.Fatalf("parseConversationCursor(%q) = %v, outside years 1..9999", s, at)
			}
			at2, id2, err := parseConversationCursor(conversationCursor(Conversation{ID: id, CreatedAt: at}))
			if err != nil || !at2.Equal(at) || id2 != id {
				t.Fatalf("cursor %q: re-encoded position (%v, %s) parses as (%v, %s, %v)", s, at, id, at2, id2, err)
			}
		}
		seq, err := parseMessageCursor(s)
		if err != nil {
			assertCursorError(t, err)
			return
		}
		if seq2, err := parseMessageCursor(messageCursor(Message{Seq: seq})); err != nil || seq2 != seq {
			t.Fatalf("message cursor %q: seq %d re-encoded parses as %d, %v", s, seq, seq2, err)
		}
	})
}

func assertCursorError(t *testing.T, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "cursor" {
		t.Fatalf("got %v, want a ValidationError on cursor", err)
	}
}
