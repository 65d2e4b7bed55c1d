package seenhandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// wahaContract loads WAHA's own OpenAPI document (the operations bluetick
// serves on WAHA's paths, testdata/README.md) and makes a router over it:
// the document WAHA's generated clients (ogen, oapi-codegen) are built
// from, and hold answers to.
var wahaContract = sync.OnceValues(func() (routers.Router, error) {
	raw, err := os.ReadFile("testdata/waha-openapi-2026.7.2.json")
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	as30(doc)
	if raw, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	loaded, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	// Not loaded.Validate: WAHA's document is not valid OpenAPI as a whole
	// (examples that do not fit its schemas, an undefined oauth2 security
	// scheme); its schemas are what its clients hold answers to.
	return gorillamux.NewRouter(loaded)
})

// as30 reads WAHA's document the way its schemas mean it, where the 3.1
// document is written as OpenAPI 3.0 (see testdata/README.md): a
// `"required": true` inside a property's schema becomes the property's name
// in its parent's required list, and `"nullable": true` beside a single
// type becomes that type or null (kin-openapi reads a 3.1 document by 3.1's
// rules, which have no nullable).
func as30(v any) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			as30(e)
		}
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			for name, p := range props {
				p, ok := p.(map[string]any)
				if !ok {
					continue
				}
				if flag, ok := p["required"].(bool); ok {
					delete(p, "required")
					if flag {
						req, _ := v["required"].([]any)
						v["required"] = append(req, name)
					}
				}
			}
		}
		if nullable, _ := v["nullable"].(bool); nullable {
			if typ, ok := v["type"].(string); ok {
				delete(v, "nullable")
				v["type"] = []any{typ, "null"}
			}
		}
		for _, e := range v {
			as30(e)
		}
	}
}

// checkWAHA checks a successful answer w to r against WAHA's document: its
// status is one the operation declares, its body fits the schema. The
// request (whose body was body) is checked too when checkRequest. Error
// answers are not checked: WAHA's document declares none (a generated
// client reports any other status as an error, as it should), and ours are
// in our own document.
func checkWAHA(t *testing.T, r *http.Request, body string, w *httptest.ResponseRecorder, checkRequest bool) {
	t.Helper()
	if w.Code >= 300 {
		return
	}
	router, err := wahaContract()
	if err != nil {
		t.Fatalf("WAHA's OpenAPI document: %v", err)
	}
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(strings.NewReader(body))
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is no operation of WAHA's document: %v", r.Method, r.URL, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if checkRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("request %s %s %s does not fit WAHA's document: %v", r.Method, r.URL, body, err)
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
		t.Errorf("answer %d %s to %s %s does not fit WAHA's document: %v", w.Code, w.Body, r.Method, r.URL, err)
	}
}

