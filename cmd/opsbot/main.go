// Command opsbot is the ops assistant: one binary whose subcommands serve the
// chat surfaces and REST API, migrate the database, manage API tokens, index
// runbooks and report usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/redact"
)

const usageText = `opsbot — the APAC ops assistant

usage:
  opsbot serve                        HTTP API, chat endpoints and workers
  opsbot migrate                      apply database migrations
  opsbot chat                         talk to the bot from this terminal
  opsbot token create --user HANDLE [--admin] [--name N]
  opsbot token revoke ID
  opsbot runbooks sync DIR            index Markdown runbooks
  opsbot runbooks gaps                questions the runbooks could not answer
  opsbot usage report [--days 30] [--tz Asia/Manila] [--user HANDLE]

Configuration is read from the environment; see README.md.
`

// command is one subcommand: it gets its arguments and the shared environment.
type command func(ctx context.Context, env *env, args []string) error

// env is what every subcommand gets: configuration, output streams, a logger.
type env struct {
	cfg    Config
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// subcommands maps subcommand names to their implementations.
func subcommands() map[string]command {
	return map[string]command{
		"serve":    runServe,
		"migrate":  runMigrate,
		"token":    runToken,
		"chat":     runChat,
		"runbooks": runRunbooks,
		"usage":    runUsage,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := subcommands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "opsbot: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "opsbot: %v\n", err)
		return 2
	}
	// Log lines and the closing error may quote what a user typed (an
	// error naming a value, a report): both go through the redactor.
	e := &env{cfg: cfg, stdin: stdin, stdout: stdout, stderr: stderr,
		log: slog.New(redact.NewHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}), nil))}
	if err := cmd(ctx, e, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		msg := redact.String(err.Error())
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "opsbot %s: %s\n", args[0], msg)
			return 2
		}
		fmt.Fprintf(stderr, "opsbot %s: %s\n", args[0], msg)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// defaultPoolConns is the pool size when DATABASE_URL does not set one.
const defaultPoolConns = 20

// connect opens the pool every database command uses.
func connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	return connectTraced(ctx, cfg, nil)
}

// connectTraced is connect with a tracer, when not nil, that sees every
// statement (serve's /debug/sql).
func connectTraced(ctx context.Context, cfg Config, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL is not set (make run provides a local database)")
	}
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %s", parseReason(err))
	}
	if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
		// pgx's default (max(4, cores)) starves River's workers and the HTTP
		// handlers of each other; pool_max_conns in the URL overrides this.
		pc.MaxConns = defaultPoolConns
	}
	if tracer != nil {
		pc.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", pc.ConnConfig.Host, err)
	}
	return pool, nil
}

// parseReason is why a connection string did not parse, without the string:
// pgx quotes it with the password masked only on a best-effort basis
// ("postgres://app:p@ss@db" comes out as "app:xxxxx@ss@db"), and the
// command prints the error. The error is not wrapped, for the same reason
// (pgconn.ParseConfigError carries the string).
func parseReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		return msg[i+len("`: "):]
	}
	return "not a valid connection string"
}
