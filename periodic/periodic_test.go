package periodic

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	sgt, _ := time.LoadLocation("Asia/Singapore")
	from := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC) // 10:00 SGT, a Tuesday
	tests := []struct {
		spec     string
		wantNext time.Time // zero: disabled
		wantErr  bool
	}{
		{"", time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC), false}, // the default, 09:00 SGT tomorrow
		{"CRON_TZ=Asia/Kolkata 0 9 * * *", time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC), false},
		{"CRON_TZ=Asia/Kathmandu 0 9 * * *", time.Date(2026, 11, 24, 3, 15, 0, 0, time.UTC), false},
		{"0 9 * * 1-5", time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), false}, // no zone: UTC
		{"off", time.Time{}, false},
		{" OFF ", time.Time{}, false},
		{"CRON_TZ=UTC", time.Time{}, true}, // panics inside robfig/cron unguarded
		{"TZ=UTC", time.Time{}, true},
		{"CRON_TZ=Mars/Olympus 0 9 * * *", time.Time{}, true},
		{"0 9 * *", time.Time{}, true},
		{"@daily", time.Time{}, true},
		{"61 9 * * *", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := Parse(tt.spec, "0 9 * * *", sgt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if tt.wantNext.IsZero() {
				if s != nil {
					t.Errorf("got a schedule, want disabled")
				}
				return
			}
			if got := s.Next(from); !got.Equal(tt.wantNext) {
				t.Errorf("next after %v: got %v, want %v", from, got.UTC(), tt.wantNext)
			}
		})
	}
}

// failingNotifier fails every report; countingNotifier counts them.
type failingNotifier struct{}

func (failingNotifier) Notify(context.Context, string) error { return errors.New("chat is down") }

type countingNotifier struct{ n int }

func (c *countingNotifier) Notify(context.Context, string) error { c.n++; return nil }

func TestNotifiersTriesAll(t *testing.T) {
	up := &countingNotifier{}
	err := Notifiers{failingNotifier{}, up}.Notify(context.Background(), "digest")
	if err == nil || !strings.Contains(err.Error(), "chat is down") {
		t.Errorf("got %v, want the failure reported", err)
	}
	if up.n != 1 {
		t.Errorf("the working notifier got %d reports, want 1", up.n)
	}
}

// TestLogNotifierKeepsTextOutOfInfo: with no chat channel the reports go to
// the log, but what people asked (quoted by the gap report) only at debug
// level.
func TestLogNotifierKeepsTextOutOfInfo(t *testing.T) {
	report := "Questions our runbooks could not answer, 2026-11-16 09:00 to 2026-11-23 09:00 SGT\n" +
		"1 questions, 1 distinct:\n 1. \"how do I rotate the vault token for payments-prod\" — asked 1×\n"
	for _, tt := range []struct {
		level    slog.Level
		wantBody bool
	}{{slog.LevelInfo, false}, {slog.LevelDebug, true}} {
		var buf strings.Builder
		n := LogNotifier{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))}
		if err := n.Notify(context.Background(), report); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "Questions our runbooks could not answer") || !strings.Contains(buf.String(), "lines=3") {
			t.Errorf("%s log %q: want the report's first line and its length", tt.level, buf.String())
		}
		if got := strings.Contains(buf.String(), "vault token"); got != tt.wantBody {
			t.Errorf("%s log %q: question logged %v, want %v", tt.level, buf.String(), got, tt.wantBody)
		}
	}
}
