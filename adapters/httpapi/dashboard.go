package httpapi

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
)

// dashboardHTML is the admin usage page. It is a static shell: the figures
// come from the admin API, called by the page's script with the admin token
// the reader pastes (kept in sessionStorage, never in a URL).
//
//go:embed dashboard.html
var dashboardHTML string

var dashboardTmpl = template.Must(template.New("dashboard").Parse(dashboardHTML))

// dashboardData fills the template.
type dashboardData struct {
	Nonce    string // CSP nonce for the inline script and style
	TimeZone string // the default zone of the range pickers
}

// dashboard is GET /admin. The page itself holds no data, so it needs no
// token; a strict Content Security Policy lets only its own inline script
// (by nonce) run and only this origin be called.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) error {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("dashboard nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	var buf bytes.Buffer
	if err := dashboardTmpl.Execute(&buf, dashboardData{Nonce: nonce, TimeZone: s.budgets.Location().String()}); err != nil {
		return fmt.Errorf("render dashboard: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
		"'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}
