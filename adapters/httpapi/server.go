// Package httpapi serves the REST API (/api/v1, the contract of the service
// opsbot replaces), the admin surface, health endpoints and the OpenAPI
// document over net/http.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/migrations"
	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// MaxBodyBytes bounds every request body; larger bodies get 413. It leaves
// room for a 16 KiB message written entirely in JSON \u escapes.
const MaxBodyBytes = 128 << 10

// Deps are what the server is built from; cmd/opsbot wires them.
type Deps struct {
	Log     *slog.Logger
	DB      *pgxpool.Pool
	Users   *users.Store
	Metrics http.Handler // served at /metrics when set
	// Budgets serves /api/v1/admin/budgets; nil gives budgets in UTC months.
	Budgets *usage.Budgets
	// Now is the clock for "the last N days"; nil is time.Now.
	Now func() time.Time
	// Engine answers POST /api/v1/conversations/{id}/messages; nil answers
	// 503 (see send.go).
	Engine Responder
	// TurnTimeout bounds one such turn; it must outlast the engine's model
	// deadline. Zero means 3 minutes.
	TurnTimeout time.Duration
	// Mounts are the chat surfaces' routes (Slack's, Teams'), served beside
	// /api/v1 (see routes.go).
	Mounts []Mount
	// Registerer receives the HTTP request metrics; nil records none.
	Registerer prometheus.Registerer
}

// Server is the HTTP surface of opsbot.
type Server struct {
	log     *slog.Logger
	db      *pgxpool.Pool
	users   *users.Store
	convs   *conversations.Store
	metrics http.Handler
	handler http.Handler
	reports *usage.Reports
	budgets *usage.Budgets
	now     func() time.Time
	engine  Responder
	// turnTimeout bounds a turn taken over HTTP (Deps.TurnTimeout).
	turnTimeout time.Duration
	mounts      []Mount
	httpMetrics *httpMetrics
	// draining is set on shutdown: /readyz answers 503 from then on.
	draining atomic.Bool
	// turns is the context HTTP turns run under, detached from their
	// requests; StopTurns cancels it.
	turns     context.Context
	stopTurns context.CancelFunc
}

// New builds the server and its routes.
func New(d Deps) *Server {
	s := &Server{
		log:         d.Log,
		db:          d.DB,
		users:       d.Users,
		convs:       conversations.NewStore(d.DB),
		metrics:     d.Metrics,
		reports:     usage.NewReports(d.DB),
		budgets:     d.Budgets,
		now:         d.Now,
		engine:      d.Engine,
		turnTimeout: d.TurnTimeout,
		mounts:      d.Mounts,
		httpMetrics: newHTTPMetrics(d.Registerer),
	}
	if s.turnTimeout <= 0 {
		s.turnTimeout = defaultTurnTimeout
	}
	s.turns, s.stopTurns = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.budgets == nil {
		s.budgets = usage.NewBudgets(d.DB, usage.BudgetOptions{})
	}
	if s.now == nil {
		s.now = time.Now
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.handler = s.logRequests(problemForUnrouted(mux, s.log))
	return s
}

// problemForUnrouted answers requests no route matches (404, or 405 with
// Allow) as problem documents instead of ServeMux's plain text.
func problemForUnrouted(mux *http.ServeMux, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		status := probe.status
		if status == 0 || status == http.StatusOK {
			status = http.StatusNotFound
		}
		writeError(w, r, log, &Error{Status: status, Detail: http.StatusText(status)})
	})
}

// headerProbe captures the status and headers ServeMux's own error handlers
// would send, discarding their body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Drain makes /readyz answer 503 from now on: the process is shutting down
// and a load balancer should send its work elsewhere.
func (s *Server) Drain() { s.draining.Store(true) }

// StopTurns cancels the turns still running over HTTP, the last step of a
// shutdown whose grace ran out; the engine records what their model calls
// cost before they return.
func (s *Server) StopTurns() { s.stopTurns() }

// readyz answers 200 only when the database answers and every migration is
// applied, so a load balancer never sends work to a replica that cannot do
// it, and 503 once the process is draining.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		return &Error{Status: http.StatusServiceUnavailable, Detail: "shutting down"}
	}
	if err := s.db.Ping(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "not ready: database", "error", err)
		return &Error{Status: http.StatusServiceUnavailable, Detail: "database unreachable"}
	}
	if err := migrations.Current(r.Context(), s.db); err != nil {
		s.log.WarnContext(r.Context(), "not ready: migrations", "error", err)
		return &Error{Status: http.StatusServiceUnavailable, Detail: "migrations not current"}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON object body into v. Malformed JSON is 422 naming
// "body", and so is anything after the object (a stray "}" or "]", a second
// value): a body means one value, not its first; a wrong type names the
// field.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &te) && te.Field != "":
			return errInvalid(te.Field, "must be a "+te.Type.String())
		case errors.Is(err, io.EOF):
			return errInvalid("body", "must be a JSON object")
		default:
			return errInvalid("body", "is not valid JSON")
		}
	}
	// Decoder.More says false at a stray "}" or "]"; reading on to the end
	// of the body is the one check that sees every kind of trailing data.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errInvalid("body", "must hold a single JSON object")
	}
	return nil
}

// queryInt reads an integer query parameter, def when absent.
func queryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errInvalid(name, "must be an integer")
	}
	return n, nil
}

// queryBool reads a boolean query parameter, def when absent.
func queryBool(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, errInvalid(name, "must be true or false")
}
