package openai

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/internal/fakes/embedfake"
)

func mustEmbedder(tb testing.TB, cfg Config, sl *sleeps) *Embedder {
	tb.Helper()
	cfg.sleep = sl.sleep
	cfg.jitter = func() float64 { return 0.5 }
	e, err := NewEmbedder(cfg)
	if err != nil {
		tb.Fatalf("NewEmbedder: %v", err)
	}
	return e
}

func TestEmbedRequestShape(t *testing.T) {
	f := embedfake.New(t)
	var sl sleeps
	e := mustEmbedder(t, Config{APIKey: "sk-test", BaseURL: f.URL()}, &sl)
	if got := e.Space(); got != "text-embedding-3-small/256" {
		t.Errorf("Space = %q, want text-embedding-3-small/256", got)
	}
	texts := []string{"Disk full on a host", "kafka consumer lag"}
	res, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(calls))
	}
	c := calls[0]
	if c.Path != "/v1/embeddings" || c.Model != "text-embedding-3-small" || c.Dimensions != 256 || c.Encoding != "float" ||
		c.APIKey != "sk-test" || !reflect.DeepEqual(c.Inputs, texts) {
		t.Errorf("request = %+v, want the default model at 256 dimensions, as floats, with the key", c)
	}
	// The fake's vectors and token counts, computed independently.
	for i, text := range texts {
		if !reflect.DeepEqual(res.Vectors[i], embedfake.Vector(text, 256)) {
			t.Errorf("vector %d is not the one of %q, or out of order", i, text)
		}
	}
	if want := embedfake.Tokens(texts[0]) + embedfake.Tokens(texts[1]); res.PromptTokens != want || res.Model != "text-embedding-3-small" {
		t.Errorf("model %q, tokens %d; want text-embedding-3-small, %d", res.Model, res.PromptTokens, want)
	}
}

func TestEmbedOtherModelsKeepTheirSize(t *testing.T) {
	f := embedfake.New(t)
	var sl sleeps
	e := mustEmbedder(t, Config{BaseURL: f.URL(), EmbeddingModel: "nomic-embed-text"}, &sl)
	if got := e.Space(); got != "nomic-embed-text" {
		t.Errorf("Space = %q, want nomic-embed-text", got)
	}
	if _, err := e.Embed(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if c := f.Calls()[0]; c.Model != "nomic-embed-text" || c.Dimensions != 0 {
		t.Errorf("request = %+v, want nomic-embed-text with no dimensions", c)
	}
}

func TestEmbedAzureDeployment(t *testing.T) {
	f := embedfake.New(t)
	var sl sleeps
	cfg := Config{APIKey: "azure-key", AzureEndpoint: f.URL()[:len(f.URL())-len("/v1")], AzureAPIVersion: "2024-10-21",
		AzureDeployment: "ops-mini", EmbeddingModel: "text-embedding-3-small"}
	tests := []struct {
		deployment, wantPath string
	}{
		{"", "/openai/deployments/text-embedding-3-small/embeddings"},
		{"ops-embed", "/openai/deployments/ops-embed/embeddings"},
	}
	for i, tt := range tests {
		cfg.AzureEmbeddingDeployment = tt.deployment
		if _, err := mustEmbedder(t, cfg, &sl).Embed(context.Background(), []string{"x"}); err != nil {
			t.Fatal(err)
		}
		c := f.Calls()[i]
		if c.Path != tt.wantPath || c.Query != "api-version=2024-10-21" || c.APIKey != "azure-key" {
			t.Errorf("deployment %q: request %s?%s key %q, want %s?api-version=2024-10-21 with the Azure key",
				tt.deployment, c.Path, c.Query, c.APIKey, tt.wantPath)
		}
	}
}

// A failing endpoint is retried like a chat call; what still fails is a
// *bot.ModelError.
func TestEmbedRetriesThenFails(t *testing.T) {
	f := embedfake.New(t)
	f.Fail(http.StatusServiceUnavailable)
	var sl sleeps
	e := mustEmbedder(t, Config{BaseURL: f.URL(), MaxRetries: 2}, &sl)
	_, err := e.Embed(context.Background(), []string{"x"})
	var me *bot.ModelError
	if !errors.As(err, &me) || me.Kind != bot.ModelUnavailable || me.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want an unavailable *bot.ModelError with status 503", err)
	}
	if n := len(f.Calls()); n != 3 {
		t.Errorf("attempts = %d, want 3 (two retries)", n)
	}
	if want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}; !equalDurations(sl.all(), want) {
		t.Errorf("backoff = %v, want %v", sl.all(), want)
	}
	f.Fail(0)
	if _, err := e.Embed(context.Background(), []string{"x"}); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}

func TestEmbedderStringHasNoSecrets(t *testing.T) {
	e, err := NewEmbedder(Config{APIKey: "sk-secret", BaseURL: "https://user:pw@llm.internal/v1?api-key=k"})
	if err != nil {
		t.Fatal(err)
	}
	if s := e.String(); s != "openai-compatible https://llm.internal/v1 embeddings model=text-embedding-3-small/256" {
		t.Errorf("String = %q", s)
	}
}
