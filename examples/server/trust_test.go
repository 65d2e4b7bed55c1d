package main

// Trust in a cluster: what a node lets through to the others, and what it
// believes of them — strangers, a hung owner, a node without the secret,
// recorded requests played again.

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
)

// The token and the cluster secret of the trust tests' nodes.
const (
	trustToken  = "s3cret"
	trustSecret = "cluster-s3cret"
)

// staller is a listener that accepts connections and never answers: an
// owner that hangs (SIGSTOPped, say) as its callers see it.
type staller struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newStaller(t *testing.T) *staller {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &staller{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *staller) url() string { return "http://" + s.ln.Addr().String() }

// listedOwners reads p's session list (served from its own view of the
// cluster, never forwarded): each session's owner.
func listedOwners(t *testing.T, p *proc) map[string]string {
	t.Helper()
	status, body := p.get(t, "/api/sessions")
	var list []struct{ Name, Node string }
	if status != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("session list: %d %s", status, body)
	}
	owners := map[string]string{}
	for _, s := range list {
		owners[s.Name] = s.Node
	}
	return owners
}

// ownedBy waits until p's view has a session owned by node, and returns
// its name.
func ownedBy(t *testing.T, p *proc, node string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for name, owner := range listedOwners(t, p) {
			if owner == node {
				return name
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session owned by %s after 30 s: %v", node, listedOwners(t, p))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// timedDo sends req with a client that gives up after limit, and returns
// the status, the Retry-After, the body and how long the answer took.
func timedDo(req *http.Request, limit time.Duration) (int, string, []byte, time.Duration, error) {
	client := &http.Client{Timeout: limit}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b, time.Since(start), err
}

// A hung owner: node-b advertises a URL that accepts connections and never
// answers. At node-a, a stranger naming one of node-b's sessions gets 401
// at once, whatever the place of its (wrong) token, and is never sent to
// node-b (so the latency of a 401 says nothing of where a session is
// served); a client with the token gets 503 with a Retry-After within the
// handler's timeout, before the server's WriteTimeout, never an EOF.
func TestClusterHungOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server twice")
	}
	dsn := postgresDB(t)
	for i := 1; i <= 4; i++ {
		storeDeviceIn(t, "postgres", dsn, fmt.Sprintf("1555000000%d", i))
	}
	hung := newStaller(t)
	env := []string{tokenEnv + "=" + trustToken, clusterSecretEnv + "=" + trustSecret}
	a := startProcEnv(t, env, "-db", dsn, "-node-id", "node-a", "-session-rate", "0")
	startProcEnv(t, env, "-db", dsn, "-node-id", "node-b", "-session-rate", "0", "-advertise", hung.url())
	name := ownedBy(t, a, "node-b")

	t.Run("strangers", func(t *testing.T) {
		seen := func(header, token string) *http.Request {
			body := `{"session":"` + name + `","chatId":"15551234567","messageIds":["3EB0A"]` + token + `}`
			req, _ := http.NewRequest(http.MethodPost, a.url+"/api/sendSeen", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if header != "" {
				req.Header.Set("Authorization", "Bearer "+header)
			}
			return req
		}
		status := func(header, query string) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, a.url+"/api/sessions/"+name+query, nil)
			if header != "" {
				req.Header.Set("Authorization", "Bearer "+header)
			}
			return req
		}
		for _, tc := range []struct {
			name string
			req  *http.Request
		}{
			{"seen, no token", seen("", "")},
			{"seen, wrong header token", seen("wrong", "")},
			{"seen, wrong body token", seen("", `,"access_token":"wrong"`)},
			{"status, no token", status("", "")},
			{"status, wrong header token", status("wrong", "")},
			{"status, wrong query token", status("", "?access_token=wrong")},
		} {
			before := hung.accepted.Load()
			code, _, body, took, err := timedDo(tc.req, 3*time.Second)
			if err != nil || code != http.StatusUnauthorized {
				t.Errorf("%s: %d %s after %v (%v), want 401 at once", tc.name, code, body, took.Round(time.Millisecond), err)
			}
			if n := hung.accepted.Load() - before; n != 0 {
				t.Errorf("%s: %d connections to the owner, want none: a stranger's request is not forwarded", tc.name, n)
			}
		}
	})

	t.Run("clients", func(t *testing.T) {
		const clients = 3
		type answer struct {
			status int
			after  string
			body   []byte
			took   time.Duration
			err    error
		}
		answers := make(chan answer, clients)
		for i := range clients {
			go func() {
				body := fmt.Sprintf(`{"session":%q,"chatId":"15551234567","messageIds":["3EB0H%d"]}`, name, i)
				req, _ := http.NewRequest(http.MethodPost, a.url+"/api/sendSeen", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+trustToken)
				var an answer
				an.status, an.after, an.body, an.took, an.err = timedDo(req, writeTimeout+5*time.Second)
				answers <- an
			}()
		}
		for range clients {
			an := <-answers
			var e struct {
				Error struct {
					Code    seenhandler.Code
					Message string
				}
			}
			_ = json.Unmarshal(an.body, &e)
			if an.err != nil || an.status != http.StatusServiceUnavailable || an.after == "" || e.Error.Code != seenhandler.CodeSessionNotConnected {
				t.Errorf("at a hung owner: %d Retry-After %q %s after %v (%v), want 503 session_not_connected with a Retry-After",
					an.status, an.after, an.body, an.took.Round(time.Millisecond), an.err)
				continue
			}
			if an.took > seenhandler.DefaultTimeout+time.Second {
				t.Errorf("answered after %v, beyond the handler's timeout %v", an.took.Round(time.Millisecond), seenhandler.DefaultTimeout)
			}
			t.Logf("503 after %v, Retry-After %s", an.took.Round(time.Millisecond), an.after)
		}
	})
}

