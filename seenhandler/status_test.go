package seenhandler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func TestStatus(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("demo", "other", "pairing", "down", "replaced")
	reg.Set("plain", session.SessionFunc(fake.Session("plain").SendReceipt))
	fake.SetStatus("pairing", session.Status{Connected: true})
	fake.SetStatus("down", session.Status{Paired: true, JID: "15550000001@s.whatsapp.net"})
	fake.SetStatus("replaced", session.Status{Paired: true, Replaced: true, JID: "15550000001@s.whatsapp.net"})
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}, demoToken: {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)

	tests := []struct {
		name, method, target string
		header               map[string]string
		status               int
		want                 seenhandler.StatusResponse
		info                 *seenhandler.SessionInfo // on WAHA's path
		code                 seenhandler.Code
	}{
		{name: "wawp query", target: "/v2/session/status?session=demo", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "demo", Status: "WORKING", Connected: true, LoggedIn: true}},
		{name: "wawp instance_id and access_token", target: "/v2/session/status?instance_id=demo&access_token=" + demoToken,
			header: map[string]string{"Authorization": ""}, status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "demo", Status: "WORKING", Connected: true, LoggedIn: true}},
		{name: "wawp: paired, down", target: "/v2/session/status?session=down", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "down", Status: "STARTING", JID: "15550000001@s.whatsapp.net"}},
		{name: "wawp: waiting for pairing", target: "/v2/session/status?session=pairing", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "pairing", Status: "SCAN_QR_CODE", Connected: true}},
		{name: "wawp: replaced by another connection of the device", target: "/v2/session/status?session=replaced", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "replaced", Status: "CONFLICT", JID: "15550000001@s.whatsapp.net"}},
		{name: "waha: replaced is FAILED, WAHA has no CONFLICT", target: "/api/sessions/replaced", status: 200,
			info: &seenhandler.SessionInfo{Name: "replaced", Status: "FAILED", Me: &seenhandler.Me{ID: "15550000001@c.us"}}},
		{name: "wawp: session that cannot tell", target: "/v2/session/status?session=plain", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "plain", Status: "UNKNOWN"}},
		{name: "waha path with X-Api-Key: SessionInfo", target: "/api/sessions/down", header: map[string]string{"Authorization": "", "X-Api-Key": token}, status: 200,
			info: &seenhandler.SessionInfo{Name: "down", Status: "STARTING", Me: &seenhandler.Me{ID: "15550000001@c.us"}}},
		{name: "waha: working", target: "/api/sessions/demo", status: 200,
			info: &seenhandler.SessionInfo{Name: "demo", Status: "WORKING"}},
		{name: "waha: waiting for pairing", target: "/api/sessions/pairing", status: 200,
			info: &seenhandler.SessionInfo{Name: "pairing", Status: "SCAN_QR_CODE"}},
		{name: "waha: session that cannot tell is WORKING, never UNKNOWN", target: "/api/sessions/plain", status: 200,
			info: &seenhandler.SessionInfo{Name: "plain", Status: "WORKING"}},
		{name: "no token", target: "/api/sessions/demo", header: map[string]string{"Authorization": ""}, status: 401, code: "unauthorized"},
		{name: "token not for the session", target: "/api/sessions/other", header: map[string]string{"Authorization": "Bearer " + demoToken}, status: 403, code: "forbidden"},
		{name: "unknown session", target: "/api/sessions/nobody", status: 404, code: "session_not_found"},
		{name: "no session", target: "/v2/session/status", status: 400, code: "validation_failed"},
		{name: "session and instance_id disagree", target: "/v2/session/status?session=demo&instance_id=other", status: 400, code: "validation_failed"},
		{name: "POST", method: http.MethodPost, target: "/v2/session/status?session=demo", status: 405, code: "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			w := request{method: method, path: tc.target, header: tc.header}.do(t, mux)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if tc.code != "" {
				got := decode[seenhandler.ErrorResponse](t, w)
				if got.Error.Code != tc.code {
					t.Errorf("code %q, want %q", got.Error.Code, tc.code)
				}
				if tc.status == 405 && w.Header().Get("Allow") != "GET, HEAD" {
					t.Errorf("Allow = %q", w.Header().Get("Allow"))
				}
				return
			}
			if tc.info != nil {
				var raw map[string]any
				err := json.Unmarshal(w.Body.Bytes(), &raw)
				me, hasMe := raw["me"]
				keys := 4 // name, status, presence, timestamps
				if tc.info.Me != nil {
					keys++
				}
				if err != nil || len(raw) != keys || hasMe && me == nil || raw["presence"] == nil || raw["timestamps"] == nil {
					t.Errorf("SessionInfo %s: want name, status, presence, timestamps, and me once paired (never null)", w.Body)
				}
				if got := decode[seenhandler.SessionInfo](t, w); !reflect.DeepEqual(&got, tc.info) {
					t.Errorf("got %+v (me %+v), want %+v", got, got.Me, tc.info)
				}
				return
			}
			if got := decode[seenhandler.StatusResponse](t, w); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStatusWithPathSession(t *testing.T) {
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithNoAuth(),
		seenhandler.WithPathSession(func(r *http.Request) string { return r.Header.Get("X-Session") }))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/anything", nil).WithContext(context.Background())
	r.Header.Set("X-Session", "demo")
	w := httptest.NewRecorder()
	h.ServeStatus(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("status %d, body %s", w.Code, w.Body)
	}
}

