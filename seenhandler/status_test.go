package seenhandler_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func TestStatus(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("demo", "other", "pairing", "down")
	reg.Set("plain", session.SessionFunc(fake.Session("plain").SendReceipt))
	fake.SetStatus("pairing", session.Status{Connected: true})
	fake.SetStatus("down", session.Status{Paired: true, JID: "15550000001@s.whatsapp.net"})
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
		code                 string
	}{
		{name: "wawp query", target: "/v2/session/status?session=demo", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "demo", Status: "WORKING", Connected: true, LoggedIn: true}},
		{name: "wawp instance_id and access_token", target: "/v2/session/status?instance_id=demo&access_token=" + demoToken,
			header: map[string]string{"Authorization": ""}, status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "demo", Status: "WORKING", Connected: true, LoggedIn: true}},
		{name: "waha path with X-Api-Key", target: "/api/sessions/down", header: map[string]string{"Authorization": "", "X-Api-Key": token}, status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "down", Status: "STARTING", JID: "15550000001@s.whatsapp.net"}},
		{name: "waiting for pairing", target: "/api/sessions/pairing", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "pairing", Status: "SCAN_QR_CODE", Connected: true}},
		{name: "session that cannot tell", target: "/api/sessions/plain", status: 200,
			want: seenhandler.StatusResponse{Success: true, Session: "plain", Status: "UNKNOWN"}},
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
