package teams

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// The fake Bot Framework's identities.
const (
	testIssuer   = "https://api.botframework.com"
	testAppID    = "6c0e8f5e-0000-4000-8000-00000000b07"
	testPassword = "app-s3cret-value"
	testTenant   = "9188040d-6c67-4c5b-b112-36a304b66dad"
)

// testKey is a signing key of the fake, with the channels it is endorsed for.
type testKey struct {
	kid          string
	priv         *rsa.PrivateKey
	endorsements []string
}

var (
	keysOnce sync.Once
	rsaKeys  []*rsa.PrivateKey
)

// testRSAKeys are generated once per test binary (2048-bit generation is slow).
func testRSAKeys(tb testing.TB) []*rsa.PrivateKey {
	tb.Helper()
	keysOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys
}

// recorded is one call the fake connector received.
type recorded struct {
	Method   string
	Path     string // escaped path
	Auth     string
	Activity map[string]any
}

// fakeBotFramework is the Bot Framework as a bot sees it: OpenID metadata
// and its key set, the tenant's token endpoint, and a connector service
// URL that records activities and answers each with a fresh id.
type fakeBotFramework struct {
	srv *httptest.Server

	mu            sync.Mutex
	keys          []testKey // the published key set
	metadataGets  int
	keyGets       int
	tokenGets     int
	calls         []recorded
	connectorFail []int // statuses for the next connector calls, then 201s
	retryAfter    string
	nextID        int
}

func newFakeBotFramework(t *testing.T) *fakeBotFramework {
	t.Helper()
	ks := testRSAKeys(t)
	f := &fakeBotFramework{keys: []testKey{{kid: "key-1", priv: ks[0], endorsements: []string{"msteams", "emulator"}}}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBotFramework) URL() string { return f.srv.URL }
func (f *fakeBotFramework) metadataURL() string {
	return f.srv.URL + "/v1/.well-known/openidconfiguration"
}
func (f *fakeBotFramework) tokenURL() string {
	return f.srv.URL + "/" + testTenant + "/oauth2/v2.0/token"
}

// serviceURL is the connector's base, as activities carry it.
func (f *fakeBotFramework) serviceURL() string { return f.srv.URL + "/amer/" }

func (f *fakeBotFramework) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/v1/.well-known/openidconfiguration":
		f.metadataGets++
		writeJSON(w, map[string]any{"issuer": testIssuer, "jwks_uri": f.srv.URL + "/v1/.well-known/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	case r.URL.Path == "/v1/.well-known/keys":
		f.keyGets++
		var keys []map[string]any
		for _, k := range f.keys {
			keys = append(keys, map[string]any{"kty": "RSA", "use": "sig", "kid": k.kid,
				"n":            base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
				"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
				"endorsements": k.endorsements})
		}
		writeJSON(w, map[string]any{"keys": keys})
	case r.URL.Path == "/"+testTenant+"/oauth2/v2.0/token":
		_ = r.ParseForm()
		if r.PostForm.Get("client_id") != testAppID || r.PostForm.Get("client_secret") != testPassword ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "https://api.botframework.com/.default" {
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]string{"error": "invalid_client"})
			return
		}
		f.tokenGets++
		writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": "app-token-" + strconv.Itoa(f.tokenGets)})
	case strings.HasPrefix(r.URL.Path, "/amer/v3/conversations/"):
		var act map[string]any
		_ = json.NewDecoder(r.Body).Decode(&act)
		f.calls = append(f.calls, recorded{Method: r.Method, Path: strings.TrimPrefix(r.URL.EscapedPath(), "/amer"),
			Auth: r.Header.Get("Authorization"), Activity: act})
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer app-token-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if len(f.connectorFail) > 0 {
			status := f.connectorFail[0]
			f.connectorFail = f.connectorFail[1:]
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			w.WriteHeader(status)
			writeJSON(w, map[string]any{"error": map[string]string{"code": "Throttled", "message": "slow down"}})
			return
		}
		f.nextID++
		id := "1:act-" + strconv.Itoa(f.nextID)
		if r.Method == http.MethodPut {
			id = path2ID(r.URL.Path)
		}
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, map[string]string{"id": id})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func path2ID(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// rotate publishes a new key set.
func (f *fakeBotFramework) rotate(keys ...testKey) {
	f.mu.Lock()
	f.keys = keys
	f.mu.Unlock()
}

// activities returns the connector calls so far.
func (f *fakeBotFramework) activities() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.calls...)
}

func (f *fakeBotFramework) counts() (metadata, keys, tokens int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.metadataGets, f.keyGets, f.tokenGets
}

// claims are the claims of a good token for an activity from the fake.
func (f *fakeBotFramework) claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        testIssuer,
		"aud":        testAppID,
		"exp":        now.Add(time.Hour).Unix(),
		"nbf":        now.Add(-time.Minute).Unix(),
		"serviceurl": f.serviceURL(),
	}
}

// sign makes an RS256 token with kid in its header.
func sign(tb testing.TB, claims jwt.MapClaims, kid string, key *rsa.PrivateKey) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
