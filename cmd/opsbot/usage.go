package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/adapters/slack"
	"github.com/apacops/opsbot/adapters/teams"
	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/periodic"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// UsageConfig is the configuration of usage reports, budgets and the
// periodic jobs (issue 5).
type UsageConfig struct {
	// Jobs: OPSBOT_DIGEST_SCHEDULE.
	Jobs usage.JobsConfig
	// DigestSlackChannel receives the daily digest and the weekly gap
	// report (OPSBOT_DIGEST_SLACK_CHANNEL); empty logs them instead.
	DigestSlackChannel string
	SlackBotToken      string // SLACK_BOT_TOKEN
	SlackAPIURL        string // SLACK_API_URL
	// Teams: reports also go to this conversation when both are set
	// (OPSBOT_DIGEST_TEAMS_SERVICE_URL, OPSBOT_DIGEST_TEAMS_CONVERSATION_ID),
	// as the bot (TEAMS_APP_ID, TEAMS_APP_PASSWORD, TEAMS_TENANT_ID or
	// TEAMS_TOKEN_URL: TeamsConfig), with the app token the Teams surface
	// uses.
	Teams teams.NotifierConfig
	// TurnEstimateMicroUSD is what a turn reserves against a budget until
	// its cost is known (OPSBOT_BUDGET_TURN_ESTIMATE_USD, default 0.05).
	TurnEstimateMicroUSD int64
}

// loadUsageConfig reads UsageConfig; zone is OPSBOT_TIME_ZONE, already checked.
func loadUsageConfig(getenv func(string) string, zone string) (UsageConfig, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return UsageConfig{}, fmt.Errorf("OPSBOT_TIME_ZONE: %w", err)
	}
	c := UsageConfig{
		Jobs: usage.JobsConfig{
			Location:       loc,
			DigestSchedule: getenv("OPSBOT_DIGEST_SCHEDULE"),
		},
		DigestSlackChannel: getenv("OPSBOT_DIGEST_SLACK_CHANNEL"),
		SlackBotToken:      getenv("SLACK_BOT_TOKEN"),
		SlackAPIURL:        getenv("SLACK_API_URL"),
		Teams: teams.NotifierConfig{
			ServiceURL:     getenv("OPSBOT_DIGEST_TEAMS_SERVICE_URL"),
			ConversationID: getenv("OPSBOT_DIGEST_TEAMS_CONVERSATION_ID"),
		},
		TurnEstimateMicroUSD: usage.DefaultTurnEstimate,
	}
	if err := c.Jobs.Validate(); err != nil {
		return UsageConfig{}, err
	}
	if v := getenv("OPSBOT_BUDGET_TURN_ESTIMATE_USD"); v != "" {
		if c.TurnEstimateMicroUSD, err = usage.ParseUSD(v); err != nil || c.TurnEstimateMicroUSD == 0 {
			return UsageConfig{}, fmt.Errorf("OPSBOT_BUDGET_TURN_ESTIMATE_USD: %q is not a positive USD amount", v)
		}
	}
	if c.DigestSlackChannel != "" && c.SlackBotToken == "" {
		return UsageConfig{}, errors.New("OPSBOT_DIGEST_SLACK_CHANNEL is set but SLACK_BOT_TOKEN is not")
	}
	if (c.Teams.ServiceURL == "") != (c.Teams.ConversationID == "") {
		return UsageConfig{}, errors.New("OPSBOT_DIGEST_TEAMS_SERVICE_URL and OPSBOT_DIGEST_TEAMS_CONVERSATION_ID go together")
	}
	if c.Teams.ConversationID != "" {
		if getenv("TEAMS_APP_ID") == "" || getenv("TEAMS_APP_PASSWORD") == "" ||
			(getenv("TEAMS_TENANT_ID") == "" && getenv("TEAMS_TOKEN_URL") == "") {
			return UsageConfig{}, errors.New("the Teams digest needs TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID (or TEAMS_TOKEN_URL)")
		}
	}
	return c, nil
}

