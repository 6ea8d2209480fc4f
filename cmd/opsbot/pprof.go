package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/apacops/opsbot/internal/sqlstats"
)

// pprofAddr reads OPSBOT_PPROF_ADDR: empty keeps profiling off; a bare
// port (":6060" or "6060") listens on loopback only, since profiles expose
// memory and the endpoint has no authentication. A host must be named to
// listen elsewhere.
func pprofAddr(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		v = ":" + v // a bare port
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return "", fmt.Errorf("OPSBOT_PPROF_ADDR: %q is not host:port or a port", v)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// servePprof serves Go's profiles on addr until ctx ends, and at
// /debug/sql the statements and round trips sent to PostgreSQL so far.
func servePprof(ctx context.Context, addr string, sql *sqlstats.Counter, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/sql", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sql.Stats())
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("profiling enabled", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof: %w", err)
	}
	return nil
}
