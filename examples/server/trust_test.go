package main

// Trust in a cluster: what a node lets through to the others, and what it
// believes of them — strangers, a hung owner, a node without the secret,
// recorded requests played again.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
			var e seenhandler.ErrorResponse
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
