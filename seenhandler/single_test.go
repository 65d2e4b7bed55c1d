package seenhandler_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/ratelimit"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// field reads one top-level field of a JSON answer, whatever its Go type.
func field(t *testing.T, w *httptest.ResponseRecorder, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	return m[name]
}

// An app with one WhatsApp account mounts a session.Single: requests reach
// its one session in every dialect whether they name no session or any
// name, without conflicts between the names they carry, and are served,
// authenticated and answered as the session "default".
func TestSingleSession(t *testing.T) {
	decorated := func(s session.Session) session.Registry {
		return session.Decorate(session.Single(s), session.DecorateOptions{Dedup: &session.DedupOptions{}})
	}
	registries := []struct {
		name string
		reg  func(session.Session) session.Registry
	}{
		{"Single", func(s session.Session) session.Registry { return session.Single(s) }},
		{"Decorated", decorated},
	}
	tests := []struct {
		name, path string
		header     map[string]string
		body       string
	}{
		{"Wasend without session", seenhandler.PathWasend, nil, `{"to":"15551234567","messageId":"A1"}`},
		{"Wasend with any session", seenhandler.PathWasend, nil, `{"session":"sales","to":"15551234567","messageId":"A1"}`},
		{"Wawp without instance", seenhandler.PathWawp, nil, `{"chatId":"15551234567","messageIds":["A1"]}`},
		{"Wawp with instance_id", seenhandler.PathWawp, nil, `{"instance_id":"x1","chatId":"15551234567","messageIds":["A1"]}`},
		{"Wawp names disagree", seenhandler.PathWawp, map[string]string{"X-Instance-ID": "h1"},
			`{"instance_id":"x1","session":"s1","chatId":"15551234567","messageIds":["A1"]}`},
		{"WAHA without session", seenhandler.PathWAHA, nil, `{"chatId":"15551234567","messageIds":["A1"]}`},
		{"WAHA with any session", seenhandler.PathWAHA, nil, `{"session":"support","chatId":"15551234567","messageIds":["A1"]}`},
		{"name that is no valid session name", seenhandler.PathWAHA, nil, `{"session":"no such/name!","chatId":"15551234567","messageIds":["A1"]}`},
	}
	for _, rg := range registries {
		for _, tc := range tests {
			t.Run(rg.name+"/"+tc.name, func(t *testing.T) {
				fake := sessiontest.New()
				mux := http.NewServeMux()
				seenhandler.Mount(mux, defaultOnly(t, rg.reg(fake.Session("phone"))))
				w := request{path: tc.path, header: tc.header, body: tc.body}.do(t, mux)
				if w.Code != seenOK(tc.path) {
					t.Fatalf("status %d, body %s", w.Code, w.Body)
				}
				if got := field(t, w, "session"); got != "default" {
					t.Errorf("answer's session %v, want default", got)
				}
				if calls := fake.Calls(); len(calls) != 1 || calls[0].Session != "phone" ||
					calls[0].Receipt.Chat != user || calls[0].Receipt.MessageIDs[0] != "A1" {
					t.Errorf("calls %+v, want one receipt for A1 through the one session", calls)
				}
			})
		}
	}
}

// A route with the session in the URL: the URL's name is no more checked
// against the body's than any other, nor authenticated (the token that may
// use "default" is checked for "default" before the body is read, too).
func TestSingleSessionIgnoresTheURL(t *testing.T) {
	fake := sessiontest.New()
	mux := http.NewServeMux()
	mux.Handle("POST /sessions/{session}/seen", defaultOnly(t, session.Single(fake.Session("phone"))))
	w := request{path: "/sessions/a/seen", body: `{"session":"b","chatId":"15551234567","messageIds":["A1"]}`}.do(t, mux)
	if w.Code != http.StatusOK || field(t, w, "session") != "default" {
		t.Errorf("status %d, body %s", w.Code, w.Body)
	}
	if n := len(fake.Receipts()); n != 1 {
		t.Errorf("sent %d receipts, want 1", n)
	}
}

// The status endpoints and the session list speak of the one session as
// "default", whatever name the request asks for.
func TestSingleSessionStatus(t *testing.T) {
	fake := sessiontest.New()
	fake.SetStatus("phone", session.Status{Connected: true, LoggedIn: true, Paired: true, JID: "15550000001@s.whatsapp.net"})
	mux := http.NewServeMux()
	seenhandler.Mount(mux, defaultOnly(t, session.Single(fake.Session("phone"))))
	for _, tc := range []struct {
		path, field string
		header      map[string]string
	}{
		{"/v2/session/status", "session", nil},
		{"/v2/session/status?session=sales", "session", nil},
		{"/v2/session/status?instance_id=a&session=b", "session", map[string]string{"X-Instance-ID": "c"}},
		{"/api/sessions/sales", "name", nil},
		{"/api/sessions/default", "name", nil},
	} {
		w := request{method: http.MethodGet, path: tc.path, header: tc.header}.do(t, mux)
		if w.Code != http.StatusOK || field(t, w, tc.field) != "default" {
			t.Errorf("GET %s: status %d, body %s", tc.path, w.Code, w.Body)
		}
	}
	w := request{method: http.MethodGet, path: seenhandler.PathWAHASessions}.do(t, mux)
	var list []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != http.StatusOK ||
		len(list) != 1 || list[0]["name"] != "default" || list[0]["status"] != "WORKING" {
		t.Errorf("GET %s: status %d, body %s", seenhandler.PathWAHASessions, w.Code, w.Body)
	}
}

// Single(nil) has no session: 404 session_not_found and an empty list, no
// nil Session reaching the handler.
func TestSingleWithoutSession(t *testing.T) {
	h, err := seenhandler.New(session.Single(nil), seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	w := request{body: `{"chatId":"15551234567","messageIds":["A1"]}`}.do(t, mux)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"session_not_found"`) {
		t.Errorf("seen: status %d, body %s", w.Code, w.Body)
	}
	w = request{method: http.MethodGet, path: seenhandler.PathWAHASessions}.do(t, mux)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("list: status %d, body %s", w.Code, w.Body)
	}
}

// The one session's rate limit is one budget, however many names clients
// send: naming another session does not buy another.
func TestSingleSessionOneRateLimit(t *testing.T) {
	fake := sessiontest.New()
	lim, err := ratelimit.NewMemory(1.0/3600, 1) // one request, then one an hour
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(session.Single(fake.Session("phone")), seenhandler.WithNoAuth(),
		seenhandler.WithRateLimit(lim, nil))
	if err != nil {
		t.Fatal(err)
	}
	codes := []int{}
	for _, name := range []string{"a", "b"} {
		w := request{body: `{"session":"` + name + `","chatId":"15551234567","messageIds":["A1"]}`}.do(t, h)
		codes = append(codes, w.Code)
	}
	if codes[0] != http.StatusCreated || codes[1] != http.StatusTooManyRequests {
		t.Errorf("statuses %v, want [201 429]", codes)
	}
}

// defaultOnly is a handler over reg for a token that may use the session
// "default" only: a request to a single-session registry is authenticated
// as that one session, not as the name it sent.
func defaultOnly(t *testing.T, reg session.Registry) *seenhandler.Handler {
	t.Helper()
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {"default"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
