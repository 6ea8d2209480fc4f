package teams

import (
	"context"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apacops/opsbot/internal/fakes/teamsfake"
)

// The activity parser takes any body without panicking; what it accepts
// maps to a complete thread key and a question without the bot's mention.
func FuzzParseActivity(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","id":"1:a","channelId":"msteams","serviceUrl":"https://smba.trafficmanager.net/amer/","conversation":{"id":"a:1x","conversationType":"personal","tenantId":"t"},"from":{"id":"29:u","aadObjectId":"u"},"recipient":{"id":"28:b"},"text":"hi"}`,
		`{"type":"message","id":"17","channelId":"msteams","serviceUrl":"https://s/","conversation":{"id":"19:c@thread.tacv2;messageid=16","conversationType":"channel","tenantId":"t"},"recipient":{"id":"28:b"},"text":"<at>opsbot</at> usage 7d","entities":[{"type":"mention","text":"<at>opsbot</at>","mentioned":{"id":"28:b"}}]}`,
		`{"type":"invoke","name":"message/submitAction","channelId":"msteams","serviceUrl":"https://s/","conversation":{"id":"a:1"},"replyToId":"1:x","value":{"actionName":"feedback","actionValue":{"reaction":"like"}}}`,
		`{"type":"message","channelId":"msteams","serviceUrl":"https://s/","conversation":{"id":"a:1"},"value":{"opsbot":"unarchive:0b6f6a3e-8c57-4c39-9a2e-1b5f0b9f4a11"}}`,
		`{"type":"message","entities":[1,2,{"type":"mention"}],"timestamp":"not a time"}`,
		`{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := parseActivity(body)
		if err != nil {
			return
		}
		if in.Type == "" || in.ServiceURL == "" || in.ChannelID == "" || in.Conversation.ID == "" {
			t.Fatalf("accepted an activity without its required fields: %+v", in.Activity)
		}
		k := in.threadKey()
		if k.Platform != "teams" || k.Channel == "" || strings.Contains(k.Channel, ";messageid=") {
			t.Fatalf("thread key %+v from conversation %q", k, in.Conversation.ID)
		}
		q := in.question()
		if strings.HasPrefix(q, " ") || strings.HasSuffix(q, " ") {
			t.Fatalf("question %q not trimmed", q)
		}
		if utf8.ValidString(in.Text) && !utf8.ValidString(q) {
			t.Fatalf("question %q of valid text is not valid UTF-8", q)
		}
		_ = in.replyConversation()
		_ = in.mentioned()
	})
}

// The token validator takes any Authorization header without panicking,
// and accepts only the one good token it was seeded with.
func FuzzAuthenticate(f *testing.F) {
	keys := testRSAKeys(f)
	now := time.Unix(1_772_400_000, 0)
	claims := map[string]any{"iss": teamsfake.Issuer, "aud": teamsfake.AppID, "exp": now.Add(time.Hour).Unix(), "serviceurl": "https://s/"}
	good := sign(f, claims, "key-1", keys[0])
	f.Add("Bearer " + good)
	f.Add("Bearer " + sign(f, claims, "key-1", keys[1]))
	f.Add("Bearer " + sign(f, map[string]any{"exp": "soon"}, "key-1", keys[0]))
	f.Add("Bearer " + sign(f, map[string]any{"exp": 1e300, "nbf": -1, "aud": []any{1, nil}}, "key-1", keys[0]))
	f.Add("Bearer e30.e30.")
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.")
	f.Add("Bearer ")
	f.Add("")
	f.Add("Basic x")
	v := NewValidator(AuthConfig{AppID: teamsfake.AppID, MetadataURL: "http://127.0.0.1:1/unused", Now: func() time.Time { return now }})
	// The keys are known up front, so the fuzzer never waits on a fetch.
	v.issuer, v.fetchedAt = teamsfake.Issuer, now
	v.keys = map[string]signingKey{"key-1": {pub: &keys[0].PublicKey, endorsements: []string{"msteams"}},
		"key-2": {pub: &rsa.PublicKey{N: keys[1].N, E: keys[1].E}}}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := v.Authenticate(context.Background(), header)
		if err != nil {
			ae, ok := err.(*AuthError)
			if !ok || (ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden) {
				t.Fatalf("error %v, want a 401 or 403 AuthError", err)
			}
			return
		}
		if strings.TrimSpace(strings.TrimPrefix(header, "Bearer ")) != good {
			t.Fatalf("accepted %q, which is not the good token", header)
		}
		if tok.Check("https://s/", "msteams") != nil {
			t.Fatalf("the good token does not check out")
		}
	})
}
