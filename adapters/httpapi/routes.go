package httpapi

import (
	"net/http"
)

// Every route opsbot serves is listed here: the REST API, health, metrics
// and the dashboard from this package, and the routes the chat surfaces
// mount (Slack's /slack/events, /slack/commands, /slack/interactivity,
// Teams' /api/messages). All of them go through wrap, so each gets the same
// body limit, panic recovery and request metrics; the whole mux is behind
// the request id and the access log (see New), so a request that panicked is
// logged and counted with the 500 it got.

// Mount is a route another adapter serves beside /api/v1: a chat surface's
// webhook. Bearer-token auth does not apply (the surface checks its own
// signatures or tokens); everything else does.
type Mount struct {
	Method  string
	Path    string
	Handler http.Handler
	// MaxBodyBytes bounds the request body; 0 means MaxBodyBytes.
	MaxBodyBytes int64
}

// route is one entry of the routing table; the OpenAPI test walks it.
type route struct {
	method  string
	path    string
	public  bool  // no bearer token needed
	maxBody int64 // 0 means MaxBodyBytes
	handler http.Handler
}

// api makes a route of a handler that returns its error.
func (s *Server) api(method, path string, h handlerFunc) route {
	return route{method: method, path: path, handler: s.adapt(h)}
}

// public is api without the bearer token.
func (s *Server) public(method, path string, h handlerFunc) route {
	r := s.api(method, path, h)
	r.public = true
	return r
}

// routes is the whole routing table.
func (s *Server) routes() []route {
	rs := []route{
		s.public("GET", "/healthz", s.healthz),
		s.public("GET", "/readyz", s.readyz),
		s.public("GET", "/api/v1/openapi.json", s.openapi),

		s.api("POST", "/api/v1/conversations", s.createConversation),
		s.api("GET", "/api/v1/conversations", s.listConversations),
		s.api("GET", "/api/v1/conversations/{id}", s.getConversation),
		s.api("PUT", "/api/v1/conversations/{id}", s.renameConversation),
		s.api("DELETE", "/api/v1/conversations/{id}", s.deleteConversation),
		s.api("POST", "/api/v1/conversations/{id}/archive", s.archiveConversation),
		s.api("POST", "/api/v1/conversations/{id}/unarchive", s.unarchiveConversation),
		s.api("GET", "/api/v1/conversations/{id}/messages", s.listMessages),
		s.api("POST", "/api/v1/conversations/{id}/messages", s.sendMessage),

		s.api("GET", "/api/v1/tokens/usage", s.tokenUsage),
		s.api("GET", "/api/v1/admin/usage", s.requireAdmin(s.adminUsage)),
		s.api("GET", "/api/v1/admin/budgets", s.requireAdmin(s.getBudgets)),
		s.api("PUT", "/api/v1/admin/budgets", s.requireAdmin(s.putBudgets)),
		s.public("GET", "/admin", s.dashboard),
	}
	if s.metrics != nil {
		rs = append(rs, route{method: "GET", path: "/metrics", public: true, handler: s.metrics})
	}
	for _, m := range s.mounts {
		rs = append(rs, route{method: m.Method, path: m.Path, public: true, maxBody: m.MaxBodyBytes, handler: m.Handler})
	}
	return rs
}

// handlerFunc is an HTTP handler that returns its error instead of writing it.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// adapt writes a handlerFunc's error as a problem document.
func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// wrap gives a route its body limit, its bearer-token check unless it is
// public, panic recovery and its request metrics.
func (s *Server) wrap(rt route) http.Handler {
	h := rt.handler
	if !rt.public {
		h = s.authenticate(h)
	}
	limit := rt.maxBody
	if limit <= 0 {
		limit = MaxBodyBytes
	}
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		inner.ServeHTTP(w, r)
	})
	return s.httpMetrics.instrument(rt.method+" "+rt.path, s.recoverPanics(h))
}
