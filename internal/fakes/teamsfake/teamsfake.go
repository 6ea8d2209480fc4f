// Package teamsfake is the Bot Framework on 127.0.0.1 as a Teams bot sees
// it, for tests, the load tool and the fault tests: OpenID metadata and
// its key set (with each key's channel endorsements), the tenant's token
// endpoint, and a connector service URL that records and counts the
// activities a bot sends and answers each with a fresh id. It mints the
// JWTs the Bot Framework puts on activities, with its own keys, and builds
// message activities as Teams sends them. It does not import adapters/teams:
// it is the other side of the wire.
package teamsfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// The fake Bot Framework's identities: the bot is AppID, single-tenant in
// TenantID, with the password AppPassword; the token endpoint refuses any
// other credentials.
const (
	Issuer      = "https://api.botframework.com"
	AppID       = "6c0e8f5e-0000-4000-8000-00000000b07"
	AppPassword = "app-s3cret-value"
	TenantID    = "9188040d-6c67-4c5b-b112-36a304b66dad"
	BotID       = "28:" + AppID // the bot as activities name it
	// KeyID is the key the fake publishes first, RSAKeys()[0], endorsed
	// for msteams and emulator.
	KeyID = "key-1"
)

// rsaKeys are made once per process: a 2048-bit key takes a good part of
// a second to generate, and every fake (and test) can share them.
var rsaKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var keys []*rsa.PrivateKey
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate an RSA key: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
})

// RSAKeys are three RSA keys, the same for every fake in the process: the
// first is published as KeyID; the others are for rotation and forgery.
func RSAKeys() ([]*rsa.PrivateKey, error) { return rsaKeys() }

// Key is a signing key the fake publishes, with the channels it is
// endorsed for.
type Key struct {
	ID           string
	Private      *rsa.PrivateKey
	Endorsements []string
}

// Call is one request the fake connector received.
type Call struct {
	Method   string
	Path     string // escaped, from /v3/ on
	Auth     string
	Activity map[string]any
}

// Fetches count the requests for the metadata, the key set and app tokens.
type Fetches struct {
	Metadata, Keys, Tokens int
}

// Counts count the activities the connector accepted, by kind.
type Counts struct {
	Messages int // POSTed message activities: answers, notices, cards
	Typing   int // POSTed typing activities: indicators and stream updates
	Updates  int // PUTs: activities replaced
}

// Config sets up a fake.
type Config struct {
	// Record keeps every connector call for Activities (tests). A load
	// run leaves it off and reads Counts and Posted.
	Record bool
	// OnPost, when set, is called with the conversation id (reply chain
	// included) and the activity of each message activity the connector
	// accepted, once the call is answered: a load run times its answers
	// by it. It is called without the fake's lock, from the goroutine of
	// the call, so it may call the fake.
	OnPost func(conversationID string, activity map[string]any)
}

// Server is the fake Bot Framework. Its methods are safe for concurrent
// use.
type Server struct {
	srv    *httptest.Server
	record bool
	onPost func(string, map[string]any)
	first  *rsa.PrivateKey

	mu         sync.Mutex
	keys       []Key // the published key set
	fetches    Fetches
	calls      []Call
	counts     Counts
	posted     map[string]int // message activities by conversation id
	fail       []int          // statuses for the next connector calls
	retryAfter string
	nextID     int
}