// tableScans stops p (SIGTERM), waits until the database at dsn has no
// other client left (a backend writes its statistics as it exits), and
// returns how many scans the cluster's tables have had.
func tableScans(t *testing.T, p *proc, dsn string) int64 {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var others int
		if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients still on the database 30 s after the server stopped", others)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var scans int64
	if err := db.QueryRow(`SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables
WHERE relname IN ('bluetick_lease', 'bluetick_node')`).Scan(&scans); err != nil {
		t.Fatal(err)
	}
	return scans
}

// Requests naming sessions the store does not have cost the coordinator
// nothing: neither a stranger's (refused before any lookup) nor a
// client's (the node's own list of the store's sessions answers 404). The
// coordinator's tables see the node's own renewals and placements alone.
func TestClusterUnknownSessionsCostNoQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	dsn := postgresDB(t)
	storeDeviceIn(t, "postgres", dsn, "15550000001")
	env := []string{tokenEnv + "=" + trustToken, clusterSecretEnv + "=" + trustSecret}
	a := startProcEnv(t, env, "-db", dsn, "-node-id", "node-a", "-session-rate", "0")
	ownedBy(t, a, "node-a")
	const each = 200
	started := time.Now()
	for i := range each {
		for _, tc := range []struct {
			method, path, body, token string
			want                      int
		}{
			{"POST", "/api/sendSeen", `{"session":"nosuch-%d","chatId":"15551234567","messageIds":["3EB0A"],"access_token":"wrong"}`, "", 401},
			{"GET", "/api/sessions/nosuch-%d?access_token=wrong", "", "", 401},
			{"POST", "/api/sendSeen", `{"session":"nosuch-%d","chatId":"15551234567","messageIds":["3EB0A"]}`, trustToken, 404},
			{"GET", "/api/sessions/nosuch-%d", "", trustToken, 404},
		} {
			path, body := tc.path, tc.body
			if strings.Contains(path, "%d") {
				path = fmt.Sprintf(path, i)
			} else {
				body = fmt.Sprintf(body, i)
			}
			req, _ := http.NewRequest(tc.method, a.url+path, strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if status, b := do(t, req); status != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, path, status, b, tc.want)
			}
		}
	}
	took := time.Since(started)
	scans := tableScans(t, a, dsn)
	t.Logf("%d requests naming unknown sessions in %v; the cluster's tables were scanned %d times in all", 4*each, took.Round(time.Millisecond), scans)
	// The node's own rounds scan them a few times a second; a query per
	// request would add 800.
	if scans >= 2*each {
		t.Errorf("%d scans of the cluster's tables for %d requests naming unknown sessions: a query per request", scans, 4*each)
	}
}

