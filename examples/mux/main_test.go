package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/examples/internal/crmapp"
	"github.com/bluetick/bluetick/examples/internal/routertest"
	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session/sessiontest"
	"github.com/gorilla/mux"
)

// The example's mount over a real whatsmeow client and SQLite store.
func TestOverTheAppsClient(t *testing.T) {
	routertest.OverClient(t, crmapp.OpenClient, newApp)
}

// pathSessionRouter serves POST /sessions/{session}/seen and GET
// /sessions/{session} (the status) from fake's "demo" session, for clients
// presenting token, with the session read by gorilla/mux (mux.Vars).
func pathSessionRouter(fake *sessiontest.Fake, token string) (http.Handler, error) {
	h, err := routertest.Handler(fake, token, func(r *http.Request) string { return mux.Vars(r)["session"] })
	if err != nil {
		return nil, err
	}
	r := mux.NewRouter()
	r.Handle("/sessions/{session}/seen", h).Methods(http.MethodPost)
	r.Handle("/sessions/{session}", routertest.StatusHandler(h)).Methods(http.MethodGet, http.MethodHead)
	return r, nil
}

// Several sessions, one per URL: gorilla/mux's path variable names it.
func TestPathSession(t *testing.T) {
	routertest.PathSession(t, pathSessionRouter)
}

// The standard endpoints (Routes) on gorilla/mux, whose Handle returns a
// *Route and so is no seenhandler.Router: each dialect's path answers.
func TestRoutesOnGorillaMux(t *testing.T) {
	// PathWAHAStatus's {session} is gorilla's to read: WithPathSession.
	h, err := seenhandler.New(sessiontest.New().Registry("demo"), seenhandler.WithNoAuth(),
		seenhandler.WithPathSession(func(r *http.Request) string { return mux.Vars(r)["session"] }))
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	for _, rt := range seenhandler.Routes(h) {
		r.Handle(rt.Pattern, rt.Handler)
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, seenhandler.PathWasend, `{"session":"demo","to":"15551234567","messageId":"A1"}`, http.StatusOK},
		{http.MethodPost, seenhandler.PathWawp, `{"instance_id":"demo","chatId":"15551234567","messageIds":["A2"]}`, http.StatusOK},
		{http.MethodPost, seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567","messageIds":["A3"]}`, http.StatusCreated},
		{http.MethodGet, "/api/sessions/demo", "", http.StatusOK},
		{http.MethodGet, "/api/sessions", "", http.StatusOK},
		{http.MethodGet, seenhandler.PathWAHA, "", http.StatusMethodNotAllowed},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, w.Code, w.Body, tc.want)
		}
	}
}
