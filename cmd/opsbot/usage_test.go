package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/testdb"
)

func TestUsageReport(t *testing.T) {
	ctx := context.Background()
	db, dbURL := testdb.NewWithURL(t) // org-wide figures: a database of its own
	var ann uuid.UUID
	if err := db.QueryRow(ctx, `INSERT INTO users (handle, time_zone) VALUES ('report-ann', 'Asia/Kathmandu') RETURNING id`).Scan(&ann); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		at   string
		cost int64
	}{
		{"2025-06-01T18:14:59Z", 1_250_000}, // 23:59:59 1 June in Kathmandu
		{"2025-06-01T18:15:00Z", 10},        // 00:00 2 June
	} {
		at, _ := time.Parse(time.RFC3339, r.at)
		if _, err := db.Exec(ctx, `INSERT INTO usage_events (user_id, source, model, prompt_tokens, completion_tokens, cost_micro_usd, occurred_at)
			VALUES ($1, 'slack', 'gpt-4o', 1000, 200, $2, $3)`, ann, r.cost, at); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name  string
		args  []string
		want  []string // substrings, whitespace collapsed
		wantN int      // exit code
	}{
		{"user in own zone", []string{"--user", "report-ann", "--start", "2025-06-01", "--end", "2025-06-03"},
			[]string{"Usage of report-ann, 2025-06-01 to 2025-06-03 (Asia/Kathmandu)",
				"2025-06-01 1 1000 200 0 1200 $1.25", "2025-06-02 1 1000 200 0 1200 $0.00001",
				"2025-06-03 0 0 0 0 0 $0.00", "TOTAL 2 2000 400 0 2400 $1.25001", "gpt-4o 2 2000 400 0 2400 $1.25001"}, 0},
		{"user in UTC", []string{"--user", "report-ann", "--tz", "UTC", "--start", "2025-06-01", "--end", "2025-06-01"},
			[]string{"2025-06-01 2 2000 400 0 2400 $1.25001"}, 0},
		{"org", []string{"--tz", "Asia/Kathmandu", "--start", "2025-06-01", "--end", "2025-06-02"},
			[]string{"Usage of all users", "2025-06-01 1 1000 200 0 1200 $1.25", "report-ann 2 2000 400 0 2400 $1.25001"}, 0},
		{"unknown user", []string{"--user", "nobody-at-all"}, nil, 2},
		{"bad zone", []string{"--tz", "Mars/Olympus"}, nil, 2},
		{"bad days", []string{"--days", "0"}, nil, 2},
		{"half a range", []string{"--start", "2025-06-01"}, nil, 2},
		{"days and a range", []string{"--days", "7", "--start", "2025-06-01", "--end", "2025-06-02"}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", dbURL)
			var stdout, stderr bytes.Buffer
			code := run(ctx, append([]string{"usage", "report"}, tt.args...), strings.NewReader(""), &stdout, &stderr)
			out, errOut := stdout.String(), stderr.String()
			if code != tt.wantN {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.wantN, errOut)
			}
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tt.want {
				if !strings.Contains(flat, w) {
					t.Errorf("output:\n%s\nwant it to contain %q", out, w)
				}
			}
		})
	}
}

func TestUsageConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"digest off", map[string]string{"OPSBOT_DIGEST_SCHEDULE": "off"}, ""},
		{"bare CRON_TZ", map[string]string{"OPSBOT_DIGEST_SCHEDULE": "CRON_TZ=UTC"}, "OPSBOT_DIGEST_SCHEDULE"},
		{"bad archive days", map[string]string{"OPSBOT_AUTO_ARCHIVE_DAYS": "soon"}, "OPSBOT_AUTO_ARCHIVE_DAYS"},
		{"bad retention", map[string]string{"OPSBOT_RETENTION_DAYS": "-5"}, "OPSBOT_RETENTION_DAYS"},
		{"channel without token", map[string]string{"OPSBOT_DIGEST_SLACK_CHANNEL": "C1"}, "SLACK_BOT_TOKEN"},
		{"bad estimate", map[string]string{"OPSBOT_BUDGET_TURN_ESTIMATE_USD": "0"}, "OPSBOT_BUDGET_TURN_ESTIMATE_USD"},
		{"teams half", map[string]string{"OPSBOT_DIGEST_TEAMS_CONVERSATION_ID": "19:x"}, "go together"},
		{"teams without app", map[string]string{"OPSBOT_DIGEST_TEAMS_CONVERSATION_ID": "19:x",
			"OPSBOT_DIGEST_TEAMS_SERVICE_URL": "https://smba.trafficmanager.net/apac/"}, "TEAMS_APP_ID"},
		{"teams", map[string]string{"OPSBOT_DIGEST_TEAMS_CONVERSATION_ID": "19:x", "TEAMS_APP_ID": "a", "TEAMS_APP_PASSWORD": "p",
			"TEAMS_TENANT_ID": "t", "OPSBOT_DIGEST_TEAMS_SERVICE_URL": "https://smba.trafficmanager.net/apac/"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(func(k string) string {
				if k == "OPSBOT_TIME_ZONE" {
					return "Asia/Manila"
				}
				return tt.env[k]
			})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				h := c.Housekeeping
				if h.AutoArchiveDays != 30 || h.RetentionDays != 0 || h.Location.String() != "Asia/Manila" || c.Usage.Jobs.Location.String() != "Asia/Manila" {
					t.Errorf("got %+v, want archive 30 days, retention off, Asia/Manila", h)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestNewNotifier(t *testing.T) {
	env := map[string]string{"OPSBOT_DIGEST_SLACK_CHANNEL": "C1", "SLACK_BOT_TOKEN": "xoxb-1",
		"OPSBOT_DIGEST_TEAMS_CONVERSATION_ID": "19:x", "OPSBOT_DIGEST_TEAMS_SERVICE_URL": "https://smba.example/",
		"TEAMS_APP_ID": "a", "TEAMS_APP_PASSWORD": "p", "TEAMS_TENANT_ID": "t"}
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{"nothing configured", nil, "periodic.LogNotifier"},
		{"slack", []string{"OPSBOT_DIGEST_SLACK_CHANNEL", "SLACK_BOT_TOKEN"}, "*slack.Notifier"},
		{"teams", []string{"OPSBOT_DIGEST_TEAMS_CONVERSATION_ID", "OPSBOT_DIGEST_TEAMS_SERVICE_URL", "TEAMS_APP_ID",
			"TEAMS_APP_PASSWORD", "TEAMS_TENANT_ID"}, "*teams.Notifier"},
		{"both", slices.Collect(maps.Keys(env)), "periodic.Notifiers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadUsageConfig(func(k string) string {
				if slices.Contains(tt.keys, k) {
					return env[k]
				}
				return ""
			}, "UTC")
			if err != nil {
				t.Fatal(err)
			}
			tc, err := loadTeamsConfig(func(k string) string {
				if slices.Contains(tt.keys, k) {
					return env[k]
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", newNotifier(c, newTeamsTokens(tc), slog.New(slog.DiscardHandler))); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
