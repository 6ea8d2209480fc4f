package bot

import (
	"strings"
	"testing"
)

// Redact is the engine's entry to package redact (tested there): it must
// reach the maintained rule set, not only opsbot's own rules.
func TestRedactUsesGitleaksRules(t *testing.T) {
	// Stripe's format is known to gitleaks' rule set only.
	in := "payments fail with STRIPE_KEY sk_live_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH please help"
	got := Redact(in)
	if strings.Contains(got, "sk_live_4eC39HqLyjWDarjtT1zdp7dc") || !strings.Contains(got, "[REDACTED:stripe-access-token]") {
		t.Errorf("Redact(%q) = %q, want the Stripe key replaced by [REDACTED:stripe-access-token]", in, got)
	}
}

func TestWithoutMarkers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"disk full", "disk full"},
		{"token [REDACTED:slack-token] leaked", "token   leaked"},
		{"[REDACTED:aws-access-key][REDACTED:jwt]", "  "},
		{"[REDACTED: not ours]", "[REDACTED: not ours]"},
	}
	for _, tt := range tests {
		if got := withoutMarkers(tt.in); got != tt.want {
			t.Errorf("withoutMarkers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
