package httpapi

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the OpenAPI 3.1 description of /api/v1. A test checks that it
// and the routing table name the same operations.
//
//go:embed openapi.json
var openapiDoc []byte

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiDoc)
	return err
}
