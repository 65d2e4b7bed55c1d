package seenhandler

import (
	"bytes"
	_ "embed"
	"net/http"
)

//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPI returns the [OpenAPI] 3.1 document (YAML) of the endpoints: the
// three dialects of the seen endpoint, the status endpoint, and every
// answer's body. The package's tests check every response they provoke
// against it, so it does not drift from the code.
func OpenAPI() []byte {
	return bytes.Clone(openAPIDoc)
}

// openAPIHandler serves the [OpenAPI] document ([WithOpenAPI]) as application/yaml to GET
// and HEAD requests; other methods get the handler's JSON 405.
func openAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, &methodError{allow: "GET, HEAD"}, nil, DefaultRetryAfter)
			return
		}
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(openAPIDoc)
	})
}
