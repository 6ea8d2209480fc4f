package openai

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/knowledge"
)

var _ knowledge.Embedder = (*Embedder)(nil)

// DefaultEmbeddingModel is used when OPSBOT_EMBEDDING_MODEL is not set.
const DefaultEmbeddingModel = "text-embedding-3-small"

// EmbeddingDimensions is what a text-embedding-3 model is asked for: 256
// of its 1536 dimensions keep most of its retrieval quality (OpenAI's
// figures) at a sixth of the memory and ranking time. Other models return
// their own size.
const EmbeddingDimensions = 256

// Embedder computes embeddings through /v1/embeddings (OpenAI, an Azure
// deployment, or a compatible server such as Ollama), with the client's
// retries and deadlines. It satisfies knowledge.Embedder.
type Embedder struct {
	api   *goopenai.Client
	cfg   Config
	model string
	dims  int // 0: the model's own size, not sent
}

// NewEmbedder builds an embedder for cfg.EmbeddingModel on cfg's provider.
func NewEmbedder(cfg Config) (*Embedder, error) {
	if !cfg.Configured() {
		return nil, errors.New("openai: no OPENAI_API_KEY, OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT")
	}
	if cfg.EmbeddingModel == "" {
		cfg.EmbeddingModel = DefaultEmbeddingModel
	}
	cfg = cfg.withDefaults()
	deployment := cfg.AzureEmbeddingDeployment
	if deployment == "" {
		deployment = cfg.EmbeddingModel
	}
	oc, _, err := cfg.clientConfig(deployment)
	if err != nil {
		return nil, err
	}
	e := &Embedder{api: goopenai.NewClientWithConfig(oc), cfg: cfg, model: cfg.EmbeddingModel}
	if strings.HasPrefix(e.model, "text-embedding-3") {
		e.dims = EmbeddingDimensions
	}
	return e, nil
}

// Model is the configured embeddings model.
func (e *Embedder) Model() string { return e.model }

// Space names the vectors: the model, and the dimensions when asked for.
func (e *Embedder) Space() string {
	if e.dims == 0 {
		return e.model
	}
	return e.model + "/" + strconv.Itoa(e.dims)
}

// Embed returns one vector per text, in order. Failed attempts are retried
// like chat calls (429, 5xx, timeouts) within ctx's deadline; the error is
// a *bot.ModelError.
func (e *Embedder) Embed(ctx context.Context, texts []string) (knowledge.Embedding, error) {
	var out knowledge.Embedding
	err := e.cfg.retry(ctx, time.Time{}, func(actx context.Context) (bool, error) {
		// An embedding answers all at once: its first words are the whole
		// answer, bounded like a chat call's.
		actx, cancel := context.WithTimeout(actx, e.cfg.FirstTokenTimeout)
		defer cancel()
		resp, err := e.api.CreateEmbeddings(actx, goopenai.EmbeddingRequestStrings{
			Input: texts, Model: goopenai.EmbeddingModel(e.model), Dimensions: e.dims,
			EncodingFormat: goopenai.EmbeddingEncodingFormatFloat,
		})
		if err != nil {
			return false, err
		}
		if len(resp.Data) != len(texts) {
			return false, &bot.ModelError{Kind: bot.ModelBadAnswer,
				Err: fmt.Errorf("%d embeddings for %d inputs", len(resp.Data), len(texts))}
		}
		data := resp.Data
		sort.SliceStable(data, func(i, j int) bool { return data[i].Index < data[j].Index })
		out = knowledge.Embedding{Model: string(resp.Model), PromptTokens: resp.Usage.PromptTokens,
			Vectors: make([][]float32, len(data))}
		for i, d := range data {
			out.Vectors[i] = d.Embedding
		}
		return false, nil
	})
	if err != nil {
		return knowledge.Embedding{}, err
	}
	return out, nil
}

// String describes the provider and model without secrets, for logs.
func (e *Embedder) String() string {
	switch {
	case e.cfg.AzureEndpoint != "":
		return fmt.Sprintf("azure-openai %s embeddings model=%s", logURL(e.cfg.AzureEndpoint), e.Space())
	case e.cfg.BaseURL != "":
		return fmt.Sprintf("openai-compatible %s embeddings model=%s", logURL(e.cfg.BaseURL), e.Space())
	}
	return "openai embeddings model=" + e.Space()
}
