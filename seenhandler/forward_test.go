package seenhandler_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// forwarder is a Forwarder that serves the sessions in owners elsewhere (by
// answering 299 with the body it was given) and records what it was asked.
type forwarder struct {
	mu     sync.Mutex
	asked  []string
	bodies []string
	owners map[string]bool
	err    error
}

func (f *forwarder) Forward(w http.ResponseWriter, r *http.Request, name string, body []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	f.bodies = append(f.bodies, string(body))
	if f.err != nil {
		return false, f.err
	}
	if !f.owners[name] {
		return false, nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(299)
	fmt.Fprintf(w, `{"forwarded":%q}`, name)
	return true, nil
}

func TestForwarder(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("here", "there")
	fwd := &forwarder{owners: map[string]bool{"there": true}}
	var rec recorder
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth(), seenhandler.WithForwarder(fwd), seenhandler.WithObserver(rec.observer()))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	do := func(method, target, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	body := `{"session":"there","to":"15551234567","messageId":"3EB0AA"}`
	if w := do("POST", "/sendSeen", body); w.Code != 299 || w.Body.String() != `{"forwarded":"there"}` {
		t.Fatalf("forwarded POST: %d %s, want the owner's answer alone", w.Code, w.Body)
	}
	if got := fake.Calls(); len(got) != 0 {
		t.Fatalf("a forwarded request was sent here too: %v", got)
	}
	if fwd.bodies[0] != body {
		t.Fatalf("Forward got body %q, want the request's %q", fwd.bodies[0], body)
	}
	if w := do("GET", "/api/sessions/there", ""); w.Code != 299 {
		t.Fatalf("forwarded status: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/sendSeen", `{"session":"here","to":"15551234567","messageId":"3EB0AB"}`); w.Code != 200 {
		t.Fatalf("local POST: %d %s", w.Code, w.Body)
	}
	if got := fake.Calls(); len(got) != 1 {
		t.Fatalf("local request: %d calls, want 1", len(got))
	}
	// A bad session name is answered here, never forwarded.
	if w := do("POST", "/sendSeen", `{"session":"caf\u00e9","to":"15551234567","messageId":"3EB0AC"}`); w.Code != 400 {
		t.Fatalf("bad name: %d %s", w.Code, w.Body)
	}
	if want := []string{"there", "there", "here"}; fmt.Sprint(fwd.asked) != fmt.Sprint(want) {
		t.Fatalf("Forward asked about %v, want %v", fwd.asked, want)
	}
	done, _ := rec.take()
	var st []int
	for _, d := range done {
		st = append(st, d.Status)
	}
	if fmt.Sprint(st) != "[299 299 200 400]" {
		t.Fatalf("Observer saw statuses %v", st)
	}

	// An error of the Forwarder is the handler's answer.
	fwd.err = session.RetryLater(fmt.Errorf("%w: the owner is unreachable", session.ErrNotConnected), 7*time.Second)
	w := do("POST", "/sendSeen", body)
	var e struct{ Error struct{ Code string } }
	_ = json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&e)
	if w.Code != 503 || e.Error.Code != "session_not_connected" || w.Header().Get("Retry-After") != "7" {
		t.Fatalf("forwarder error: %d %s Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if strings.Contains(w.Body.String(), "unreachable") {
		t.Fatalf("the forwarder's error text reached the client: %s", w.Body)
	}
}

func TestStatusNode(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("demo")
	fake.SetStatus("demo", session.Status{Connected: true, LoggedIn: true, Paired: true, Node: "node-b"})
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	for _, target := range []string{"/api/sessions/demo", "/v2/session/status?session=demo", "/api/sessions"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"node":"node-b"`) {
			t.Errorf("%s: %d %s, want node-b", target, w.Code, w.Body)
		}
	}
}

// urlForwarder forwards every request to base as the cluster's Forwarder
// does: base + r.RequestURI, the body, the answer copied back.
type urlForwarder struct{ base string }

func (f urlForwarder) Forward(w http.ResponseWriter, r *http.Request, _ string, body []byte) (bool, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, f.base+r.RequestURI, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true, nil
}

// A request whose request line has the absolute form, as proxies send
// ("POST http://host/sendSeen HTTP/1.1"), is forwarded to the owner's
// path, not to the owner's URL with another URL after it.
func TestForwardAbsoluteFormRequestLine(t *testing.T) {
	var mu sync.Mutex
	var got []string
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"owner":true}`)
	}))
	defer owner.Close()
	h, err := seenhandler.New(sessiontest.New().Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithForwarder(urlForwarder{owner.URL}))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	front := httptest.NewServer(mux)
	defer front.Close()

	body := `{"session":"demo","to":"15551234567","messageId":"A1"}`
	for _, line := range []string{
		"POST http://bluetick.example/sendSeen HTTP/1.1",
		"GET http://bluetick.example/v2/session/status?session=demo HTTP/1.1",
	} {
		conn, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		req := line + "\r\nHost: bluetick.example\r\nConnection: close\r\n"
		if strings.HasPrefix(line, "POST") {
			req += "Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		} else {
			req += "\r\n"
		}
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != http.StatusOK || string(answer) != `{"owner":true}` {
			t.Errorf("%s: %d %s, want the owner's answer", line, resp.StatusCode, answer)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"POST /sendSeen", "GET /v2/session/status?session=demo"}; !slices.Equal(got, want) {
		t.Errorf("the owner got %q, want %q", got, want)
	}
}

