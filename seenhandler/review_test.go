package seenhandler_test

// Regression tests for the bugs of the 2026-11 design review.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/ratelimit"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Bug 2: a panic after the answer was written does not add a second body,
// and the request is observed once.
func TestReviewPanicAfterAnswer(t *testing.T) {
	var calls int
	obs := seenhandler.Observer{RequestDone: func(context.Context, seenhandler.RequestInfo) {
		calls++
		panic("observer bug")
	}}
	h, _ := newHandler(t, seenhandler.WithObserver(obs))
	r := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}
	w := r.do(t, h)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d", w.Code)
	}
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	var first, second json.RawMessage
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err == nil {
		t.Errorf("a second JSON document after the answer: %s", second)
	}
	if calls != 1 {
		t.Errorf("RequestDone called %d times, want 1", calls)
	}
}

// Bug 3: clients that are not authenticated, or name no session that
// exists, do not choose the session label.
func TestReviewSessionLabelAfterAuthAndLookup(t *testing.T) {
	var got []seenhandler.RequestInfo
	obs := seenhandler.Observer{RequestDone: func(_ context.Context, r seenhandler.RequestInfo) { got = append(got, r) }}
	h, _ := newHandler(t, seenhandler.WithObserver(obs))
	body := `{"session":"minted-label-1","chatId":"15551234567","messageIds":["A1"]}`
	request{body: body, header: map[string]string{"Authorization": "Bearer nope"}}.do(t, h)
	request{body: body}.do(t, h) // authenticated, but no such session
	request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}.do(t, h)
	if len(got) != 3 {
		t.Fatalf("%d requests observed", len(got))
	}
	for i, want := range []struct {
		status  int
		session string
	}{{401, ""}, {404, ""}, {201, "demo"}} {
		if got[i].Status != want.status || got[i].Session != want.session {
			t.Errorf("request %d: status %d session %q, want %d %q", i, got[i].Status, got[i].Session, want.status, want.session)
		}
	}
}

// Bug 5: "async": true is refused unless the operator enabled WithLater.
func TestReviewAsyncNeedsConsent(t *testing.T) {
	h, fake := newHandler(t)
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"],"async":true}`}.do(t, h)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d %s, want 400", w.Code, w.Body)
	}
	got := decode[seenhandler.ErrorResponse](t, w)
	if len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != "async" {
		t.Errorf("fields %+v, want one about async", got.Error.Fields)
	}
	if n := len(fake.Receipts()); n != 0 {
		t.Errorf("%d receipts sent", n)
	}
}

// Bug 6: requests naming sessions that do not exist do not evict the real
// session's bucket, and a request refused by the session limit does not
// spend the token's budget.
func TestReviewLimiterKeysAfterLookup(t *testing.T) {
	sessions, err := ratelimit.NewMemory(0.001, 1)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := ratelimit.NewMemory(0.001, 2)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHandler(t, seenhandler.WithRateLimit(sessions, nil))
	body := func(s string) string { return `{"session":"` + s + `","chatId":"15551234567","messageIds":["A1"]}` }
	if w := (request{body: body("demo")}).do(t, h); w.Code != http.StatusCreated {
		t.Fatalf("first: %d", w.Code)
	}
	for i := range ratelimit.DefaultKeys + 1 {
		r := httptestRequest(body("ghost-" + strconv.Itoa(i)))
		h.ServeHTTP(discard{}, r)
	}
	if w := (request{body: body("demo")}).do(t, h); w.Code != http.StatusTooManyRequests {
		t.Errorf("after 10,001 unknown sessions: %d, want 429 (the bucket was reset)", w.Code)
	}

	h, _ = newHandler(t, seenhandler.WithRateLimit(mustLimiter(t, 0.001, 1), tokens))
	for i, c := range []struct {
		session string
		want    int
	}{{"demo", 201}, {"demo", 429}, {"other", 201}} {
		if w := (request{body: body(c.session)}).do(t, h); w.Code != c.want {
			t.Errorf("request %d (%s): %d, want %d", i, c.session, w.Code, c.want)
		}
	}
}

