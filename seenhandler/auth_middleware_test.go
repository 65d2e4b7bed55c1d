package seenhandler_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// userKey is the app's own context key for the user its middleware
// authenticated.
type userKey struct{}

// appUser is who the app's middleware says is asking, and which sessions
// they may use.
type appUser struct {
	name     string
	sessions []string
}

// cookieAuth is an app's own middleware: it knows its users by a cookie
// and puts the user in the request's context; requests it does not know
// go on without one.
func cookieAuth(users map[string]*appUser, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("crm_session"); err == nil && users[c.Value] != nil {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, users[c.Value]))
		}
		next.ServeHTTP(w, r)
	})
}

// fromMiddleware is the Authenticator over cookieAuth's user: no user is
// the 401 of a missing token, a session the user may not use a 403.
var fromMiddleware = seenhandler.AuthenticatorFunc(func(ctx context.Context, c seenhandler.Credentials) (context.Context, error) {
	u, ok := ctx.Value(userKey{}).(*appUser)
	if !ok {
		return nil, seenhandler.ErrUnauthorized
	}
	if c.Session != "" && !slices.Contains(u.sessions, c.Session) {
		return nil, fmt.Errorf("%w: %s may not use %s", seenhandler.ErrForbidden, u.name, c.Session)
	}
	return ctx, nil
})

// An app that authenticates in its own middleware: the handler sees the
// user the middleware put in the request's context, through the
// Authenticator; a request without one gets the 401 a request without a
// token gets today, one for a session the user may not use a 403, and the
// user reaches the Session.
func TestAuthFromAppMiddleware(t *testing.T) {
	fake := sessiontest.New()
	seenBy := make(chan string, 10) // the user each SendReceipt's ctx carries
	reg := session.NewMemoryRegistry()
	for _, name := range []string{"sales", "support"} {
		s := fake.Session(name)
		reg.Set(name, session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			if u, ok := ctx.Value(userKey{}).(*appUser); ok {
				seenBy <- u.name
			} else {
				seenBy <- ""
			}
			return s.SendReceipt(ctx, r)
		}))
	}
	h, err := seenhandler.New(reg, seenhandler.WithAuth(fromMiddleware))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	app := cookieAuth(map[string]*appUser{"c-ann": {name: "ann", sessions: []string{"sales"}}}, mux)

	// What a request with no token gets from a handler with tokens.
	static, err := seenhandler.NewStaticAuth(map[string][]string{"secret": {seenhandler.AllSessions}})
	if err != nil {
		t.Fatal(err)
	}
	tokenHandler, err := seenhandler.New(reg, seenhandler.WithAuth(static))
	if err != nil {
		t.Fatal(err)
	}
	noToken := request{body: `{"session":"sales","chatId":"15551234567","messageIds":["A0"]}`,
		header: map[string]string{"Authorization": ""}}.do(t, tokenHandler)

	body := func(sess string) string {
		return `{"session":"` + sess + `","chatId":"15551234567","messageIds":["A1"]}`
	}
	anon := map[string]string{"Authorization": ""}
	ann := map[string]string{"Authorization": "", "Cookie": "crm_session=c-ann"}
	stranger := map[string]string{"Authorization": "", "Cookie": "crm_session=c-eve"}

	for _, hd := range []map[string]string{anon, stranger} {
		w := request{body: body("sales"), header: hd}.do(t, app)
		if w.Code != http.StatusUnauthorized || w.Body.String() != noToken.Body.String() {
			t.Errorf("without the user (%v): %d %s, want %d %s", hd, w.Code, w.Body, noToken.Code, noToken.Body)
		}
	}
	if w := (request{body: body("support"), header: ann}).do(t, app); w.Code != http.StatusForbidden {
		t.Errorf("another's session: %d %s, want 403", w.Code, w.Body)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Fatalf("refused requests reached the session: %+v", fake.Calls())
	}

	if w := (request{body: body("sales"), header: ann}).do(t, app); w.Code != http.StatusCreated {
		t.Fatalf("with the user: %d %s, want 201", w.Code, w.Body)
	}
	if got := <-seenBy; got != "ann" {
		t.Errorf("the Session saw user %q, want ann", got)
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0].Session != "sales" {
		t.Errorf("calls %+v, want one on sales", calls)
	}

	// The status endpoint and the session list go through it too.
	if w := (request{method: http.MethodGet, path: "/api/sessions/sales", header: anon}).do(t, app); w.Code != http.StatusUnauthorized {
		t.Errorf("status without the user: %d %s", w.Code, w.Body)
	}
	if w := (request{method: http.MethodGet, path: "/api/sessions/sales", header: ann}).do(t, app); w.Code != http.StatusOK {
		t.Errorf("status with the user: %d %s", w.Code, w.Body)
	}
	w := request{method: http.MethodGet, path: seenhandler.PathWAHASessions, header: ann}.do(t, app)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"name":"sales"`) || strings.Contains(w.Body.String(), `"support"`) {
		t.Errorf("the user's session list: %d %s, want sales alone", w.Code, w.Body)
	}
}

// An app that authenticates its users in its own middleware hands the
// user to the handler in the request's context; the Authenticator reads
// it there.
func ExampleAuthenticatorFunc() {
	type userKey struct{}
	// The app's middleware: here, anyone with a "crm_session" cookie is
	// its user "ann".
	appAuth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, err := r.Cookie("crm_session"); err == nil && c.Value == "c-ann" {
				r = r.WithContext(context.WithValue(r.Context(), userKey{}, "ann"))
			}
			next.ServeHTTP(w, r)
		})
	}
	fake := sessiontest.New()
	h, err := seenhandler.New(session.Single(fake.Session("phone")),
		seenhandler.WithAuth(seenhandler.AuthenticatorFunc(func(ctx context.Context, _ seenhandler.Credentials) (context.Context, error) {
			if _, ok := ctx.Value(userKey{}).(string); !ok {
				return nil, seenhandler.ErrUnauthorized
			}
			return ctx, nil
		})))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	app := appAuth(mux)

	for _, cookie := range []string{"", "crm_session=c-ann"} {
		req := httptest.NewRequest("POST", "/api/sendSeen", strings.NewReader(`{"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]}`))
		req.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, req)
		fmt.Println(cookie != "", w.Code)
	}
	fmt.Println(len(fake.Receipts()), "receipt sent")
	// Output:
	// false 401
	// true 201
	// 1 receipt sent
}