// panickyForwarder writes the owner's answer, then panics.
type panickyForwarder struct{}

func (panickyForwarder) Forward(w http.ResponseWriter, _ *http.Request, _ string, _ []byte) (bool, error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(299)
	fmt.Fprint(w, `{"owner":true}`)
	panic("after the answer")
}

// A Forwarder that panics after writing the owner's answer leaves that
// answer alone: no 500 body after it.
func TestForwarderPanicAfterWriting(t *testing.T) {
	h, err := seenhandler.New(sessiontest.New().Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithForwarder(panickyForwarder{}))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWasend, strings.NewReader(`{"session":"demo","to":"15551234567","messageId":"A1"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 299 || w.Body.String() != `{"owner":true}` {
		t.Errorf("%d %q, want the owner's answer alone", w.Code, w.Body)
	}
}

// deadlineForwarder records whether each request it is asked about
// carries a deadline, and serves none.
type deadlineForwarder struct {
	mu        sync.Mutex
	asked     []string
	deadlines []time.Duration
}

func (f *deadlineForwarder) Forward(_ http.ResponseWriter, r *http.Request, name string, _ []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	if d, ok := r.Context().Deadline(); ok {
		f.deadlines = append(f.deadlines, time.Until(d))
	}
	return false, nil
}

// A request reaches the Forwarder only once its token is accepted for its
// session, wherever the token is (header, body, query): a stranger is
// answered here, never sent on. And the Forwarder gets the handler's
// deadline, to answer in time when the owner hangs.
func TestForwarderAfterAuthentication(t *testing.T) {
	auth, err := seenhandler.NewStaticAuth(map[string][]string{"good": {"there"}, "other": {"elsewhere"}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := &deadlineForwarder{}
	h, err := seenhandler.New(sessiontest.New().Registry("there", "elsewhere"), seenhandler.WithAuth(auth),
		seenhandler.WithForwarder(fwd), seenhandler.WithTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	for _, tc := range []struct {
		name, method, target, header, body string
		want                               int
	}{
		{"seen, no token", "POST", "/api/sendSeen", "", `{"session":"there","chatId":"15551234567","messageIds":["A1"]}`, 401},
		{"seen, wrong body token", "POST", "/api/sendSeen", "", `{"session":"there","chatId":"15551234567","messageIds":["A1"],"access_token":"bad"}`, 401},
		{"seen, another session's token", "POST", "/api/sendSeen", "other", `{"session":"there","chatId":"15551234567","messageIds":["A1"]}`, 403},
		{"status, wrong query token", "GET", "/api/sessions/there?access_token=bad", "", "", 401},
		{"status, wrong header token", "GET", "/v2/session/status?session=there", "bad", "", 401},
		{"seen, body token", "POST", "/api/sendSeen", "", `{"session":"there","chatId":"15551234567","messageIds":["A1"],"access_token":"good"}`, 201}, // WAHA's path
		{"status, header token", "GET", "/api/sessions/there", "good", "", 200},
	} {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if tc.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if tc.header != "" {
			r.Header.Set("Authorization", "Bearer "+tc.header)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.want)
		}
	}
	if want := []string{"there", "there"}; !slices.Equal(fwd.asked, want) {
		t.Errorf("Forward asked about %q, want %q: the two authenticated requests alone", fwd.asked, want)
	}
	if len(fwd.deadlines) != len(fwd.asked) {
		t.Fatalf("%d of %d requests reached Forward with a deadline", len(fwd.deadlines), len(fwd.asked))
	}
	for _, d := range fwd.deadlines {
		if d <= 0 || d > 3*time.Second {
			t.Errorf("Forward's deadline is %v away, want the handler's timeout (3 s)", d)
		}
	}
}
