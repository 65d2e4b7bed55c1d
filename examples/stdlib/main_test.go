package main

import (
	"net/http"
	"testing"

	"github.com/bluetick/bluetick/examples/internal/crmapp"
	"github.com/bluetick/bluetick/examples/internal/routertest"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// The example's mount over a real whatsmeow client and SQLite store.
func TestOverTheAppsClient(t *testing.T) {
	routertest.OverClient(t, crmapp.OpenClient, newApp)
}

// pathSessionRouter serves POST /sessions/{session}/seen and GET
// /sessions/{session} (the status) from fake's "demo" session, for clients
// presenting token, with the session read by a method-and-wildcard
// ServeMux pattern (r.PathValue).
func pathSessionRouter(fake *sessiontest.Fake, token string) (http.Handler, error) {
	h, err := routertest.Handler(fake, token, func(r *http.Request) string { return r.PathValue("session") })
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sessions/{session}/seen", h)
	mux.Handle("GET /sessions/{session}", routertest.StatusHandler(h))
	return mux, nil
}

// Several sessions, one per URL: the ServeMux wildcard names it.
func TestPathSession(t *testing.T) {
	routertest.PathSession(t, pathSessionRouter)
}