// newNotifier is where reports go: the Slack channel and/or the Teams
// conversation configured (posting with teamsTokens), else the log. The
// usage digest and the knowledge gap report share it.
func newNotifier(c UsageConfig, teamsTokens *teams.TokenSource, log *slog.Logger) periodic.Notifier {
	var ns periodic.Notifiers
	if c.DigestSlackChannel != "" {
		ns = append(ns, slack.NewNotifier(c.SlackBotToken, c.SlackAPIURL, c.DigestSlackChannel))
	}
	if c.Teams.ConversationID != "" && teamsTokens != nil {
		tc := c.Teams
		tc.Tokens = teamsTokens
		ns = append(ns, teams.NewNotifier(tc))
	}
	switch len(ns) {
	case 0:
		return periodic.LogNotifier{Log: log}
	case 1:
		return ns[0]
	}
	return ns
}

// newUsageJobs builds the usage package's periodic jobs for the River client:
// call AddWorkers on its workers and append PeriodicJobs to its config.
func newUsageJobs(c UsageConfig, pool *pgxpool.Pool, n periodic.Notifier, log *slog.Logger) *usage.Jobs {
	return &usage.Jobs{DB: pool, Notifier: n, Log: log, Config: c.Jobs}
}

// loadHousekeepingConfig reads the conversations' auto-archive and
// retention settings; loc is OPSBOT_TIME_ZONE.
func loadHousekeepingConfig(getenv func(string) string, loc *time.Location) (conversations.HousekeepingConfig, error) {
	c := conversations.HousekeepingConfig{
		Location:          loc,
		ArchiveSchedule:   getenv("OPSBOT_AUTO_ARCHIVE_SCHEDULE"),
		RetentionSchedule: getenv("OPSBOT_RETENTION_SCHEDULE"),
	}
	days := func(name string, def int) (int, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("%s: %q is not a number of days (0 disables)", name, v)
		}
		return n, nil
	}
	var err error
	if c.AutoArchiveDays, err = days("OPSBOT_AUTO_ARCHIVE_DAYS", 30); err != nil {
		return c, err
	}
	if c.RetentionDays, err = days("OPSBOT_RETENTION_DAYS", 0); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// newBudgets builds the budget keeper the engine admits turns with and the
// admin API edits.
func newBudgets(c UsageConfig, pool *pgxpool.Pool) *usage.Budgets {
	return usage.NewBudgets(pool, usage.BudgetOptions{Location: c.Jobs.Location, TurnEstimate: c.TurnEstimateMicroUSD})
}

