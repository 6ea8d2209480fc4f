// Package usage meters model calls: the price table, exact cost in integer
// micro-USD, the usage ledger, summaries and budgets.
package usage

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Price is one model's rates in micro-USD per million tokens, so that every
// published price (down to $0.000001 per million tokens) is an integer and
// cost is exact integer arithmetic.
type Price struct {
	InputPerMTok       int64 // uncached prompt tokens
	CachedInputPerMTok int64 // prompt tokens served from the provider's cache
	OutputPerMTok      int64 // completion tokens (reasoning tokens included)
}

// Prices is a versioned price table. Its version goes on every ledger row so
// that a cost can always be traced to the rates that produced it.
type Prices struct {
	Version string
	models  map[string]Price
}

// BuiltinVersion is the version of the built-in table.
const BuiltinVersion = "openai-builtin-2025-08"

// BuiltinPrices is the built-in table: OpenAI's published standard-tier
// Chat Completions rates (USD per 1M tokens: input / cached input / output)
// and its embeddings rates (input only). OPSBOT_PRICES_FILE replaces it as
// a whole.
func BuiltinPrices() *Prices {
	usd := func(in, cached, out string) Price {
		return Price{mustMicro(in), mustMicro(cached), mustMicro(out)}
	}
	return &Prices{Version: BuiltinVersion, models: map[string]Price{
		"gpt-4o-mini":  usd("0.15", "0.075", "0.60"),
		"gpt-4o":       usd("2.50", "1.25", "10.00"),
		"gpt-4.1":      usd("2.00", "0.50", "8.00"),
		"gpt-4.1-mini": usd("0.40", "0.10", "1.60"),
		"gpt-4.1-nano": usd("0.10", "0.025", "0.40"),
		"o3":           usd("2.00", "0.50", "8.00"),
		"o4-mini":      usd("1.10", "0.275", "4.40"),
		"gpt-5":        usd("1.25", "0.125", "10.00"),
		"gpt-5-mini":   usd("0.25", "0.025", "2.00"),
		"gpt-5-nano":   usd("0.05", "0.005", "0.40"),
		// Embeddings (hybrid runbook search): input tokens only.
		"text-embedding-3-small": usd("0.02", "0.02", "0"),
		"text-embedding-3-large": usd("0.13", "0.13", "0"),
		"text-embedding-ada-002": usd("0.10", "0.10", "0"),
	}}
}

// NewPrices builds a table from explicit rates (tests, custom deployments).
func NewPrices(version string, models map[string]Price) *Prices {
	m := make(map[string]Price, len(models))
	for k, v := range models {
		m[strings.ToLower(k)] = v
	}
	return &Prices{Version: version, models: m}
}

// priceFile is the OPSBOT_PRICES_FILE schema (DESIGN section 6).
type priceFile struct {
	Version string `json:"version"`
	Models  map[string]struct {
		Input       *json.Number `json:"input_usd_per_mtok"`
		CachedInput *json.Number `json:"cached_input_usd_per_mtok"`
		Output      *json.Number `json:"output_usd_per_mtok"`
	} `json:"models"`
}

// LoadPrices reads a price file; see ParsePrices.
func LoadPrices(path string) (*Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price file: %w", err)
	}
	p, err := ParsePrices(b)
	if err != nil {
		return nil, fmt.Errorf("price file %s: %w", path, err)
	}
	return p, nil
}

// ParsePrices reads the JSON price table
// {"version":"2026-11","models":{"gpt-4o-mini":{"input_usd_per_mtok":0.15,
// "cached_input_usd_per_mtok":0.075,"output_usd_per_mtok":0.6}}}.
// Rates are read as decimal text, never through float64, and may have at most
// six decimal places. A missing cached rate means cached tokens cost the input
// rate.
func ParsePrices(b []byte) (*Prices, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var f priceFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse price table: %w", err)
	}
	if strings.TrimSpace(f.Version) == "" {
		return nil, fmt.Errorf("parse price table: version is required")
	}
	if len(f.Models) == 0 {
		return nil, fmt.Errorf("parse price table: no models")
	}
	models := make(map[string]Price, len(f.Models))
	for name, r := range f.Models {
		if r.Input == nil || r.Output == nil {
			return nil, fmt.Errorf("parse price table: model %q needs input_usd_per_mtok and output_usd_per_mtok", name)
		}
		var p Price
		var err error
		if p.InputPerMTok, err = parseMicro(r.Input.String()); err != nil {
			return nil, fmt.Errorf("parse price table: model %q input: %w", name, err)
		}
		if p.OutputPerMTok, err = parseMicro(r.Output.String()); err != nil {
			return nil, fmt.Errorf("parse price table: model %q output: %w", name, err)
		}
		p.CachedInputPerMTok = p.InputPerMTok
		if r.CachedInput != nil {
			if p.CachedInputPerMTok, err = parseMicro(r.CachedInput.String()); err != nil {
				return nil, fmt.Errorf("parse price table: model %q cached input: %w", name, err)
			}
		}
		models[strings.ToLower(name)] = p
	}
	return &Prices{Version: f.Version, models: models}, nil
}

