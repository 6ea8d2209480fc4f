package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/knowledge"
)

// Config is the whole configuration, read once from the environment.
type Config struct {
	DatabaseURL string
	Addr        string
	TimeZone    string
	LogLevel    slog.Level
	// PprofAddr, when set, serves Go's profiles there (OPSBOT_PPROF_ADDR;
	// a bare port listens on loopback only).
	PprofAddr string
	// RescueAfter is how long a job left running by a replica that died
	// waits before another replica runs it again (OPSBOT_RESCUE_AFTER, a Go
	// duration); 0 derives it from the model's deadline (river.go).
	RescueAfter time.Duration
	// Workers is how many River jobs (mostly chat turns) one process runs
	// at once (OPSBOT_WORKERS, default riverMaxWorkers).
	Workers int
	// GapsSchedule is when the weekly "questions the runbooks could not
	// answer" report goes out (OPSBOT_GAPS_SCHEDULE; "off" disables it).
	GapsSchedule string
	// Usage configures budgets, the usage digest and where reports go
	// (cmd/opsbot/usage.go).
	Usage UsageConfig
	// Housekeeping configures auto-archive and retention (usage.go).
	Housekeeping conversations.HousekeepingConfig
	// Engine configures the model, prices and redaction (engine.go).
	Engine EngineConfig
	// Slack configures the Slack chat surface (slack.go).
	Slack SlackConfig
	// Teams is the Teams bot's registration (teams.go).
	Teams TeamsConfig
}

// LoadConfig reads the configuration through getenv (os.Getenv in main).
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		Addr:        or(getenv("OPSBOT_ADDR"), "127.0.0.1:8080"),
		TimeZone:    or(getenv("OPSBOT_TIME_ZONE"), "Asia/Singapore"),
	}
	var err error
	if c.PprofAddr, err = pprofAddr(getenv("OPSBOT_PPROF_ADDR")); err != nil {
		return Config{}, err
	}
	if v := getenv("OPSBOT_RESCUE_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("OPSBOT_RESCUE_AFTER: %q is not a positive duration such as 4m", v)
		}
		c.RescueAfter = d
	}
	c.Workers = riverMaxWorkers
	if v := getenv("OPSBOT_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxWorkers {
			return Config{}, fmt.Errorf("OPSBOT_WORKERS: %q is not a whole number from 1 to %d", v, maxWorkers)
		}
		c.Workers = n
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return Config{}, fmt.Errorf("OPSBOT_TIME_ZONE: unknown zone %q", c.TimeZone)
	}
	// Like the other schedules, the default follows OPSBOT_TIME_ZONE.
	c.GapsSchedule = or(getenv("OPSBOT_GAPS_SCHEDULE"), "CRON_TZ="+c.TimeZone+" 0 9 * * 1")
	if _, err := knowledge.ParseSchedule(c.GapsSchedule); err != nil {
		return Config{}, fmt.Errorf("OPSBOT_GAPS_SCHEDULE: %w", err)
	}
	uc, err := loadUsageConfig(getenv, c.TimeZone)
	if err != nil {
		return Config{}, err
	}
	c.Usage = uc
	if c.Housekeeping, err = loadHousekeepingConfig(getenv, uc.Jobs.Location); err != nil {
		return Config{}, err
	}
	ec, err := loadEngineConfig(getenv)
	if err != nil {
		return Config{}, err
	}
	c.Engine = ec
	if c.Slack, err = loadSlackConfig(getenv); err != nil {
		return Config{}, err
	}
	if c.Teams, err = loadTeamsConfig(getenv); err != nil {
		return Config{}, err
	}
	if lvl := getenv("OPSBOT_LOG_LEVEL"); lvl != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(lvl))); err != nil {
			return Config{}, fmt.Errorf("OPSBOT_LOG_LEVEL: %w", err)
		}
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