// runUsage is `opsbot usage report`.
func runUsage(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		return usageError("usage report [--days 30 | --start YYYY-MM-DD --end YYYY-MM-DD] [--tz ZONE] [--user HANDLE]")
	}
	fs := flag.NewFlagSet("usage report", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	days := fs.Int("days", 30, "the last N days, today included")
	start := fs.String("start", "", "first day, YYYY-MM-DD (with --end)")
	end := fs.String("end", "", "last day, YYYY-MM-DD (with --start)")
	tz := fs.String("tz", "", "IANA time zone of the days (default: the user's zone, or OPSBOT_TIME_ZONE)")
	handle := fs.String("user", "", "one user's usage (default: the whole organisation)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("usage report takes no arguments besides flags")
	}
	if *start != "" || *end != "" {
		daysSet := false
		fs.Visit(func(f *flag.Flag) { daysSet = daysSet || f.Name == "days" })
		if daysSet {
			return usageError("--days cannot be combined with --start and --end")
		}
	}
	pool, err := connect(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	var user *users.User
	zone := e.cfg.TimeZone
	if *handle != "" {
		u, err := users.NewStore(pool, e.cfg.TimeZone).GetByHandle(ctx, *handle)
		if errors.Is(err, users.ErrNotFound) {
			return usageError(fmt.Sprintf("no user %q", *handle))
		}
		if err != nil {
			return err
		}
		user, zone = &u, u.TimeZone
	}
	if *tz != "" {
		zone = *tz
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return usageError(fmt.Sprintf("--tz: unknown time zone %q", zone))
	}
	rng, err := reportRange(loc, *days, *start, *end)
	if err != nil {
		return err
	}
	rp := usage.NewReports(pool)
	if user != nil {
		s, err := rp.Summarize(ctx, user.ID, rng)
		if err != nil {
			return err
		}
		printUserReport(e.stdout, user.Handle, s)
		return nil
	}
	byDay, err := rp.SummarizeOrg(ctx, rng, usage.GroupByDay)
	if err != nil {
		return err
	}
	byModel, err := rp.SummarizeOrg(ctx, rng, usage.GroupByModel)
	if err != nil {
		return err
	}
	byUser, err := rp.SummarizeOrg(ctx, rng, usage.GroupByUser)
	if err != nil {
		return err
	}
	printOrgReport(e.stdout, rng, byDay, byModel, byUser)
	return nil
}

func reportRange(loc *time.Location, days int, start, end string) (usage.Range, error) {
	if start == "" && end == "" {
		r, err := usage.LastDays(time.Now(), loc, days)
		if err != nil {
			return usage.Range{}, usageError("--days: " + err.Error())
		}
		return r, nil
	}
	if start == "" || end == "" {
		return usage.Range{}, usageError("--start and --end go together")
	}
	first, err := usage.ParseDate(start)
	if err != nil {
		return usage.Range{}, usageError("--start: " + err.Error())
	}
	last, err := usage.ParseDate(end)
	if err != nil {
		return usage.Range{}, usageError("--end: " + err.Error())
	}
	r, err := usage.NewRange(loc, first, last)
	if err != nil {
		return usage.Range{}, usageError(err.Error())
	}
	return r, nil
}

const totalsHeader = "REPLIES\tPROMPT\tCOMPLETION\tCACHED\tTOTAL TOKENS\tCOST\t"

func totalsCells(t usage.Totals) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%s\t", t.Messages, t.PromptTokens, t.CompletionTokens,
		t.CachedTokens, t.TotalTokens(), usage.FormatUSD(t.CostMicroUSD))
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func printUserReport(w io.Writer, handle string, s usage.Summary) {
	fmt.Fprintf(w, "Usage of %s, %s to %s (%s): %d conversations\n\n", handle, s.Range.First, s.Range.Last, s.Range.Loc, s.Conversations)
	tw := newTable(w)
	fmt.Fprintln(tw, "DATE\t"+totalsHeader)
	for _, d := range s.Daily {
		fmt.Fprintln(tw, d.Date.String()+"\t"+totalsCells(d.Totals))
	}
	fmt.Fprintln(tw, "TOTAL\t"+totalsCells(s.Totals))
	_ = tw.Flush()
	if len(s.ByModel) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "MODEL\t"+totalsHeader)
		for _, m := range s.ByModel {
			fmt.Fprintln(tw, m.Model+"\t"+totalsCells(m.Totals))
		}
		_ = tw.Flush()
	}
}

func printOrgReport(w io.Writer, rng usage.Range, byDay, byModel, byUser usage.OrgReport) {
	fmt.Fprintf(w, "Usage of all users, %s to %s (%s)\n\n", rng.First, rng.Last, rng.Loc)
	for _, part := range []struct {
		title string
		rep   usage.OrgReport
		total bool
	}{{"DATE", byDay, true}, {"MODEL", byModel, false}, {"USER", byUser, false}} {
		if len(part.rep.Rows) == 0 {
			continue
		}
		tw := newTable(w)
		fmt.Fprintln(tw, part.title+"\t"+totalsHeader)
		for _, r := range part.rep.Rows {
			fmt.Fprintln(tw, r.Label+"\t"+totalsCells(r.Totals))
		}
		if part.total {
			fmt.Fprintln(tw, "TOTAL\t"+totalsCells(part.rep.Totals))
		}
		_ = tw.Flush()
		fmt.Fprintln(w)
	}
}
