package teams

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// DefaultOpenIDMetadataURL is where the Bot Framework publishes the issuer
// and signing keys of the tokens it sends bots.
const DefaultOpenIDMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"

// Token checks.
const (
	// clockSkew is the leeway on exp and nbf, as the Bot Framework SDKs allow.
	clockSkew = 5 * time.Minute
	// maxTokenBytes bounds a bearer token before it is parsed.
	maxTokenBytes = 16 << 10
	// maxMetadataBytes bounds the metadata and key set documents.
	maxMetadataBytes = 1 << 20
	// fetchTimeout bounds one fetch of the metadata and keys. A fetch runs
	// apart from the request that wanted it, which may give up first.
	fetchTimeout = 15 * time.Second
	// firstBackoff is the wait after a failed fetch before the next; it
	// doubles with each failure in a row, up to RefreshInterval.
	firstBackoff = time.Second
)

// AuthConfig configures a Validator.
type AuthConfig struct {
	// AppID is the bot's app id: the audience tokens must name.
	AppID string
	// MetadataURL is the OpenID metadata document; "" is
	// DefaultOpenIDMetadataURL.
	MetadataURL string
	// Client fetches the metadata and keys; nil means one with a 10 s
	// timeout.
	Client *http.Client
	// RefreshInterval is the least time between a successful fetch of
	// the metadata and keys and the next, however many tokens name an
	// unknown key: a flood of forged tokens cannot make the validator
	// hammer the endpoint. A failed fetch is retried sooner, after a
	// backoff of a second that doubles up to RefreshInterval. Default one
	// minute.
	RefreshInterval time.Duration
	// MaxKeyAge is how long fetched keys are trusted without a refresh
	// (they are kept if the refresh fails). Default 24 hours.
	MaxKeyAge time.Duration
	Now       func() time.Time // nil is time.Now
}

// AuthError is a refused request: Status 401 when it carried no token, 403
// for every other failure; Reason is for the log.
type AuthError struct {
	Status int
	Reason string
}

func (e *AuthError) Error() string { return "teams auth: " + e.Reason }

func forbidden(format string, args ...any) *AuthError {
	return &AuthError{Status: http.StatusForbidden, Reason: fmt.Sprintf(format, args...)}
}

// Validator checks the JWTs the Bot Framework sends with every activity:
// signed (RS256 only) by a key from the configured OpenID metadata, issued
// by that metadata's issuer, for this bot's app id, within its validity
// (exp required, nbf honoured, five minutes of skew). Check then ties the
// token to the activity it came with. It is safe for concurrent use.
//
// msbotbuilder-go's validator is not used: it fetches a hard-coded metadata
// URL on every call, never refreshes keys on an unknown key id, and skips
// authentication altogether when the app id is empty.
type Validator struct {
	cfg    AuthConfig
	parser *jwt.Parser

	mu        sync.Mutex
	issuer    string
	keys      map[string]signingKey
	fetchedAt time.Time // when keys were last fetched successfully
	failures  int       // fetches failed in a row
	retryAt   time.Time // no fetch before this, after a failed one
	lastErr   error     // why the last fetch failed
	// fetching is closed when the fetch in flight ends; nil when none is.
	fetching chan struct{}
}

// signingKey is a key of the set and the channels it may sign for.
type signingKey struct {
	pub          *rsa.PublicKey
	endorsements []string
}

// NewValidator returns a validator for c. It fetches nothing until the
// first token arrives.
func NewValidator(c AuthConfig) *Validator {
	if c.MetadataURL == "" {
		c.MetadataURL = DefaultOpenIDMetadataURL
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = time.Minute
	}
	if c.MaxKeyAge <= 0 {
		c.MaxKeyAge = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Validator{cfg: c, parser: jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithJSONNumber(), jwt.WithoutClaimsValidation())}
}

// Token is a validated token: who the Bot Framework says sent the
// activity, and which channels its signing key is endorsed for.
type Token struct {
	ServiceURL   string
	endorsements []string
}

// Check ties the token to its activity: the serviceurl claim must be the
// activity's serviceUrl, and the signing key must be endorsed for the
// activity's channel ("msteams").
func (t *Token) Check(serviceURL, channelID string) error {
	if t.ServiceURL == "" || !strings.EqualFold(t.ServiceURL, serviceURL) {
		return forbidden("serviceurl claim does not match the activity's serviceUrl")
	}
	if channelID == "" || !slices.Contains(t.endorsements, channelID) {
		return forbidden("signing key not endorsed for channel %q", channelID)
	}
	return nil
}

// Authenticate validates the Authorization header of a request. The error
// is always an *AuthError.
func (v *Validator) Authenticate(ctx context.Context, header string) (*Token, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		return nil, &AuthError{Status: http.StatusUnauthorized, Reason: "no bearer token"}
	}
	if len(raw) > maxTokenBytes {
		return nil, forbidden("token too long")
	}
	var key signingKey
	tok, err := v.parser.Parse(raw, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no key id")
		}
		k, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		key = k
		return k.pub, nil
	})
	if err != nil {
		return nil, forbidden("invalid token: %v", err)
	}
	claims, _ := tok.Claims.(jwt.MapClaims)
	if err := v.checkClaims(claims); err != nil {
		return nil, err
	}
	su, _ := claims["serviceurl"].(string)
	return &Token{ServiceURL: su, endorsements: key.endorsements}, nil
}

