// Package httpapi serves the REST API (/api/v1, the contract of the service
// opsbot replaces), the admin surface, health endpoints and the OpenAPI
// document over net/http.
package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
	}
	if s.turnTimeout <= 0 {
		s.turnTimeout = defaultTurnTimeout
	}
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
		var h http.Handler = s.adapt(rt.handler)
		if !rt.public {
			h = s.authenticate(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
	s.handler = s.recoverPanics(s.logRequests(problemForUnrouted(mux, s.log)))
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

// handlerFunc is an HTTP handler that returns its error instead of writing it.
type handlerFunc func(http.ResponseWriter, *http.Request) error

func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// route is one entry of the routing table; the OpenAPI test walks it.
type route struct {
	method  string
	path    string
	public  bool // no bearer token needed
	handler handlerFunc
}

// routes is the whole routing table.
func (s *Server) routes() []route {
	rs := []route{
		{method: "GET", path: "/healthz", public: true, handler: s.healthz},
		{method: "GET", path: "/readyz", public: true, handler: s.readyz},
		{method: "GET", path: "/api/v1/openapi.json", public: true, handler: s.openapi},

		{method: "POST", path: "/api/v1/conversations", handler: s.createConversation},
		{method: "GET", path: "/api/v1/conversations", handler: s.listConversations},
		{method: "GET", path: "/api/v1/conversations/{id}", handler: s.getConversation},
		{method: "PUT", path: "/api/v1/conversations/{id}", handler: s.renameConversation},
		{method: "DELETE", path: "/api/v1/conversations/{id}", handler: s.deleteConversation},
		{method: "POST", path: "/api/v1/conversations/{id}/archive", handler: s.archiveConversation},
		{method: "POST", path: "/api/v1/conversations/{id}/unarchive", handler: s.unarchiveConversation},
		{method: "GET", path: "/api/v1/conversations/{id}/messages", handler: s.listMessages},
		{method: "POST", path: "/api/v1/conversations/{id}/messages", handler: s.sendMessage},

		{method: "GET", path: "/api/v1/tokens/usage", handler: s.tokenUsage},
		{method: "GET", path: "/api/v1/admin/usage", handler: s.requireAdmin(s.adminUsage)},
		{method: "GET", path: "/api/v1/admin/budgets", handler: s.requireAdmin(s.getBudgets)},
		{method: "PUT", path: "/api/v1/admin/budgets", handler: s.requireAdmin(s.putBudgets)},
		{method: "GET", path: "/admin", public: true, handler: s.dashboard},
	}
	if s.metrics != nil {
		rs = append(rs, route{method: "GET", path: "/metrics", public: true, handler: func(w http.ResponseWriter, r *http.Request) error {
			s.metrics.ServeHTTP(w, r)
			return nil
		}})
	}
	return rs
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the database answers and every migration is
// applied, so a load balancer never sends work to a replica that cannot do it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
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