// GET /api/sessions lists, as WAHA's SessionInfo, the
// sessions the token may use; a registry that cannot list gets 501.
func TestSessionList(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("demo", "other", "pairing")
	fake.SetStatus("pairing", session.Status{Connected: true})
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}, demoToken: {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		reg    session.Registry
		header map[string]string
		status int
		want   []string
	}{
		{"all", session.Decorate(reg, session.DecorateOptions{}), nil, 200, []string{"demo:WORKING", "other:WORKING", "pairing:SCAN_QR_CODE"}},
		{"a token for one session", reg, map[string]string{"Authorization": "Bearer " + demoToken}, 200, []string{"demo:WORKING"}},
		{"unknown token", reg, map[string]string{"Authorization": "Bearer nope"}, 401, nil},
		{"registry that cannot list", session.RegistryFunc(reg.Lookup), nil, 501, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := seenhandler.New(tc.reg, seenhandler.WithAuth(auth))
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			seenhandler.Mount(mux, h)
			w := request{method: http.MethodGet, path: seenhandler.PathWAHASessions, header: tc.header}.do(t, mux)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				return
			}
			var got []string
			for _, info := range decode[[]seenhandler.SessionInfo](t, w) {
				got = append(got, info.Name+":"+string(info.Status))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Wawp's SDK names the instance in an X-Instance-ID header (its token in
// Authorization: Bearer): on Wawp's paths the header names the session, and
// must agree with the instance_id (or session) the request also gives: 400
// validation_failed, rule conflict, as session and instance_id that
// disagree. Other paths ignore it.
func TestWawpInstanceHeader(t *testing.T) {
	h, fake := newHandler(t)
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	header := func(instance string) map[string]string { return map[string]string{"X-Instance-ID": instance} }
	for _, tc := range []struct {
		name    string
		req     request
		status  int
		session string // where the receipt went, or the field at fault
	}{
		{"header alone", request{path: seenhandler.PathWawp, header: header("demo"),
			body: `{"chatId":"15551234567@c.us","messageIds":["3EB0H1"]}`}, 200, "demo"},
		{"header and instance_id agree", request{path: seenhandler.PathWawp, header: header("demo"),
			body: `{"instance_id":"demo","chatId":"15551234567@c.us","messageIds":["3EB0H2"]}`}, 200, "demo"},
		{"header and instance_id disagree", request{path: seenhandler.PathWawp, header: header("demo"),
			body: `{"instance_id":"other","chatId":"15551234567@c.us","messageIds":["3EB0H3"]}`}, 400, "instance_id"},
		{"header and session disagree", request{path: seenhandler.PathWawp, header: header("demo"),
			body: `{"session":"other","chatId":"15551234567@c.us","messageIds":["3EB0H4"]}`}, 400, "session"},
		{"header not a session name", request{path: seenhandler.PathWawp, header: header(strings.Repeat("x", 129)),
			body: `{"chatId":"15551234567@c.us","messageIds":["3EB0H5"]}`}, 400, "X-Instance-ID"},
		{"status: header alone", request{method: http.MethodGet, path: seenhandler.PathWawpStatus, header: header("demo")}, 200, "demo"},
		{"status: header and query disagree", request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?instance_id=other", header: header("demo")}, 400, "instance_id"},
		{"WAHA's path ignores it", request{path: seenhandler.PathWAHA, header: header("other"),
			body: `{"session":"demo","chatId":"15551234567@c.us","messageIds":["3EB0H6"]}`}, 201, "demo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.Reset()
			w := tc.req.do(t, mux)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			switch {
			case tc.status == 400:
				got := decode[seenhandler.ErrorResponse](t, w)
				rule := "conflict"
				if tc.session == "X-Instance-ID" {
					rule = "wa_session"
				}
				if got.Error.Code != seenhandler.CodeValidationFailed || len(got.Error.Fields) != 1 ||
					got.Error.Fields[0].Field != tc.session || got.Error.Fields[0].Rule != rule {
					t.Errorf("error %+v, want %s %s", got.Error, tc.session, rule)
				}
			case tc.req.method == http.MethodGet:
				if got := decode[seenhandler.StatusResponse](t, w); got.Session != tc.session {
					t.Errorf("status of %q, want %q", got.Session, tc.session)
				}
			default:
				if n, m := len(fake.Session(tc.session).Receipts()), len(fake.Receipts()); n != 1 || m != 1 {
					t.Errorf("session %s sent %d of %d receipts, want the one", tc.session, n, m)
				}
			}
		})
	}
}

// A status request asks the Later for its own session's queue counts,
// and answers them as "queue".
func TestStatusQueueOneSession(t *testing.T) {
	l := laterFunc{asked: make(chan string, 10)}
	h, _ := newHandler(t, seenhandler.WithLater(l))
	w := request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?session=demo"}.do(t, http.HandlerFunc(h.ServeStatus))
	if st := decode[seenhandler.StatusResponse](t, w).Queue; st == nil || *st != (seenhandler.QueueStatus{Pending: 1}) {
		t.Errorf("status queue %+v, want the Later's 1 pending", st)
	}
	close(l.asked)
	var asked []string
	for name := range l.asked {
		asked = append(asked, name)
	}
	if !reflect.DeepEqual(asked, []string{"demo"}) {
		t.Errorf("the Later was asked for %q, want demo's counts alone", asked)
	}
}