func (v *Validator) checkClaims(c jwt.MapClaims) error {
	v.mu.Lock()
	issuer := v.issuer
	v.mu.Unlock()
	if iss, _ := c["iss"].(string); iss == "" || iss != issuer {
		return forbidden("wrong issuer")
	}
	if !audienceHas(c["aud"], v.cfg.AppID) {
		return forbidden("wrong audience")
	}
	now := v.cfg.Now()
	exp, ok := numericDate(c["exp"])
	if !ok {
		return forbidden("no valid exp claim")
	}
	if now.After(exp.Add(clockSkew)) {
		return forbidden("token expired")
	}
	if raw, present := c["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return forbidden("malformed nbf claim")
		}
		if now.Before(nbf.Add(-clockSkew)) {
			return forbidden("token not valid yet")
		}
	}
	return nil
}

// audienceHas reports whether aud (a string or an array of strings) names
// appID.
func audienceHas(aud any, appID string) bool {
	if appID == "" {
		return false
	}
	switch a := aud.(type) {
	case string:
		return a == appID
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == appID {
				return true
			}
		}
	}
	return false
}

// numericDate reads a JWT NumericDate (seconds since the epoch).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// key returns the signing key kid. When kid is unknown (keys are rotated
// in, or none are known yet) it waits, as long as ctx allows, for a fetch
// of the key set; when the keys are old it uses them while a fetch
// refreshes them. One fetch runs at a time, outside the lock, so that
// validations with known keys never wait for it; after a success the next
// comes no sooner than RefreshInterval, after a failure once the backoff
// has passed.
func (v *Validator) key(ctx context.Context, kid string) (signingKey, error) {
	// Two rounds at most: a fetch that ends either finds kid, or leaves no
	// fetch due (fetchedAt or retryAt has moved on).
	for range 2 {
		v.mu.Lock()
		now := v.cfg.Now()
		k, known := v.keys[kid]
		fresh := !v.fetchedAt.IsZero() && now.Sub(v.fetchedAt) <= v.cfg.MaxKeyAge
		due := !now.Before(v.retryAt) && (len(v.keys) == 0 || now.Sub(v.fetchedAt) >= v.cfg.RefreshInterval)
		if known && fresh {
			v.mu.Unlock()
			return k, nil
		}
		if due && v.fetching == nil {
			v.fetching = make(chan struct{})
			go v.refresh(context.WithoutCancel(ctx), v.fetching)
		}
		done, lastErr := v.fetching, v.lastErr
		v.mu.Unlock()
		switch {
		case known:
			// Keep trusting the keys we have while they are refreshed, and
			// after that if the endpoint is down.
			return k, nil
		case done == nil && lastErr != nil:
			return signingKey{}, fmt.Errorf("unknown signing key %q (fetch signing keys: %w)", kid, lastErr)
		case done == nil:
			return signingKey{}, fmt.Errorf("unknown signing key %q", kid)
		}
		select {
		case <-done:
		case <-ctx.Done():
			return signingKey{}, fmt.Errorf("waiting for signing keys: %w", ctx.Err())
		}
	}
	return signingKey{}, fmt.Errorf("unknown signing key %q", kid)
}

// refresh fetches the key set and closes done. ctx carries the values of
// the request that wanted it, not its deadline.
func (v *Validator) refresh(ctx context.Context, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	issuer, keys, err := v.fetch(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetching = nil
	now := v.cfg.Now()
	if err != nil {
		v.failures++
		v.lastErr = err
		v.retryAt = now.Add(min(firstBackoff<<min(v.failures-1, 16), v.cfg.RefreshInterval))
		return
	}
	v.issuer, v.keys, v.fetchedAt = issuer, keys, now
	v.failures, v.lastErr, v.retryAt = 0, nil, time.Time{}
}

// fetch reads the OpenID metadata and its key set.
func (v *Validator) fetch(ctx context.Context) (string, map[string]signingKey, error) {
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.cfg.MetadataURL, &meta); err != nil {
		return "", nil, fmt.Errorf("openid metadata: %w", err)
	}
	if meta.Issuer == "" || meta.JWKSURI == "" {
		return "", nil, errors.New("openid metadata: no issuer or jwks_uri")
	}
	var set struct {
		Keys []struct {
			Kty          string   `json:"kty"`
			Kid          string   `json:"kid"`
			N            string   `json:"n"`
			E            string   `json:"e"`
			Endorsements []string `json:"endorsements"`
		} `json:"keys"`
	}
	if err := v.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return "", nil, fmt.Errorf("signing keys: %w", err)
	}
	keys := map[string]signingKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid == "" {
			continue
		}
		pub, err := rsaKey(k.N, k.E)
		if err != nil {
			continue // one bad key does not spoil the set
		}
		keys[k.Kid] = signingKey{pub: pub, endorsements: k.Endorsements}
	}
	if len(keys) == 0 {
		return "", nil, errors.New("signing keys: no usable RSA key")
	}
	return meta.Issuer, keys, nil
}

func (v *Validator) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxMetadataBytes)).Decode(out)
}

// rsaKey builds an RSA public key from a JWK's base64url modulus and
// exponent, refusing keys too weak to trust.
func rsaKey(n64, e64 string) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n64, "="))
	if err != nil {
		return nil, err
	}
	eb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e64, "="))
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(nb)
	e := new(big.Int).SetBytes(eb)
	if n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > math.MaxInt32 {
		return nil, errors.New("weak or malformed RSA key")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}
