// Package openai is the LLM adapter: Chat Completions through
// github.com/sashabaranov/go-openai against OpenAI, Azure OpenAI or any
// compatible server (vLLM, Ollama), streamed, with token usage, a deadline
// for the first words and bounded retries. It satisfies bot.LLM.
package openai

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/apacops/opsbot/bot"
)

var _ bot.LLM = (*Client)(nil)

// DefaultModel is used when OPSBOT_MODEL is not set.
const DefaultModel = "gpt-4o-mini"

// Config selects the provider. Exactly one of these shapes is expected:
// OpenAI (APIKey), a compatible server (BaseURL, APIKey optional), or Azure
// OpenAI (AzureEndpoint, APIKey, AzureDeployment, AzureAPIVersion).
type Config struct {
	APIKey  string // OPENAI_API_KEY (also the Azure key)
	BaseURL string // OPENAI_BASE_URL: a compatible server, ".../v1"
	Model   string // OPSBOT_MODEL, default gpt-4o-mini

	AzureEndpoint   string // AZURE_OPENAI_ENDPOINT, https://NAME.openai.azure.com
	AzureAPIVersion string // AZURE_OPENAI_API_VERSION; default DefaultAzureAPIVersion
	AzureDeployment string // AZURE_OPENAI_DEPLOYMENT; every chat model maps to it

	// EmbeddingModel is the embeddings model of hybrid runbook search
	// (OPSBOT_EMBEDDING_MODEL, default DefaultEmbeddingModel); see
	// NewEmbedder. AzureEmbeddingDeployment is its Azure deployment
	// (AZURE_OPENAI_EMBEDDING_DEPLOYMENT, default the model name).
	EmbeddingModel           string
	AzureEmbeddingDeployment string

	// MaxRetries is how many times a failed attempt is retried (429, 5xx,
	// network errors, first-token timeouts); default 3, negative means none.
	MaxRetries int
	// BaseBackoff and MaxBackoff shape the exponential backoff with full
	// jitter between retries; defaults 500ms and 8s. A Retry-After from the
	// provider is honoured instead, up to MaxRetryAfter (default 30s).
	BaseBackoff   time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	// FirstTokenTimeout bounds how long one attempt waits for the first
	// words of the answer (OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT, default 30s).
	// Until words come, the whole call — attempts, backoff and Retry-After
	// waits — ends within SilenceLimit (twice this), so a model that sends
	// nothing is reported within a minute by default. Once words flow only
	// the caller's deadline (OPSBOT_MODEL_TIMEOUT) applies, so a long
	// answer that streams slowly is not cut off.
	FirstTokenTimeout time.Duration
	// HTTPClient is used for every request; the default has dial, TLS and
	// response-header timeouts.
	HTTPClient *http.Client

	// sleep, jitter, now and afterFunc are replaced by tests.
	sleep     func(ctx context.Context, d time.Duration) error
	jitter    func() float64
	now       func() time.Time
	afterFunc func(d time.Duration, f func()) (stop func() bool)
}

// DefaultFirstTokenTimeout is FirstTokenTimeout's default.
const DefaultFirstTokenTimeout = 30 * time.Second

// SilenceLimit is the longest a call goes on while the model has sent no
// words, retries included: twice FirstTokenTimeout, so that one silent
// attempt can be retried once.
func (c Config) SilenceLimit() time.Duration {
	ft := c.FirstTokenTimeout
	if ft <= 0 {
		ft = DefaultFirstTokenTimeout
	}
	return 2 * ft
}

// Configured reports whether the configuration names any provider; when it
// does not, opsbot runs without a model.
func (c Config) Configured() bool {
	return c.APIKey != "" || c.BaseURL != "" || c.AzureEndpoint != ""
}

// Client calls Chat Completions. It is safe for concurrent use.
type Client struct {
	api        *goopenai.Client
	cfg        Config
	model      string
	compatible bool // a non-OpenAI server: send max_tokens, not max_completion_tokens
}