// recorder is a listener that records each request it gets and answers
// with answer (a client would take it for the owner's).
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []*http.Request
	answer string
}

func newRecorder(t *testing.T, answer string) *recorder {
	t.Helper()
	rec := &recorder{answer: answer}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.got = append(rec.got, r)
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, rec.answer)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) requests() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.got)
}

// runToEnd runs the server with env and args and returns its exit status
// and stderr; it fails the test if the server starts listening (it was
// expected to refuse) or runs for more than a minute.
func runToEnd(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(buildServer(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	p.cmd.Env = append(os.Environ(), tokenEnv+"=", dbEnv+"=", "HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=", "no_proxy=")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	defer func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}()
	deadline := time.After(time.Minute)
	for {
		select {
		case <-p.exited:
			return p.cmd.ProcessState.ExitCode(), p.stderr.String()
		case <-deadline:
			t.Fatalf("the server still runs after a minute; stderr:\n%s", p.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if listeningRE.MatchString(p.stderr.String()) {
			t.Fatalf("the server started serving; stderr:\n%s", p.stderr)
		}
	}
}

// Membership takes the secret, not the database alone. A node started
// with another secret refuses to start, saying so at Error; a node row
// written into the database without the secret (with a lease for one of
// the sessions) is no member: nothing is placed on it, no request and no
// client's token is ever sent to it, and its "answers" reach nobody.
func TestClusterSecretProvesMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	dsn := postgresDB(t)
	for i := 1; i <= 4; i++ {
		storeDeviceIn(t, "postgres", dsn, fmt.Sprintf("1555000000%d", i))
	}
	env := []string{tokenEnv + "=" + trustToken, clusterSecretEnv + "=" + trustSecret}
	a := startProcEnv(t, env, "-db", dsn, "-node-id", "node-a", "-session-rate", "0")
	name := ownedBy(t, a, "node-a")

	t.Run("another secret", func(t *testing.T) {
		code, stderr := runToEnd(t, []string{tokenEnv + "=" + trustToken, clusterSecretEnv + "=not-the-secret"},
			"-db", dsn, "-node-id", "node-w", "-session-rate", "0")
		if code == 0 || !strings.Contains(stderr, "level=ERROR") || !strings.Contains(stderr, "secret") {
			t.Errorf("exit status %d, want non-zero with an Error naming the secret; stderr:\n%s", code, stderr)
		}
	})

	t.Run("a row without the secret", func(t *testing.T) {
		intruder := newRecorder(t, `{"success":true,"acknowledged":true}`)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`INSERT INTO bluetick_node (id, incarnation, url, capacity, expires_at)
VALUES ('intruder', 'x', $1, 1000, now() + interval '1 hour')`, intruder.srv.URL); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE bluetick_lease SET node = 'intruder', epoch = epoch + 1, expires_at = now() + interval '1 hour'
WHERE name = $1`, name); err != nil {
			t.Fatal(err)
		}
		// node-a loses the lease at its next renewal, and then no longer
		// lists itself as the owner.
		deadline := time.Now().Add(30 * time.Second)
		for listedOwners(t, a)[name] == "node-a" {
			if time.Now().After(deadline) {
				t.Fatalf("node-a still owns %s 30 s after its lease was taken", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i := range 5 {
			body := fmt.Sprintf(`{"session":%q,"chatId":"15551234567","messageIds":["3EB0I%d"]}`, name, i)
			req, _ := http.NewRequest(http.MethodPost, a.url+"/api/sendSeen", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+trustToken)
			status, b := do(t, req)
			if status != http.StatusServiceUnavailable {
				t.Errorf("a session whose lease a stranger holds: %d %s, want 503", status, b)
			}
		}
		if got := intruder.requests(); len(got) > 0 {
			t.Errorf("%d requests sent to the intruder's URL (the first with Authorization %q)", len(got), got[0].Header.Get("Authorization"))
		}
		for session, owner := range listedOwners(t, a) {
			if owner == "intruder" {
				t.Errorf("session %s listed on the intruder", session)
			}
		}
	})
}

// tap is a reverse proxy in front of a node that records the requests
// the node gets through it: what an eavesdropper on the nodes' network
// would see (the README asks for TLS there).
type tap struct {
	srv      *httptest.Server
	upstream atomic.Pointer[url.URL]
	mu       sync.Mutex
	got      []recorded
}

// recorded is a request as it went by.
type recorded struct {
	method, uri string
	header      http.Header
	body        []byte
}

func newTap(t *testing.T) *tap {
	t.Helper()
	tp := &tap{}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(tp.upstream.Load())
		pr.Out.Host = pr.In.Host
	}}
	tp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tp.mu.Lock()
		tp.got = append(tp.got, recorded{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: body})
		tp.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *tap) to(t *testing.T, p *proc) {
	t.Helper()
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	tp.upstream.Store(u)
}

func (tp *tap) requests() []recorded {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.got)
}

// replay sends rec again to base, its headers changed by edit.
func replay(t *testing.T, base string, rec recorded, edit func(http.Header)) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(rec.method, base+rec.uri, bytes.NewReader(rec.body))
	req.Header = rec.header.Clone()
	if edit != nil {
		edit(req.Header)
	}
	code, after, body, _, err := timedDo(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return code, after, body
}

// A forwarded request, recorded on the nodes' network, is good for its
// first delivery alone: played again to its node, to another node, or
// without its Authorization, it is refused with 503 and a Retry-After
// (never the permanent 403 a client would give up on), and the refusal is
// logged at Error by the node that refuses it; so is a forged one.
func TestClusterForwardedRequestsCannotBeReplayed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server twice")
	}
	dsn := postgresDB(t)
	for i := 1; i <= 4; i++ {
		storeDeviceIn(t, "postgres", dsn, fmt.Sprintf("1555000000%d", i))
	}
	env := []string{tokenEnv + "=" + trustToken, clusterSecretEnv + "=" + trustSecret}
	tapA, tapB := newTap(t), newTap(t)
	a := startProcEnv(t, env, "-db", dsn, "-node-id", "node-a", "-session-rate", "0", "-advertise", tapA.srv.URL)
	tapA.to(t, a)
	b := startProcEnv(t, env, "-db", dsn, "-node-id", "node-b", "-session-rate", "0", "-advertise", tapB.srv.URL)
	tapB.to(t, b)
	name := ownedBy(t, a, "node-b")

	// Through node-a, forwarded to node-b: the owner's answer.
	if got := a.node(t, name); got != "node-b" {
		t.Fatalf("status of %s through node-a names %q, want node-b", name, got)
	}
	recs := tapB.requests()
	if len(recs) != 1 || recs[0].header.Get("X-Bluetick-Signature") == "" {
		t.Fatalf("node-b got %d requests through its tap, want 1 forwarded: %+v", len(recs), recs)
	}
	rec := recs[0]
	for _, tc := range []struct {
		name string
		to   *proc
		edit func(http.Header)
	}{
		{"again to its node", b, nil},
		{"to another node", a, nil},
		{"without its Authorization", b, func(h http.Header) { h.Del("Authorization") }},
		{"with another token", b, func(h http.Header) { h.Set("Authorization", "Bearer another") }},
		{"forged", b, func(h http.Header) { h.Set("X-Bluetick-Signature", "AAAA") }},
	} {
		code, after, body := replay(t, tc.to.url, rec, tc.edit)
		if code != http.StatusServiceUnavailable || after == "" {
			t.Errorf("%s: %d Retry-After %q %s, want 503 with a Retry-After", tc.name, code, after, body)
		}
	}
	for _, p := range []*proc{a, b} {
		if !slices.ContainsFunc(strings.Split(p.stderr.String(), "\n"), func(line string) bool {
			return strings.Contains(line, "level=ERROR") && strings.Contains(line, "forwarded request")
		}) {
			t.Errorf("no Error about a refused forwarded request at %s:\n%s", p.url, p.stderr)
		}
	}
}
