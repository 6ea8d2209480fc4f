package usage

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestCost(t *testing.T) {
	p := BuiltinPrices()
	tests := []struct {
		name      string
		model     string
		tokens    Tokens
		want      int64
		wantKnown bool
	}{
		// 1000 x 0.15 + 500 x 0.60 = 150 + 300 micro-USD.
		{"gpt-4o-mini plain", "gpt-4o-mini", Tokens{Prompt: 1000, Completion: 500}, 450, true},
		// 600 uncached x 0.15 + 400 cached x 0.075 + 500 x 0.60 = 90 + 30 + 300.
		{"cached at the cached rate", "gpt-4o-mini", Tokens{Prompt: 1000, Cached: 400, Completion: 500}, 420, true},
		{"snapshot name priced as base", "gpt-4o-mini-2024-07-18", Tokens{Prompt: 1000, Completion: 500}, 450, true},
		{"case-insensitive", "GPT-4o", Tokens{Prompt: 1_000_000}, 2_500_000, true},
		// 3 x 0.15 = 0.45 micro-USD rounds to 0; 4 x 0.15 = 0.6 rounds to 1.
		{"rounds half up, once", "gpt-4o-mini", Tokens{Prompt: 3}, 0, true},
		{"rounds up at 0.6", "gpt-4o-mini", Tokens{Prompt: 4}, 1, true},
		// 10 x 0.05 = 0.5 rounds to 1.
		{"half rounds up", "gpt-5-nano", Tokens{Prompt: 10}, 1, true},
		{"unknown model costs 0", "llama3:8b", Tokens{Prompt: 1000, Completion: 1000}, 0, false},
		{"cached above prompt is clamped", "gpt-4o-mini", Tokens{Prompt: 100, Cached: 200}, 8, true},
		// Embeddings: $0.02 per 1M input tokens; 1M tokens = 20,000 micro-USD,
		// 25 tokens x 0.02 = 0.5 rounds to 1.
		{"embeddings per million", "text-embedding-3-small", Tokens{Prompt: 1_000_000}, 20_000, true},
		{"embeddings round half up", "text-embedding-3-small", Tokens{Prompt: 25}, 1, true},
		{"large counts stay exact", "gpt-4o", Tokens{Prompt: 123_456_789, Cached: 23_456_789, Completion: 9_876_543}, 250_000_000 + 29_320_986 + 98_765_430, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, known := p.Cost(tt.model, tt.tokens)
			if got != tt.want || known != tt.wantKnown {
				t.Errorf("Cost(%q, %+v) = %d, %v; want %d, %v", tt.model, tt.tokens, got, known, tt.want, tt.wantKnown)
			}
		})
	}
}

// Products beyond int64 (a mistyped price file, a server reporting absurd
// token counts) are computed exactly or saturate; they never wrap around to
// a small or negative cost.
func TestCostDoesNotOverflow(t *testing.T) {
	// $999,999,999.999999 per million tokens, the most a price file allows.
	top := Price{InputPerMTok: 999_999_999_999_999, CachedInputPerMTok: 999_999_999_999_999, OutputPerMTok: 999_999_999_999_999}
	p := NewPrices("test", map[string]Price{"m": top, "gpt-4o": {2_500_000, 1_250_000, 10_000_000}})
	tests := []struct {
		name   string
		model  string
		tokens Tokens
		want   int64
	}{
		// 10,000 x 999,999,999.999999 USD/Mtok = 9,999,999,999,999.99 micro-USD,
		// rounded up; the micro-USD x tokens product (~1e19) is past int64.
		{"exact past int64 in the middle", "m", Tokens{Completion: 10_000}, 10_000_000_000_000},
		// 2^42 prompt tokens at $2.50/Mtok: 2^42 x 2,500,000 / 1e6.
		{"huge token count, sane price", "gpt-4o", Tokens{Prompt: 1 << 42}, 10_995_116_277_760},
		{"saturates: quotient past int64", "m", Tokens{Completion: 10_000_000_000}, math.MaxInt64},
		{"saturates: quotient past 64 bits", "m", Tokens{Prompt: 1 << 40, Completion: 1 << 40}, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, known := p.Cost(tt.model, tt.tokens)
			if got != tt.want || !known {
				t.Errorf("Cost(%q, %+v) = %d, %v; want %d, true", tt.model, tt.tokens, got, known, tt.want)
			}
		})
	}
}

func TestParsePrices(t *testing.T) {
	good := `{"version":"2026-11","models":{"gpt-4o-mini":{"input_usd_per_mtok":0.15,"cached_input_usd_per_mtok":0.075,"output_usd_per_mtok":0.6},
		"local":{"input_usd_per_mtok":1,"output_usd_per_mtok":2.000001}}}`
	p, err := ParsePrices([]byte(good))
	if err != nil {
		t.Fatalf("ParsePrices: %v", err)
	}
	if p.Version != "2026-11" {
		t.Errorf("version = %q, want 2026-11", p.Version)
	}
	want := map[string]Price{
		"gpt-4o-mini": {150_000, 75_000, 600_000},
		"local":       {1_000_000, 1_000_000, 2_000_001},
	}
	for name, w := range want {
		got, ok := p.Lookup(name)
		if !ok || got != w {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v, true", name, got, ok, w)
		}
	}
	if _, ok := p.Lookup("gpt-4o"); ok {
		t.Errorf("the file replaces the built-in table, but gpt-4o is still priced")
	}

	bad := map[string]string{
		"no version":     `{"models":{"m":{"input_usd_per_mtok":1,"output_usd_per_mtok":1}}}`,
		"no models":      `{"version":"v","models":{}}`,
		"missing output": `{"version":"v","models":{"m":{"input_usd_per_mtok":1}}}`,
		"negative":       `{"version":"v","models":{"m":{"input_usd_per_mtok":-1,"output_usd_per_mtok":1}}}`,
		"seven decimals": `{"version":"v","models":{"m":{"input_usd_per_mtok":0.0000001,"output_usd_per_mtok":1}}}`,
		"exponent":       `{"version":"v","models":{"m":{"input_usd_per_mtok":1e-3,"output_usd_per_mtok":1}}}`,
		"unknown field":  `{"version":"v","models":{"m":{"input_usd_per_mtok":1,"output_usd_per_mtok":1,"x":1}}}`,
		"not json":       `version: v`,
		"word as a rate": `{"version":"v","models":{"m":{"input_usd_per_mtok":"cheap","output_usd_per_mtok":1}}}`,
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePrices([]byte(in)); err == nil {
				t.Errorf("ParsePrices(%s) succeeded, want an error", in)
			}
		})
	}
}

func TestLoadPrices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(`{"version":"x1","models":{"m":{"input_usd_per_mtok":3,"output_usd_per_mtok":4}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPrices(path)
	if err != nil {
		t.Fatalf("LoadPrices: %v", err)
	}
	if got, _ := p.Cost("m", Tokens{Prompt: 1_000_000, Completion: 1_000_000}); got != 7_000_000 {
		t.Errorf("cost = %d, want 7000000", got)
	}
	if _, err := LoadPrices(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Errorf("LoadPrices of a missing file succeeded")
	}
}

func TestFormatUSD(t *testing.T) {
	tests := map[int64]string{0: "$0.00", 500_000: "$0.50", 150: "$0.00015", 12_345_678: "$12.345678", 10_000_000: "$10.00", -1_500_000: "-$1.50"}
	for in, want := range tests {
		if got := FormatUSD(in); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", in, got, want)
		}
	}
}
