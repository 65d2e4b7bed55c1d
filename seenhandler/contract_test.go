package seenhandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
)

// contract loads the embedded OpenAPI document once, validates it, and
// makes a router over it that matches any host.
var contract = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(seenhandler.OpenAPI())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil // the tests' requests go to example.com
	return gorillamux.NewRouter(doc)
})

func TestOpenAPIDocumentIsValid(t *testing.T) {
	if _, err := contract(); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(seenhandler.OpenAPI(), []byte("openapi: 3.1.0")) {
		t.Error("not an OpenAPI 3.1 document")
	}
}

// checkContract checks the exchange of r (whose body was body) and w
// against the OpenAPI document: the response always, the request when the
// handler accepted it. Requests on routes the document does not describe
// (a test's own mount) are not checked.
func checkContract(t *testing.T, r *http.Request, body string, w *httptest.ResponseRecorder) {
	t.Helper()
	router, err := contract()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(strings.NewReader(body))
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if w.Code < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("request %s %s %s does not fit the OpenAPI document: %v", r.Method, r.URL, body, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 w.Code,
		Header:                 w.Header(),
		Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("response %d %s to %s %s does not fit the OpenAPI document: %v", w.Code, w.Body, r.Method, r.URL, err)
	}
}

func TestOpenAPIServed(t *testing.T) {
	h, _ := newHandler(t, seenhandler.WithOpenAPI("/openapi.yaml"))
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), seenhandler.OpenAPI()) ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /openapi.yaml: %d %s", w.Code, w.Header())
	}
	h2, _ := newHandler(t)
	mux2 := http.NewServeMux()
	seenhandler.Mount(mux2, h2)
	w = httptest.NewRecorder()
	mux2.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("without WithOpenAPI: %d", w.Code)
	}
	for _, bad := range []string{"", "openapi.yaml", "/a b", "/{x}"} {
		if _, err := seenhandler.New(session.NewMemoryRegistry(), seenhandler.WithNoAuth(), seenhandler.WithOpenAPI(bad)); err == nil {
			t.Errorf("WithOpenAPI(%q) accepted", bad)
		}
	}
}

// patternRouter records the patterns Mount registers.
type patternRouter struct{ patterns []string }

func (p *patternRouter) Handle(pattern string, _ http.Handler) {
	p.patterns = append(p.patterns, pattern)
}

// Mount's patterns carry no method, the OpenAPI document's included, so
// that other methods get the handler's JSON 405 (not a router's text one).
func TestMountPatternsCarryNoMethod(t *testing.T) {
	h, _ := newHandler(t, seenhandler.WithOpenAPI("/openapi.yaml"))
	var rec patternRouter
	seenhandler.Mount(&rec, h)
	for _, p := range rec.patterns {
		if strings.Contains(p, " ") {
			t.Errorf("pattern %q carries a method", p)
		}
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/openapi.yaml", nil))
	var got seenhandler.ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusMethodNotAllowed ||
		got.Error.Code != seenhandler.CodeMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /openapi.yaml: %d %s %q (%v)", w.Code, w.Body, w.Header().Get("Allow"), err)
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/openapi.yaml", nil))
	if w.Code != http.StatusOK {
		t.Errorf("HEAD /openapi.yaml: %d", w.Code)
	}
}