var decimalRE = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]{1,6}))?$`)

// parseMicro turns a non-negative decimal dollar amount with at most six
// decimals into micro-dollars, exactly.
func parseMicro(s string) (int64, error) {
	m := decimalRE.FindStringSubmatch(s)
	if m == nil || len(m[1]) > 9 {
		return 0, fmt.Errorf("%q is not a non-negative amount below $1e9 with at most 6 decimals", s)
	}
	whole, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	frac, err := strconv.ParseInt((m[2] + "000000")[:6], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return whole*1_000_000 + frac, nil
}

func mustMicro(s string) int64 {
	v, err := parseMicro(s)
	if err != nil {
		panic(err)
	}
	return v
}

// snapshotRE matches the date suffix of a model snapshot name
// ("gpt-4o-mini-2024-07-18"), which is priced like its base model.
var snapshotRE = regexp.MustCompile(`-\d{4}-\d{2}-\d{2}$`)

// Lookup finds a model's price: the exact name first (case-insensitive),
// then the name without a dated snapshot suffix.
func (p *Prices) Lookup(model string) (Price, bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	if pr, ok := p.models[m]; ok {
		return pr, true
	}
	if base := snapshotRE.ReplaceAllString(m, ""); base != m {
		pr, ok := p.models[base]
		return pr, ok
	}
	return Price{}, false
}

// Models lists the priced model names, sorted.
func (p *Prices) Models() []string {
	out := make([]string, 0, len(p.models))
	for k := range p.models {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Tokens is what a provider reports for one call. Cached tokens are part of
// the prompt tokens, as in OpenAI's usage object.
type Tokens struct {
	Prompt     int
	Cached     int
	Completion int
}

// Cost is the price of one call in micro-USD and whether the model was in
// the table. Uncached prompt tokens are charged at the input rate, cached
// prompt tokens at the cached rate and completion tokens at the output rate;
// the sum is computed exactly in micro-USD x tokens (128-bit, so no price
// file or token count can wrap it) and rounded once, half up, to a whole
// micro-dollar; a cost beyond int64 saturates at math.MaxInt64. An unknown
// model costs 0 with known false: the caller records it anyway and warns.
func (p *Prices) Cost(model string, t Tokens) (micro int64, known bool) {
	pr, ok := p.Lookup(model)
	if !ok {
		return 0, false
	}
	cached := min(max(t.Cached, 0), max(t.Prompt, 0))
	uncached := max(t.Prompt, 0) - cached
	var hi, lo uint64
	add := func(a, b uint64) {
		h, l := bits.Mul64(a, b)
		var carry uint64
		lo, carry = bits.Add64(lo, l, 0)
		hi += h + carry
	}
	// Each product is below 2^126 and there are three of them plus the
	// rounding half, so hi cannot overflow.
	add(uint64(uncached), uint64(max(pr.InputPerMTok, 0)))
	add(uint64(cached), uint64(max(pr.CachedInputPerMTok, 0)))
	add(uint64(max(t.Completion, 0)), uint64(max(pr.OutputPerMTok, 0)))
	add(1, 500_000)
	if hi >= 1_000_000 { // the quotient would not fit in 64 bits
		return math.MaxInt64, true
	}
	q, _ := bits.Div64(hi, lo, 1_000_000)
	if q > math.MaxInt64 {
		return math.MaxInt64, true
	}
	return int64(q), true
}
