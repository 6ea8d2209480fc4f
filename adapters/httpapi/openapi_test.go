package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI document and the routing table must describe the same /api/v1
// operations: a route nobody documented, or a documented one that is gone,
// fails here.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi version: got %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			documented[strings.ToUpper(method)+" /api/v1"+path] = true
		}
	}
	routed := map[string]bool{}
	a := newTestAPI(t, func(d *Deps) { d.Metrics = http.NotFoundHandler() })
	for _, rt := range a.s.routes() {
		if !strings.HasPrefix(rt.path, "/api/v1/") || rt.path == "/api/v1/openapi.json" {
			continue
		}
		routed[rt.method+" "+rt.path] = true
	}
	for _, op := range sortedKeys(routed) {
		if !documented[op] {
			t.Errorf("route %s is not in openapi.json", op)
		}
	}
	for _, op := range sortedKeys(documented) {
		if !routed[op] {
			t.Errorf("openapi.json documents %s, which is not routed", op)
		}
	}

	_, tok := mustToken(t, "openapi-user", false)
	var served map[string]any
	a.mustDo("GET", "/api/v1/openapi.json", tok, nil, http.StatusOK, &served)
	if served["openapi"] != doc.OpenAPI {
		t.Errorf("served document differs from the embedded one")
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