// New builds a client.
func New(cfg Config) (*Client, error) {
	if !cfg.Configured() {
		return nil, errors.New("openai: no OPENAI_API_KEY, OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT")
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	cfg = cfg.withDefaults()
	oc, compatible, err := cfg.clientConfig(cfg.AzureDeployment)
	if err != nil {
		return nil, err
	}
	return &Client{api: goopenai.NewClientWithConfig(oc), cfg: cfg, model: cfg.Model, compatible: compatible}, nil
}

// withDefaults fills in the retry and transport defaults.
func (cfg Config) withDefaults() Config {
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 8 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 30 * time.Second
	}
	if cfg.FirstTokenTimeout <= 0 {
		cfg.FirstTokenTimeout = DefaultFirstTokenTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	if cfg.sleep == nil {
		cfg.sleep = sleepCtx
	}
	if cfg.jitter == nil {
		cfg.jitter = rand.Float64
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.afterFunc == nil {
		cfg.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return cfg
}

// DefaultAzureAPIVersion is the Azure OpenAI API version used when none is
// configured: the first GA version with what every call sends
// (stream_options for usage on streams, max_completion_tokens, embedding
// dimensions). go-openai's own default (2023-05-15) has none of them.
const DefaultAzureAPIVersion = "2024-10-21"

// clientConfig is go-openai's configuration for the provider; on Azure,
// every model maps to deployment (when set). compatible is true for a
// non-OpenAI server.
func (cfg Config) clientConfig(deployment string) (oc goopenai.ClientConfig, compatible bool, err error) {
	switch {
	case cfg.AzureEndpoint != "":
		if cfg.APIKey == "" {
			return oc, false, errors.New("openai: AZURE_OPENAI_ENDPOINT needs OPENAI_API_KEY (the Azure key)")
		}
		oc = goopenai.DefaultAzureConfig(cfg.APIKey, cfg.AzureEndpoint)
		oc.APIVersion = cmp.Or(cfg.AzureAPIVersion, DefaultAzureAPIVersion)
		if deployment != "" {
			oc.AzureModelMapperFunc = func(string) string { return deployment }
		}
	default:
		oc = goopenai.DefaultConfig(cfg.APIKey)
		if cfg.BaseURL != "" {
			oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
			compatible = !strings.HasPrefix(oc.BaseURL, "https://api.openai.com")
		}
	}
	oc.HTTPClient = &hintingDoer{c: cfg.HTTPClient}
	return oc, compatible, nil
}

// Model is the configured model name.
func (c *Client) Model() string { return c.model }

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Complete sends one chat request and retries failed attempts with
// backoff. The answer is always streamed from the provider, so that a
// silent model is told from a slow one (FirstTokenTimeout) whether or not
// onDelta wants the pieces. An attempt that delivered text is not retried:
// its words were billed (and maybe shown); its error comes back with the
// partial text in the Completion.
func (c *Client) Complete(ctx context.Context, req bot.Request, onDelta func(string)) (bot.Completion, error) {
	silentUntil := c.cfg.now().Add(c.cfg.SilenceLimit())
	var comp bot.Completion
	err := c.cfg.retry(ctx, silentUntil, func(actx context.Context) (emitted bool, err error) {
		firstWords := min(c.cfg.FirstTokenTimeout, silentUntil.Sub(c.cfg.now()))
		comp, err = c.streamAttempt(actx, req, firstWords, onDelta)
		return comp.Text != "", err
	})
	return comp, err
}

// retry runs attempt until it succeeds, fails for good (not retryable, or
// after delivering text), the retries are used up, or waiting would outlive
// ctx. Failures come back as a *bot.ModelError. When silentUntil is set,
// no retry starts so late that too little of the silence limit is left for
// its first words: the user hears now instead.
func (cfg Config) retry(ctx context.Context, silentUntil time.Time, attempt func(ctx context.Context) (emitted bool, err error)) error {
	for n := 0; ; n++ {
		hint := &attemptHint{}
		emitted, err := attempt(withHint(ctx, hint))
		if err == nil {
			return nil
		}
		me := classify(ctx, err, hint)
		if emitted || !retryable(me) || n >= cfg.MaxRetries || ctx.Err() != nil {
			return me
		}
		wait := cfg.backoff(n)
		if hint.retryAfter > 0 {
			wait = min(hint.retryAfter, cfg.MaxRetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return me // waiting would outlive the call's deadline
		}
		if !silentUntil.IsZero() && cfg.now().Add(wait).After(silentUntil.Add(-cfg.FirstTokenTimeout/4)) {
			return me
		}
		if err := cfg.sleep(ctx, wait); err != nil {
			return me
		}
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max, base*2^n)].
func (cfg Config) backoff(attempt int) time.Duration {
	ceil := cfg.BaseBackoff << min(attempt, 16)
	if ceil <= 0 || ceil > cfg.MaxBackoff {
		ceil = cfg.MaxBackoff
	}
	return time.Duration(cfg.jitter() * float64(ceil))
}

func (c *Client) request(req bot.Request) goopenai.ChatCompletionRequest {
	msgs := make([]goopenai.ChatCompletionMessage, 0, len(req.Messages))
	for _, m := range req.Messages {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: m.Role, Content: m.Content})
	}
	r := goopenai.ChatCompletionRequest{Model: c.model, Messages: msgs}
	if req.MaxTokens > 0 {
		if c.compatible {
			//lint:ignore SA1019 compatible servers (vLLM, Ollama) read max_tokens, not max_completion_tokens
			r.MaxTokens = req.MaxTokens
		} else {
			r.MaxCompletionTokens = req.MaxTokens
		}
	}
	return r
}

func toUsage(u *goopenai.Usage) *bot.ProviderUsage {
	if u == nil || (u.PromptTokens == 0 && u.CompletionTokens == 0) {
		return nil
	}
	out := &bot.ProviderUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

// errFirstWords is why a stream attempt is given up: no text within the
// first-token timeout.
var errFirstWords = fmt.Errorf("no answer within the first-token timeout: %w", context.DeadlineExceeded)

// streamAttempt is one attempt: firstWords bounds the time to the first
// piece of text, the caller's ctx the whole answer.
func (c *Client) streamAttempt(ctx context.Context, req bot.Request, firstWords time.Duration, onDelta func(string)) (bot.Completion, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := c.cfg.afterFunc(firstWords, func() { cancel(errFirstWords) })
	defer stop()
	comp, err := c.stream(actx, req, func(d string) {
		stop()
		if onDelta != nil {
			onDelta(d)
		}
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errFirstWords) {
		err = errors.Join(errFirstWords, err) // a timeout, whatever the transport made of the cancel
	}
	return comp, err
}

// stream reads one streamed answer. On an error after text has come, the
// Completion carries that partial text.
func (c *Client) stream(ctx context.Context, req bot.Request, onDelta func(string)) (comp bot.Completion, err error) {
	r := c.request(req)
	r.Stream = true
	r.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
	s, err := c.api.CreateChatCompletionStream(ctx, r)
	if err != nil {
		return bot.Completion{}, err
	}
	defer s.Close()
	var b strings.Builder
	defer func() { comp.Text = b.String() }()
	for {
		chunk, err := s.Recv()
		if errors.Is(err, errEOF) {
			break
		}
		if err != nil {
			return comp, err
		}
		if chunk.Model != "" {
			comp.Model = chunk.Model
		}
		if u := toUsage(chunk.Usage); u != nil {
			comp.Usage = u
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			if d := ch.Delta.Content; d != "" {
				b.WriteString(d)
				onDelta(d)
			}
			if ch.FinishReason != "" {
				comp.FinishReason = string(ch.FinishReason)
			}
		}
	}
	if comp.FinishReason == "" {
		// A normal stream always ends its answer with a finish reason; a
		// stream cut short (the connection dropped) does not.
		return comp, &bot.ModelError{Kind: bot.ModelUnavailable,
			Err: errors.New("stream ended before the answer was finished")}
	}
	return comp, nil
}

// classify turns a failed attempt into the error the engine reports.
func classify(ctx context.Context, err error, hint *attemptHint) *bot.ModelError {
	var me *bot.ModelError
	if errors.As(err, &me) {
		return me
	}
	status := hint.status
	var ae *goopenai.APIError
	var re *goopenai.RequestError
	switch {
	case errors.As(err, &ae):
		status = ae.HTTPStatusCode
	case errors.As(err, &re):
		status = re.HTTPStatusCode
	}
	kind := bot.ModelUnavailable
	switch {
	case status == http.StatusTooManyRequests:
		kind = bot.ModelRateLimited
	case status == http.StatusRequestTimeout || status >= 500:
		kind = bot.ModelUnavailable
	case status >= 400:
		kind = bot.ModelRejected
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		kind = bot.ModelTimeout
	case isTimeout(err):
		kind = bot.ModelTimeout
	case errors.Is(err, goopenai.ErrTooManyEmptyStreamMessages):
		kind = bot.ModelBadAnswer
	}
	return &bot.ModelError{Kind: kind, Status: status, RetryAfter: hint.retryAfter, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func retryable(e *bot.ModelError) bool {
	switch e.Kind {
	case bot.ModelRateLimited, bot.ModelUnavailable, bot.ModelTimeout:
		return true
	}
	return false
}

// String describes the provider without secrets, for logs.
func (c *Client) String() string {
	switch {
	case c.cfg.AzureEndpoint != "":
		return fmt.Sprintf("azure-openai %s deployment=%s api-version=%s", logURL(c.cfg.AzureEndpoint), c.cfg.AzureDeployment,
			cmp.Or(c.cfg.AzureAPIVersion, DefaultAzureAPIVersion))
	case c.cfg.BaseURL != "":
		return fmt.Sprintf("openai-compatible %s model=%s", logURL(c.cfg.BaseURL), c.model)
	}
	return "openai model=" + c.model
}

// logURL is a configured URL fit for a log: scheme, host and path only, since
// a self-hosted server's URL may carry credentials (https://user:pass@host,
// ?api-key=...).
func logURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
