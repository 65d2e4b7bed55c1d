package seenhandler_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

type recorder struct {
	mu       sync.Mutex
	requests []seenhandler.RequestInfo
	errors   []seenhandler.BackendErrorInfo
}

func (rec *recorder) observer() seenhandler.Observer {
	return seenhandler.Observer{
		RequestDone: func(_ context.Context, r seenhandler.RequestInfo) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.requests = append(rec.requests, r)
		},
		BackendError: func(_ context.Context, e seenhandler.BackendErrorInfo) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.errors = append(rec.errors, e)
		},
	}
}

func (rec *recorder) take() ([]seenhandler.RequestInfo, []seenhandler.BackendErrorInfo) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r, e := rec.requests, rec.errors
	rec.requests, rec.errors = nil, nil
	return r, e
}

func TestObserver(t *testing.T) {
	rec := &recorder{}
	h, fake := newHandler(t, seenhandler.WithObserver(rec.observer()))
	errDown := errors.New("socket closed")

	tests := []struct {
		name  string
		setup func()
		req   request
		want  seenhandler.RequestInfo // Latency is checked apart
		errs  []seenhandler.BackendErrorInfo
	}{
		{"sent and skipped", nil,
			request{path: seenhandler.PathWAHA, body: `{"session":"demo","chatId":"15551234567","messageIds":["false_15551234567@c.us_A1","A2","true_15551234567@c.us_A3"]}`},
			seenhandler.RequestInfo{Endpoint: "seen", Session: "demo", Dialect: "waha", Status: 201, Receipts: 1, Messages: 2, Skipped: 1}, nil},
		{"refused before the backend", nil,
			request{path: seenhandler.PathWasend, body: `{"session":"demo","to":"15551234567","messageId":"A"}`, header: map[string]string{"Authorization": "Bearer nope"}},
			seenhandler.RequestInfo{Endpoint: "seen", Dialect: "wasend", Status: 401, Code: "unauthorized"}, nil},
		{"unknown session is no backend error", nil,
			request{path: seenhandler.PathWawp, body: `{"instance_id":"nobody","chatId":"15551234567","messageIds":["A"]}`},
			seenhandler.RequestInfo{Endpoint: "seen", Dialect: "wawp", Status: 404, Code: "session_not_found"}, nil},
		{"backend down", func() { fake.Inject(sessiontest.Fault{Call: 1, Err: errors.Join(session.ErrNotConnected, errDown)}) },
			request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A"]}`},
			seenhandler.RequestInfo{Endpoint: "seen", Session: "demo", Dialect: "waha", Status: 503, Code: "session_not_connected"},
			[]seenhandler.BackendErrorInfo{{Session: "demo", Op: "send", Code: "session_not_connected"}}},
		{"marking the chat read fails: the request does not", func() { fake.SetMarkChatReadError(errDown); fake.MarkUnread("demo", "15551234567@s.whatsapp.net") },
			request{body: `{"session":"demo","chatId":"15551234567","messageIds":["B"]}`},
			seenhandler.RequestInfo{Endpoint: "seen", Session: "demo", Dialect: "waha", Status: 201, Receipts: 1, Messages: 1},
			[]seenhandler.BackendErrorInfo{{Session: "demo", Op: "mark_chat_read", Code: "internal"}}},
		{"method", nil, request{method: http.MethodGet},
			seenhandler.RequestInfo{Endpoint: "seen", Status: 405, Code: "method_not_allowed"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			tc.req.do(t, h)
			reqs, errs := rec.take()
			if len(reqs) != 1 {
				t.Fatalf("RequestDone called %d times", len(reqs))
			}
			got := reqs[0]
			if got.Latency <= 0 {
				t.Errorf("latency %v", got.Latency)
			}
			got.Latency = 0
			if got != tc.want {
				t.Errorf("RequestDone(%+v)\nwant        %+v", got, tc.want)
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("BackendError calls %+v, want %+v", errs, tc.errs)
			}
			for i := range errs {
				if errs[i].Err == nil || !errors.Is(errs[i].Err, errDown) {
					t.Errorf("BackendError %d has error %v", i, errs[i].Err)
				}
				errs[i].Err = nil
				if errs[i] != tc.errs[i] {
					t.Errorf("BackendError(%+v), want %+v", errs[i], tc.errs[i])
				}
			}
		})
	}
}

func TestStatusObserver(t *testing.T) {
	rec := &recorder{}
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithObserver(rec.observer()))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	for _, target := range []string{"/v2/session/status?session=demo", "/api/sessions/nobody"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, target, nil))
	}
	reqs, errs := rec.take()
	if len(reqs) != 2 || len(errs) != 0 {
		t.Fatalf("requests %+v, errors %+v", reqs, errs)
	}
	if r := reqs[0]; r.Endpoint != "status" || r.Dialect != "wawp" || r.Session != "demo" || r.Status != 200 {
		t.Errorf("first: %+v", r)
	}
	if r := reqs[1]; r.Dialect != "waha" || r.Session != "" || r.Status != 404 || r.Code != "session_not_found" {
		t.Errorf("second: %+v", r)
	}
}

// An Observer's functions are each optional: one that only wants
// RequestDone gets it through a backend failure, which it did not ask to
// hear of, and the answer is the same as without an Observer.
func TestObserverPartial(t *testing.T) {
	var done []seenhandler.RequestInfo
	h, fake := newHandler(t, seenhandler.WithObserver(seenhandler.Observer{
		RequestDone: func(_ context.Context, r seenhandler.RequestInfo) { done = append(done, r) },
	}))
	fake.Inject(sessiontest.Fault{Call: 1, Err: session.ErrNotConnected})
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A"]}`}.do(t, h)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503", w.Code, w.Body)
	}
	if len(done) != 1 || done[0].Code != seenhandler.CodeSessionNotConnected {
		t.Errorf("RequestDone got %+v, want the one 503", done)
	}
}
