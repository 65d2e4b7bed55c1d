// Package routertest holds the tests the router examples share: each
// mounts bluetick over the app's own whatsmeow client ([OverClient]), and
// each router must serve a session taken from the URL, at POST
// /sessions/{session}/seen, the same way ([PathSession]).
package routertest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// NewRouter builds an example's router over fake's "demo" session, for
// clients presenting token.
type NewRouter func(fake *sessiontest.Fake, token string) (http.Handler, error)

// PathSession checks that the router built by newRouter marks a message of
// the session named in the URL as seen, and answers 404 for a session that
// does not exist.
func PathSession(t *testing.T, newRouter NewRouter) {
	tests := []struct {
		name   string
		path   string
		status int
		sent   bool
	}{
		{"Known", "/sessions/demo/seen", http.StatusOK, true},
		{"Unknown", "/sessions/other/seen", http.StatusNotFound, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := sessiontest.New()
			router, err := newRouter(fake, "t0ken")
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, tc.path,
				strings.NewReader(`{"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer t0ken")
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body: %s", rec.Code, tc.status, rec.Body)
			}
			calls, receipts := fake.Calls(), fake.Receipts()
			if !tc.sent {
				if len(calls) != 0 {
					t.Errorf("calls %+v, want none", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0].Session != "demo" {
				t.Errorf("calls %+v, want one to session demo", calls)
			}
			if len(receipts) != 1 || receipts[0].Chat != "15551234567@s.whatsapp.net" ||
				!slices.Equal(receipts[0].MessageIDs, []string{"3EB0C767D26A1D98A4"}) {
				t.Errorf("receipts %+v, want one for 3EB0C767D26A1D98A4", receipts)
			}
		})
	}
	t.Run("Status", func(t *testing.T) {
		router, err := newRouter(sessiontest.New(), "t0ken")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/sessions/demo", nil)
		req.Header.Set("Authorization", "Bearer t0ken")
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"WORKING"`) {
			t.Errorf("status %d, body %s", rec.Code, rec.Body)
		}
	})
}

// Handler returns the handler a router of [PathSession] mounts: over
// fake's sessions, for clients presenting token, with the session read
// from the request's path by pathSession, as the router names it.
func Handler(fake *sessiontest.Fake, token string, pathSession func(*http.Request) string) (*seenhandler.Handler, error) {
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}})
	if err != nil {
		return nil, err
	}
	return seenhandler.New(fake.Registry("demo"), seenhandler.WithAuth(auth), seenhandler.WithPathSession(pathSession))
}

// StatusHandler returns h's status endpoint, to register at a path of the
// app's own: the Handler of the route [seenhandler.Routes] lists at
// seenhandler.PathWawpStatus (nil if none, which fails the test's requests).
func StatusHandler(h *seenhandler.Handler) http.Handler {
	for _, rt := range seenhandler.Routes(h) {
		if rt.Pattern == seenhandler.PathWawpStatus {
			return rt.Handler
		}
	}
	return nil
}