// A client generated from WAHA's own OpenAPI document calls sendSeen,
// sessions.get and sessions.list: every answer has a status WAHA's
// document declares for the operation (201 for sendSeen, queued or not)
// and a body that fits its schemas (SessionInfo with presence and
// timestamps, me absent or an object, never a null where it says object).
// Wasend's and Wawp's paths keep their 200 and 202.
func TestWAHAAnswersFitWAHAsDocument(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("default", "demo", "pairing", "down", "replaced")
	reg.Set("plain", session.SessionFunc(fake.Session("plain").SendReceipt))
	fake.SetStatus("demo", session.Status{Connected: true, LoggedIn: true, Paired: true, JID: "15550000001@s.whatsapp.net"})
	fake.SetStatus("pairing", session.Status{Connected: true})
	fake.SetStatus("down", session.Status{Paired: true, JID: "15550000001@s.whatsapp.net"})
	fake.SetStatus("replaced", session.Status{Paired: true, Replaced: true, JID: "15550000001@s.whatsapp.net"})
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}})
	if err != nil {
		t.Fatal(err)
	}
	later, err := queue.New(queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth), seenhandler.WithLater(later))
	if err != nil {
		t.Fatal(err)
	}
	later.Start(h)
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = later.Shutdown(context.Background())
	})
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)

	do := func(t *testing.T, method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Api-Key", token)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		checkContract(t, r, body, w)
		if strings.HasPrefix(path, "/api/") {
			checkWAHA(t, r, body, w, true)
		}
		return w
	}
	seen := `{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0AA"]}`
	queued := `{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0BB"],"async":true}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"sessions.get before any receipt: activity null", http.MethodGet, "/api/sessions/demo", "", 200},
		{"sendSeen", http.MethodPost, seenhandler.PathWAHA, seen, 201},
		{"sendSeen queued", http.MethodPost, seenhandler.PathWAHA, queued, 201},
		{"sendSeen, all skipped", http.MethodPost, seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567@c.us","messageIds":["true_15551234567@c.us_3EB0CC"]}`, 201},
		{"sessions.get: working, activity known", http.MethodGet, "/api/sessions/demo", "", 200},
		{"sessions.get: waiting for pairing, no me", http.MethodGet, "/api/sessions/pairing", "", 200},
		{"sessions.get: paired, down", http.MethodGet, "/api/sessions/down", "", 200},
		{"sessions.get: replaced is FAILED", http.MethodGet, "/api/sessions/replaced", "", 200},
		{"sessions.get: a session that cannot tell", http.MethodGet, "/api/sessions/plain", "", 200},
		{"sessions.list", http.MethodGet, "/api/sessions", "", 200},
		{"Wasend keeps 200", http.MethodPost, seenhandler.PathWasend, `{"session":"demo","to":"15551234567","messageId":"3EB0DD"}`, 200},
		{"Wawp keeps 200", http.MethodPost, seenhandler.PathWawp, `{"instance_id":"demo","chatId":"15551234567@c.us","messageIds":["3EB0EE"]}`, 200},
		{"Wawp keeps 202 when queued", http.MethodPost, seenhandler.PathWawp, `{"instance_id":"demo","chatId":"15551234567@c.us","messageIds":["3EB0FF"],"async":true}`, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, tc.method, tc.path, tc.body)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			t.Logf("%d %s", w.Code, strings.TrimSpace(w.Body.String()))
		})
	}

	// The fields WAHA's clients read, as they read them.
	w := do(t, http.MethodGet, "/api/sessions/demo", "")
	var info map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"name": `"demo"`, "status": `"WORKING"`, "presence": `{}`,
		"me": `{"id":"15550000001@c.us","pushName":""}`} {
		if got := string(info[key]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	var ts struct{ Activity *int64 }
	if err := json.Unmarshal(info["timestamps"], &ts); err != nil || ts.Activity == nil || *ts.Activity <= 0 {
		t.Errorf("timestamps = %s (%v), want the time of the receipt sent", info["timestamps"], err)
	}
	w = do(t, http.MethodGet, "/api/sessions/pairing", "")
	if body := w.Body.String(); strings.Contains(body, `"me"`) || strings.Contains(body, `"config"`) ||
		!strings.Contains(body, `"timestamps":{"activity":null}`) {
		t.Errorf("a session waiting for pairing: %s, want no me, no config, activity null", body)
	}
}

// WAHA's SendSeenRequest defaults session to "default", and some WAHA
// clients (myusp/waha-api-client-ts) send none: on WAHA's path a request
// without one goes to the session "default". Wasend's and Wawp's documents
// require it, and so do their paths.
func TestWAHASessionDefaultsToDefault(t *testing.T) {
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("default", "demo"), seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	noDefault, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		h       http.Handler
		path    string
		body    string
		status  int
		session string // where the receipt went, or the field at fault
	}{
		{"waha, no session", h, seenhandler.PathWAHA, `{"chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0A1"]}`, 201, "default"},
		{"waha, null session", h, seenhandler.PathWAHA, `{"session":null,"chatId":"15551234567@c.us","messageIds":["3EB0A2"]}`, 201, "default"},
		{"waha, empty session", h, seenhandler.PathWAHA, `{"session":"","chatId":"15551234567@c.us","messageIds":["3EB0A3"]}`, 201, "default"},
		{"waha, a session", h, seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567@c.us","messageIds":["3EB0A4"]}`, 201, "demo"},
		{"waha, no session and no default session", noDefault, seenhandler.PathWAHA, `{"chatId":"15551234567@c.us","messageIds":["3EB0A5"]}`, 404, ""},
		{"wasend, no session", h, seenhandler.PathWasend, `{"to":"15551234567","messageId":"3EB0A6"}`, 400, "session"},
		{"wawp, no instance", h, seenhandler.PathWawp, `{"chatId":"15551234567@c.us","messageIds":["3EB0A7"]}`, 400, "instance_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.Reset()
			r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			checkContract(t, r, tc.body, w)
			if tc.path == seenhandler.PathWAHA {
				checkWAHA(t, r, tc.body, w, false) // WAHA's schema says session is required, with a default
			}
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			switch tc.status {
			case 201:
				if n, m := len(fake.Session(tc.session).Receipts()), len(fake.Receipts()); n != 1 || m != 1 {
					t.Errorf("session %s sent %d of %d receipts, want the one", tc.session, n, m)
				}
			case 400:
				got := decode[seenhandler.ErrorResponse](t, w)
				if len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != tc.session || got.Error.Fields[0].Rule != "required" {
					t.Errorf("fields %+v, want %s required", got.Error.Fields, tc.session)
				}
			case 404:
				if got := decode[seenhandler.ErrorResponse](t, w); got.Error.Code != seenhandler.CodeSessionNotFound {
					t.Errorf("code %q, want session_not_found", got.Error.Code)
				}
			}
		})
	}
}