// Start starts a fake on 127.0.0.1, publishing KeyID.
func Start(cfg Config) (*Server, error) {
	keys, err := RSAKeys()
	if err != nil {
		return nil, err
	}
	s := &Server{record: cfg.Record, onPost: cfg.OnPost, first: keys[0], posted: map[string]int{},
		keys: []Key{{ID: KeyID, Private: keys[0], Endorsements: []string{"msteams", "emulator"}}}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s, nil
}

// ForTest starts a fake that records every connector call, closed when
// the test ends.
func ForTest(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start(Config{Record: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// MetadataURL is TEAMS_OPENID_METADATA_URL for the fake.
func (s *Server) MetadataURL() string { return s.srv.URL + "/v1/.well-known/openidconfiguration" }

// TokenURL is TEAMS_TOKEN_URL for the fake.
func (s *Server) TokenURL() string { return s.srv.URL + "/" + TenantID + "/oauth2/v2.0/token" }

// ServiceURL is the connector's base, as activities carry it.
func (s *Server) ServiceURL() string { return s.srv.URL + "/amer/" }

// Rotate publishes a new key set.
func (s *Server) Rotate(keys ...Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// FailNext answers the next connector calls with statuses, in order
// (with Retry-After when retryAfter is not ""), then accepts again.
func (s *Server) FailNext(retryAfter string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.retryAfter = statuses, retryAfter
}

// Activities returns the recorded connector calls (Config.Record).
func (s *Server) Activities() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Fetches counts the metadata, key set and token requests so far.
func (s *Server) Fetches() Fetches {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// Counts counts the activities the connector accepted (recorded or not).
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Posted counts the message activities accepted for a conversation (its
// id as activities carry it, reply chain included): what a load run checks
// for exactly one answer per question.
func (s *Server) Posted(conversationID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posted[conversationID]
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/amer/v3/conversations/") {
		s.mu.Lock()
		conv, act, posted := s.connector(w, r)
		s.mu.Unlock()
		if posted && s.onPost != nil {
			s.onPost(conv, act)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/v1/.well-known/openidconfiguration":
		s.fetches.Metadata++
		writeJSON(w, map[string]any{"issuer": Issuer, "jwks_uri": s.srv.URL + "/v1/.well-known/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	case r.URL.Path == "/v1/.well-known/keys":
		s.fetches.Keys++
		var keys []map[string]any
		for _, k := range s.keys {
			keys = append(keys, map[string]any{"kty": "RSA", "use": "sig", "kid": k.ID,
				"n":            base64.RawURLEncoding.EncodeToString(k.Private.N.Bytes()),
				"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Private.E)).Bytes()),
				"endorsements": k.Endorsements})
		}
		writeJSON(w, map[string]any{"keys": keys})
	case r.URL.Path == "/"+TenantID+"/oauth2/v2.0/token":
		_ = r.ParseForm()
		if r.PostForm.Get("client_id") != AppID || r.PostForm.Get("client_secret") != AppPassword ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "https://api.botframework.com/.default" {
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]string{"error": "invalid_client"})
			return
		}
		s.fetches.Tokens++
		writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": "app-token-" + strconv.Itoa(s.fetches.Tokens)})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// connector answers a bot's activity; s.mu is held. It returns the
// conversation and the activity when it accepted a message activity.
func (s *Server) connector(w http.ResponseWriter, r *http.Request) (conv string, act map[string]any, posted bool) {
	_ = json.NewDecoder(r.Body).Decode(&act)
	if s.record {
		s.calls = append(s.calls, Call{Method: r.Method, Path: strings.TrimPrefix(r.URL.EscapedPath(), "/amer"),
			Auth: r.Header.Get("Authorization"), Activity: act})
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer app-token-") {
		w.WriteHeader(http.StatusUnauthorized)
		return "", nil, false
	}
	if len(s.fail) > 0 {
		status := s.fail[0]
		s.fail = s.fail[1:]
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		w.WriteHeader(status)
		writeJSON(w, map[string]any{"error": map[string]string{"code": "Throttled", "message": "slow down"}})
		return "", nil, false
	}
	s.nextID++
	id := "1:act-" + strconv.Itoa(s.nextID)
	switch {
	case r.Method == http.MethodPut:
		s.counts.Updates++
		id = r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	case act["type"] == "typing":
		s.counts.Typing++
	case act["type"] == "message":
		s.counts.Messages++
		conv, posted = conversationOf(r.URL), true
		s.posted[conv]++
	}
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, map[string]string{"id": id})
	return conv, act, posted
}

// conversationOf is the conversation id in a connector URL,
// /amer/v3/conversations/{id}/activities[/{replyToId}].
func conversationOf(u *url.URL) string {
	rest := strings.TrimPrefix(u.EscapedPath(), "/amer/v3/conversations/")
	if i := strings.Index(rest, "/"); i >= 0 {
		rest = rest[:i]
	}
	id, err := url.PathUnescape(rest)
	if err != nil {
		return rest
	}
	return id
}

// Claims are the claims of a good token for an activity from the fake,
// valid for an hour from now.
func (s *Server) Claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        Issuer,
		"aud":        AppID,
		"exp":        now.Add(time.Hour).Unix(),
		"nbf":        now.Add(-time.Minute).Unix(),
		"serviceurl": s.ServiceURL(),
	}
}

// Token is a good token for the fake's activities: Claims(now) signed
// with the key the fake started with, as KeyID.
func (s *Server) Token(now time.Time) (string, error) {
	return Sign(s.Claims(now), KeyID, s.first)
}

// Sign makes an RS256 token of claims with kid in its header.
func Sign(claims jwt.MapClaims, kid string, key *rsa.PrivateKey) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign a token: %w", err)
	}
	return s, nil
}

// Message is a message activity from Teams, as the Bot Framework posts it
// to the bot: id in the conversation convID of type convType (personal,
// groupChat or channel), from the user with the AAD object id from; with
// mention, its entities mention the bot.
func (s *Server) Message(id, convType, convID, text string, mention bool, from string) map[string]any {
	a := map[string]any{
		"type": "message", "id": id, "channelId": "msteams", "serviceUrl": s.ServiceURL(),
		"timestamp": "2026-03-02T01:02:03.456Z",
		"from":      map[string]any{"id": "29:" + from, "name": "Ana Reyes", "aadObjectId": from},
		"recipient": map[string]any{"id": BotID, "name": "opsbot"},
		"conversation": map[string]any{"id": convID, "conversationType": convType, "tenantId": TenantID,
			"isGroup": convType != "personal"},
		"channelData": map[string]any{"tenant": map[string]any{"id": TenantID}},
		"text":        text,
	}
	if mention {
		a["entities"] = []any{
			map[string]any{"type": "mention", "text": "<at>opsbot</at>", "mentioned": map[string]any{"id": BotID, "name": "opsbot"}},
			map[string]any{"type": "clientInfo", "locale": "en-SG"},
		}
	}
	return a
}
