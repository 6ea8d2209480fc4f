package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/adapters/openai"
	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

// EngineConfig is the engine's part of the configuration.
type EngineConfig struct {
	// LLM is the model provider: OPENAI_API_KEY, OPENAI_BASE_URL,
	// OPSBOT_MODEL (default gpt-4o-mini), AZURE_OPENAI_ENDPOINT,
	// AZURE_OPENAI_API_VERSION, AZURE_OPENAI_DEPLOYMENT,
	// OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT (default 30s); and the embeddings
	// model of hybrid runbook search, OPSBOT_EMBEDDING_MODEL (default
	// text-embedding-3-small) and AZURE_OPENAI_EMBEDDING_DEPLOYMENT. With
	// none of the key, base URL or endpoint set, the bot answers from
	// runbooks only, found by words.
	LLM openai.Config
	// Embeddings turns on hybrid runbook search: a provider is configured
	// and OPSBOT_EMBEDDING_MODEL is not "off".
	Embeddings bool
	// Prices is the price table: OPSBOT_PRICES_FILE, else the built-in one.
	Prices *usage.Prices
	// StoreRaw keeps users' messages unredacted in the database
	// (OPSBOT_STORE_RAW=true); what goes to the model is redacted always.
	StoreRaw bool
	// CallTimeout is the deadline of one model call, retries included
	// (OPSBOT_MODEL_TIMEOUT, a Go duration, default 90s).
	CallTimeout time.Duration
}

// loadEngineConfig reads EngineConfig from the environment.
func loadEngineConfig(getenv func(string) string) (EngineConfig, error) {
	c := EngineConfig{
		LLM: openai.Config{
			APIKey:          getenv("OPENAI_API_KEY"),
			BaseURL:         getenv("OPENAI_BASE_URL"),
			Model:           or(getenv("OPSBOT_MODEL"), openai.DefaultModel),
			AzureEndpoint:   getenv("AZURE_OPENAI_ENDPOINT"),
			AzureAPIVersion: getenv("AZURE_OPENAI_API_VERSION"),
			AzureDeployment: getenv("AZURE_OPENAI_DEPLOYMENT"),
			EmbeddingModel:  or(strings.TrimSpace(getenv("OPSBOT_EMBEDDING_MODEL")), openai.DefaultEmbeddingModel),

			AzureEmbeddingDeployment: getenv("AZURE_OPENAI_EMBEDDING_DEPLOYMENT"),
		},
		Prices:      usage.BuiltinPrices(),
		CallTimeout: 90 * time.Second,
	}
	c.Embeddings = c.LLM.Configured() && !strings.EqualFold(c.LLM.EmbeddingModel, "off")
	if c.LLM.AzureEndpoint != "" && c.LLM.AzureDeployment == "" {
		return EngineConfig{}, fmt.Errorf("AZURE_OPENAI_DEPLOYMENT is required with AZURE_OPENAI_ENDPOINT")
	}
	if path := getenv("OPSBOT_PRICES_FILE"); path != "" {
		p, err := usage.LoadPrices(path)
		if err != nil {
			return EngineConfig{}, fmt.Errorf("OPSBOT_PRICES_FILE: %w", err)
		}
		c.Prices = p
	}
	if v := getenv("OPSBOT_STORE_RAW"); v != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return EngineConfig{}, fmt.Errorf("OPSBOT_STORE_RAW: %q is not true or false", v)
		}
		c.StoreRaw = b
	}
	if v := getenv("OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return EngineConfig{}, fmt.Errorf("OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT: %q is not a positive duration such as 30s", v)
		}
		c.LLM.FirstTokenTimeout = d
	}
	if v := getenv("OPSBOT_MODEL_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return EngineConfig{}, fmt.Errorf("OPSBOT_MODEL_TIMEOUT: %q is not a positive duration such as 90s", v)
		}
		c.CallTimeout = d
	}
	return c, nil
}

// engineDeps are the optional parts an engine is built with.
type engineDeps struct {
	runbooks *knowledge.Index // the runbook index answers are grounded in
	budgets  *usage.Budgets   // nil: no budgets
	metrics  *bot.Metrics     // nil: no metrics
}

// newEngine builds the engine from the configuration: the model when one is
// configured, the runbook index, the price table and budgets.
func newEngine(cfg EngineConfig, pool *pgxpool.Pool, d engineDeps, log *slog.Logger) (*bot.Engine, error) {
	bc := bot.Config{
		DB:          pool,
		Model:       cfg.LLM.Model,
		Prices:      cfg.Prices,
		Retriever:   d.runbooks,
		Metrics:     d.metrics,
		Log:         log,
		StoreRaw:    cfg.StoreRaw,
		CallTimeout: cfg.CallTimeout,
	}
	if d.budgets != nil {
		bc.Budget = d.budgets
	}
	if cfg.LLM.Configured() {
		llm, err := openai.New(cfg.LLM)
		if err != nil {
			return nil, err
		}
		bc.LLM = llm
		log.Info("model configured", "provider", llm.String(), "price_version", cfg.Prices.Version)
	} else {
		log.Warn("no model configured (OPENAI_API_KEY, OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT): answering from runbooks only")
	}
	if _, ok := cfg.Prices.Lookup(cfg.LLM.Model); cfg.LLM.Configured() && !ok {
		log.Warn("the configured model is not in the price table; its usage is recorded at cost 0, "+
			"and turns are refused while a budget applies (add it to OPSBOT_PRICES_FILE)",
			"model", cfg.LLM.Model, "price_version", cfg.Prices.Version)
	}
	return bot.New(bc), nil
}