func mustLimiter(t *testing.T, rate float64, burst int) *ratelimit.Memory {
	t.Helper()
	l, err := ratelimit.NewMemory(rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// httptestRequest is a POST of body to PathWAHA with the all-sessions token,
// for loops too long for the contract check of request.do.
func httptestRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// discard is a ResponseWriter that forgets what it is told.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

type principalKey struct{}

// The principal an Authenticator establishes reaches the registry,
// the session and the Observer; the Authenticator runs under the request's
// timeout.
func TestReviewPrincipal(t *testing.T) {
	var seen []string
	note := func(where string, ctx context.Context) {
		p, _ := ctx.Value(principalKey{}).(string)
		seen = append(seen, where+"="+p)
	}
	auth := seenhandler.AuthenticatorFunc(func(ctx context.Context, c seenhandler.Credentials) (context.Context, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the Authenticator runs without the request's deadline")
		}
		if c.Token != token {
			return nil, seenhandler.ErrUnauthorized
		}
		return context.WithValue(ctx, principalKey{}, "alice"), nil
	})
	reg := session.RegistryFunc(func(ctx context.Context, name string) (session.Session, error) {
		note("lookup", ctx)
		return session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			note("send", ctx)
			return session.Result{Type: r.Type}, nil
		}), nil
	})
	obs := seenhandler.Observer{RequestDone: func(ctx context.Context, _ seenhandler.RequestInfo) { note("observer", ctx) }}
	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth), seenhandler.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	if w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}).do(t, h); w.Code != http.StatusCreated {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	if got := strings.Join(seen, " "); got != "lookup=alice send=alice observer=alice" {
		t.Errorf("principal seen as %q", got)
	}
}

// A middleware in front of the handler answers in its JSON format.
func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	seenhandler.WriteError(w, fmt.Errorf("%w: expired session cookie", seenhandler.ErrUnauthorized))
	got := decode[seenhandler.ErrorResponse](t, w)
	if w.Code != http.StatusUnauthorized || got.Error.Code != seenhandler.CodeUnauthorized || strings.Contains(got.Error.Message, "cookie") {
		t.Errorf("status %d, %+v", w.Code, got)
	}
	w = httptest.NewRecorder()
	seenhandler.WriteError(w, session.ErrNotConnected)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" {
		t.Errorf("not connected: status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// A header token is checked before the body is read; when that check
// already named the request's session (from the URL), the Authenticator is
// not asked again after decoding.
func TestAuthenticatorAskedOncePerCredentials(t *testing.T) {
	var asked []seenhandler.Credentials
	auth := seenhandler.AuthenticatorFunc(func(ctx context.Context, c seenhandler.Credentials) (context.Context, error) {
		asked = append(asked, c)
		return ctx, nil
	})
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sessions/{session}/seen", h)
	body := `{"chatId":"15551234567","messageIds":["A1"]}`
	if w := (request{path: "/sessions/demo/seen", body: body}).do(t, mux); w.Code != 200 {
		t.Fatalf("URL session: %d %s", w.Code, w.Body)
	}
	if want := []seenhandler.Credentials{{Token: token, Session: "demo"}}; !reflect.DeepEqual(asked, want) {
		t.Errorf("URL session: asked %+v, want %+v", asked, want)
	}
	asked = nil
	if w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}).do(t, h); w.Code != http.StatusCreated {
		t.Fatalf("body session: %d %s", w.Code, w.Body)
	}
	if want := []seenhandler.Credentials{{Token: token}, {Token: token, Session: "demo"}}; !reflect.DeepEqual(asked, want) {
		t.Errorf("body session: asked %+v, want %+v (the token alone, then with the session)", asked, want)
	}
}
