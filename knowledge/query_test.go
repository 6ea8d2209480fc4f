package knowledge_test

import (
	"context"
	"strings"
	"testing"
)

func TestSearchExactTokens(t *testing.T) {
	ix := mustIndex(t, "testdata/runbooks")
	tests := []struct {
		query    string
		wantPath string
		wantIn   string // the top section's heading path contains this
	}{
		{"db-sg-02", "database-failover.md", ""},
		{"ERR_CONN_RESET", "payment-gateway-5xx.md", "Connection pool exhaustion"},
		{"PGW-5003", "payment-gateway-5xx.md", ""},
		{"--reset-offsets --to-datetime", "kafka-consumer-lag.md", "Replay from a point in time"},
		{"--previous", "k8s-crashloopbackoff.md", "Read the logs"},
		{"ENOSPC", "disk-full.md", "Symptoms"},
		{"vpn-apac-users", "vpn-access-new-staff.md", ""},
		{"app_payments_b", "secret-rotation.md", "Rotate a database password"},
		{"resolvectl flush-caches", "dns-propagation.md", "Stale answers"},
		{"Restarting pods", "k8s-crashloopbackoff.md", ""}, // stemming: restarting ~ restarted
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res, err := ix.Search(context.Background(), tt.query, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) == 0 {
				t.Fatalf("Search(%q): no results, want %s first", tt.query, tt.wantPath)
			}
			if res[0].Path != tt.wantPath || !strings.Contains(res[0].Section, tt.wantIn) {
				t.Errorf("Search(%q) top = %s %q, want %s %q", tt.query, res[0].Path, res[0].Section, tt.wantPath, tt.wantIn)
			}
		})
	}
}

func TestSearchResultFields(t *testing.T) {
	ix := mustIndex(t, "testdata/runbooks")
	res, err := ix.Search(context.Background(), "cert-manager force renewal", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatal("no results")
	}
	r := res[0]
	if r.Document != "TLS certificate renewal" {
		t.Errorf("Document = %q, want %q", r.Document, "TLS certificate renewal")
	}
	if r.Section != "Renew with cert-manager" {
		t.Errorf("Section = %q, want %q", r.Section, "Renew with cert-manager")
	}
	if r.Path != "tls-certificate-renewal.md" {
		t.Errorf("Path = %q, want tls-certificate-renewal.md", r.Path)
	}
	if r.Score <= 0 || r.Score >= 1 {
		t.Errorf("Score = %v, want in (0, 1)", r.Score)
	}
	if !strings.Contains(r.Content, "cmctl renew -n payments api-pay-sg-tls") {
		t.Errorf("Content = %q, want the section's commands", r.Content)
	}
	if r.Snippet == "" || len(r.Snippet) > len(r.Content) || strings.Contains(r.Snippet, "\n") {
		t.Errorf("Snippet = %q, want a short one-line excerpt", r.Snippet)
	}
	for i := 1; i < len(res); i++ {
		if res[i].Score > res[i-1].Score {
			t.Errorf("result %d score %v above result %d score %v, want descending", i, res[i].Score, i-1, res[i-1].Score)
		}
	}
	// A document's intro (text before its first subheading) is cited by the
	// document title alone.
	intro, err := ix.Search(context.Background(), "alb-pay-sg PayMongo ledger", 1)
	if err != nil || len(intro) != 1 {
		t.Fatalf("Search intro: %d results, %v", len(intro), err)
	}
	if intro[0].Section != intro[0].Document || intro[0].Document != "Payment gateway 5xx errors in ap-southeast-1" {
		t.Errorf("intro cited as %q / %q, want the document title for both", intro[0].Document, intro[0].Section)
	}
	if res, err := ix.Search(context.Background(), "kubectl", 2); err != nil || len(res) != 2 {
		t.Errorf("Search limit 2: got %d results (err %v), want 2", len(res), err)
	}
}

func TestSearchHostileQueries(t *testing.T) {
	ix := mustIndex(t, "testdata/runbooks")
	tests := []struct {
		name      string
		query     string
		wantEmpty bool
	}{
		{"empty", "", true},
		{"blank", " \t\n ", true},
		{"quote", "'", true},
		{"operators", "&|!", true},
		{"prefix operator", ":*", true},
		{"tsquery syntax", "disk:* & !full | (kafka <-> lag)", false},
		{"unbalanced", "((( kafka", false},
		{"unterminated quote", `"kafka lag`, false},
		{"sql injection", "'; DROP TABLE knowledge_sections; --", false},
		{"only stop words", "how do I do it and what is the", true},
		{"backslashes", `\\ \' \"`, true},
		{"nul byte", "disk\x00full", false},
		{"invalid utf-8", "disk \xff\xfe full", false},
		{"emoji", "🔥 disk full 🔥", false},
		{"very long", strings.Repeat("kafka consumer lag pod restart disk full ", 5000), false},
		{"very long word", strings.Repeat("x", 100000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ix.Search(context.Background(), tt.query, 5)
			if err != nil {
				t.Fatalf("Search: %v, want no error", err)
			}
			if tt.wantEmpty && len(res) != 0 {
				t.Errorf("Search returned %d results, want none", len(res))
			}
		})
	}
	// The table is still there after the injection attempt.
	if res, err := ix.Search(context.Background(), "kafka", 1); err != nil || len(res) != 1 {
		t.Errorf("Search(kafka) after hostile queries: %d results, err %v; want 1", len(res), err)
	}
}
