package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/seenhandler"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// syncBuffer is a bytes.Buffer the server goroutines may write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one run of the command under test.
type server struct {
	url            string
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc // stops run, as SIGTERM does
	hup            chan os.Signal     // SIGHUP, as the process would get it; unbuffered
	term           chan os.Signal     // further SIGTERMs; unbuffered
	done           chan error         // run's result
	stopped        bool
}

var listeningRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)\n`)

// start runs the server in -demo mode on a free loopback port with args and
// env; see launch.
func start(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	return launch(t, env, append([]string{"-demo"}, args...))
}

// startReal runs the server in real (whatsmeow) mode, its clients kept off
// the network: every dial they make fails at once.
func startReal(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	return launch(t, env, args)
}

// offline makes a whatsmeow client's every connection attempt fail without
// touching the network.
func offline(_ string, c *whatsmeow.Client) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("offline test: no network")
		},
	}}
	c.SetWebsocketHTTPClient(hc)
	c.SetPreLoginHTTPClient(hc)
	c.SetMediaHTTPClient(hc)
}

// launch runs the server on a free loopback port with args and env, and
// stops it when the test ends, failing the test if it does not stop
// cleanly.
func launch(t *testing.T, env map[string]string, args []string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1),
		hup: make(chan os.Signal), term: make(chan os.Signal)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	e := env_(env, s)
	e.hup, e.term = s.hup, s.term
	go func() { s.done <- run(ctx, args, e) }()
	t.Cleanup(func() {
		if !s.stopped {
			s.stop(t)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(s.stderr.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.stopped = true
			t.Fatalf("run returned %v before listening; stderr:\n%s", err, s.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line on stderr:\n%s", "listening on", s.stderr)
		}
	}
}

// stop stops the server as SIGTERM would, and returns what it printed on
// stderr; run must return nil.
func (s *server) stop(t *testing.T) string {
	t.Helper()
	s.stopped = true
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run returned %v after cancel; stderr:\n%s", err, s.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("run did not return after cancel")
	}
	return s.stderr.String()
}

// env_ is the env of a test run: variables from vars, output into s, and
// whatsmeow clients offline.
func env_(vars map[string]string, s *server) env {
	return env{getenv: func(k string) string { return vars[k] }, stdout: s.stdout, stderr: s.stderr, clientHook: offline}
}

// post sends body to path with headers and returns the status and body.
func (s *server) post(t *testing.T, path, body string, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

const chat = "15551234567@s.whatsapp.net"

func TestDialects(t *testing.T) {
	s := start(t, nil, "-v", "-sessions", "demo,support")
	tests := []struct {
		name    string
		path    string
		headers []string
		body    string
		session string
		id      string
		status  int // 0: 200
	}{
		{
			name:    "Wasend",
			path:    seenhandler.PathWasend,
			headers: []string{"Authorization", "Bearer demo-token"},
			body:    `{"session":"demo","to":"15551234567","messageId":"3EB0AAAA0001"}`,
			session: "demo",
			id:      "3EB0AAAA0001",
		},
		{
			name:    "Wawp",
			path:    seenhandler.PathWawp,
			body:    `{"instance_id":"support","access_token":"demo-token","chatId":"15551234567@c.us","messageIds":["3EB0BBBB0002"]}`,
			session: "support",
			id:      "3EB0BBBB0002",
		},
		{
			name:    "WAHA",
			path:    seenhandler.PathWAHA,
			headers: []string{"X-Api-Key", "demo-token"},
			body:    `{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0C767D26A1D98A4"]}`,
			session: "demo",
			id:      "3EB0C767D26A1D98A4",
			status:  http.StatusCreated, // as WAHA answers
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.post(t, tc.path, tc.body, tc.headers...)
			if want := cmp.Or(tc.status, http.StatusOK); status != want {
				t.Fatalf("status %d, want %d; body: %s", status, want, body)
			}
			var resp struct {
				Success, Acknowledged bool
				Session, ChatID       string
				Receipts              []struct {
					MessageIDs []string
					Type       string
				}
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if !resp.Success || !resp.Acknowledged || resp.Session != tc.session || resp.ChatID != chat {
				t.Errorf("body %s: want success, acknowledged, session %q, chatId %q", body, tc.session, chat)
			}
			if len(resp.Receipts) != 1 || !slices.Equal(resp.Receipts[0].MessageIDs, []string{tc.id}) ||
				resp.Receipts[0].Type != "read" {
				t.Errorf("receipts %+v, want one read receipt for %s", resp.Receipts, tc.id)
			}
		})
	}

	// -v: one JSON line per receipt sent, naming its message id.
	var sent []string
	sc := bufio.NewScanner(strings.NewReader(s.stdout.String()))
	for sc.Scan() {
		var line struct {
			Msg        string   `json:"msg"`
			Level      string   `json:"level"`
			MessageIDs []string `json:"message_ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		if line.Msg == "receipt sent" {
			sent = append(sent, line.MessageIDs...)
		}
	}
	want := []string{"3EB0AAAA0001", "3EB0BBBB0002", "3EB0C767D26A1D98A4"}
	if !slices.Equal(sent, want) {
		t.Errorf("receipt lines on stdout name ids %q, want %q; stdout:\n%s", sent, want, s.stdout)
	}
}

func TestWrongToken(t *testing.T) {
	s := start(t, map[string]string{tokenEnv: "env-token"})
	body := `{"session":"demo","to":"15551234567","messageId":"3EB0AAAA0001"}`
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"Wrong", "nope", http.StatusUnauthorized},
		{"DemoTokenOverridden", "demo-token", http.StatusUnauthorized},
		{"FromEnv", "env-token", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, got := s.post(t, seenhandler.PathWasend, body, "Authorization", "Bearer "+tc.token)
			if status != tc.status {
				t.Errorf("status %d, want %d; body: %s", status, tc.status, got)
			}
			if tc.status == http.StatusUnauthorized && !strings.Contains(string(got), `"code":"unauthorized"`) {
				t.Errorf("body %s, want code unauthorized", got)
			}
		})
	}
	if strings.Contains(s.stderr.String(), "env-token") {
		t.Errorf("stderr shows the token from the environment:\n%s", s.stderr)
	}
}

func TestQuietByDefault(t *testing.T) {
	s := start(t, nil)
	status, body := s.post(t, seenhandler.PathWasend, `{"session":"demo","to":"15551234567","messageId":"3EB0AAAA0001"}`,
		"Authorization", "Bearer demo-token")
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200; body: %s", status, body)
	}
	if out := s.stdout.String(); out != "" {
		t.Errorf("stdout without -v = %q, want nothing", out)
	}
	errOut := s.stderr.String()
	for _, want := range []string{"demo-token", "sessions: demo", "curl -sS " + s.url + "/sendSeen"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("start-up lines lack %q:\n%s", want, errOut)
		}
	}
}

func TestHealthz(t *testing.T) {
	s := start(t, nil)
	req, err := http.NewRequest(http.MethodGet, s.url+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	status, body := do(t, req)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"ok":true}` {
		t.Errorf("GET /healthz = %d %s, want 200 {\"ok\":true}", status, body)
	}
}

// The server serves the document it is checked against.
func TestOpenAPIServed(t *testing.T) {
	s := start(t, nil)
	req, _ := http.NewRequest(http.MethodGet, s.url+"/openapi.yaml", nil)
	if status, body := do(t, req); status != http.StatusOK || !bytes.Equal(body, seenhandler.OpenAPI()) {
		t.Errorf("GET /openapi.yaml: %d, %d bytes", status, len(body))
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		err    error
		code   int
		stderr []string
	}{
		{"RealModeWithoutToken", nil, errUsage, 2, []string{"token is required", "BLUETICK_TOKEN"}},
		{"BadFlag", []string{"-nope"}, errUsage, 2, []string{"-nope"}},
		{"NoSessions", []string{"-demo", "-sessions", " , "}, errUsage, 2, []string{"-sessions"}},
		{"NegativeMaxConns", []string{"-demo", "-max-conns", "-1"}, errUsage, 2, []string{"-max-conns"}},
		{"MissingTokensFile", []string{"-tokens", "/nonexistent/tokens"}, errUsage, 2, []string{"-tokens"}},
		// Flags that would silently mean something else.
		{"NaNSessionRate", []string{"-demo", "-session-rate", "NaN"}, errUsage, 2, []string{"-session-rate"}},
		{"InfTokenRate", []string{"-demo", "-token-rate", "+Inf"}, errUsage, 2, []string{"-token-rate"}},
		{"NegativeSessionRate", []string{"-demo", "-session-rate", "-1"}, errUsage, 2, []string{"-session-rate"}},
		{"TinySessionRate", []string{"-demo", "-session-rate", "1e-9"}, errUsage, 2, []string{"-session-rate", "0.001"}},
		{"ZeroBurst", []string{"-demo", "-token-rate", "5", "-token-burst", "0"}, errUsage, 2, []string{"-token-burst"}},
		{"NegativeCoalesce", []string{"-demo", "-coalesce", "-1s"}, errUsage, 2, []string{"-coalesce"}},
		{"AsyncDelaysOutOfOrder", []string{"-demo", "-async-min", "3s", "-async-max", "1s"}, errUsage, 2, []string{"-async-min"}},
		{"AutoReadDelaysOutOfOrder", []string{"-auto-read", "-auto-read-min", "1m", "-auto-read-max", "10s"}, errUsage, 2, []string{"-auto-read-min"}},
		{"AutoReadInDemo", []string{"-demo", "-auto-read"}, errUsage, 2, []string{"-auto-read", "-demo"}},
		{"BadPresence", []string{"-demo", "-presence", "away"}, errUsage, 2, []string{"-presence", "online, reading or off"}},
		{"NegativePresenceIdle", []string{"-demo", "-presence-idle", "-1s"}, errUsage, 2, []string{"-presence-idle"}},
		{"Help", []string{"-h"}, flag.ErrHelp, 0, []string{"-demo", "-max-conns", "(default 1024)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, tc.args, env{getenv: func(string) string { return "" }, stdout: &stdout, stderr: &stderr, clientHook: offline})
			if !errors.Is(err, tc.err) {
				t.Fatalf("run = %v, want %v", err, tc.err)
			}
			if code := exitCode(err); code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestOfflineSession(t *testing.T) {
	s := start(t, nil, "-sessions", "demo,down", "-offline", "down")
	body := func(name string) string {
		return `{"session":"` + name + `","to":"15551234567","messageId":"3EB0AAAA0002"}`
	}
	status, got := s.post(t, seenhandler.PathWasend, body("down"), "Authorization", "Bearer "+demoToken)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(got), `"code":"session_not_connected"`) {
		t.Errorf("offline session: status %d, body %s", status, got)
	}
	if status, got := s.post(t, seenhandler.PathWasend, body("demo"), "Authorization", "Bearer "+demoToken); status != http.StatusOK {
		t.Errorf("online session: status %d, body %s", status, got)
	}
	// The status agrees (it said WORKING, connected).
	for target, want := range map[string]string{
		"/api/sessions/down":                                `"status":"STARTING"`,
		"/v2/session/status?session=down":                   `"connected":false`,
		"/api/sessions/demo":                                `"status":"WORKING"`,
		"/v2/session/status?session=demo&instance_id=sales": `"rule":"conflict"`,
	} {
		req, _ := http.NewRequest(http.MethodGet, s.url+target, nil)
		req.Header.Set("Authorization", "Bearer "+demoToken)
		status, got := do(t, req)
		wantStatus := http.StatusOK
		if strings.Contains(target, "instance_id") {
			wantStatus = http.StatusBadRequest
		}
		if status != wantStatus || !strings.Contains(string(got), want) {
			t.Errorf("GET %s: %d %s, want %d with %s", target, status, got, wantStatus, want)
		}
	}
}

func TestRealModeWithoutNetwork(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bluetick.db")
	storeDevice(t, db, "15550000001")
	s := startReal(t, map[string]string{tokenEnv: "s3cret"}, "-db", db)
	auth := []string{"Authorization", "Bearer s3cret"}

	// The stored session is there, not connected: 503 with Retry-After.
	status, body := s.post(t, seenhandler.PathWAHA, `{"session":"15550000001","chatId":"15551234567","messageIds":["3EB0A"]}`, auth...)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"session_not_connected"`) {
		t.Errorf("receipt: status %d, body %s", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/sessions/15550000001", nil)
	req.Header.Set(auth[0], auth[1])
	status, body = do(t, req)
	if status != http.StatusOK || !strings.Contains(string(body), `"status":"STARTING"`) || !strings.Contains(string(body), `"me":{"id":"15550000001@c.us"`) {
		t.Errorf("status: %d %s", status, body)
	}
	req, _ = http.NewRequest(http.MethodGet, s.url+"/v2/session/status?session=15550000001&access_token=s3cret", nil)
	if status, body = do(t, req); status != http.StatusOK || !strings.Contains(string(body), `"jid":"15550000001@s.whatsapp.net"`) {
		t.Errorf("wawp status: %d %s", status, body)
	}
	req, _ = http.NewRequest(http.MethodGet, s.url+"/api/sessions", nil) // the Manager lists its sessions
	req.Header.Set(auth[0], auth[1])
	if status, body = do(t, req); status != http.StatusOK || !strings.Contains(string(body), `[{"name":"15550000001","status":"STARTING"`) {
		t.Errorf("session list: %d %s", status, body)
	}
	if !strings.Contains(s.stderr.String(), "whatsmeow backend") || strings.Contains(s.stderr.String(), "s3cret") {
		t.Errorf("banner:\n%s", s.stderr)
	}
}

// Without WhatsApp at hand, the session being paired is registered at
// once: its status is SCAN_QR_CODE and sendSeen answers 503
// session_not_logged_in with a Retry-After (the wait before the next
// attempt: exactly so in whatsmeow's TestKeepPairingRetriesWhileOffline),
// while the pairing is retried in the background.
//
// Before: pairing failed once and left no session: 404 session_not_found.
func TestRealModePairingWithoutNetwork(t *testing.T) {
	for _, args := range [][]string{nil, {"-pair-phone", "+1 555 123 4567"}} {
		db := filepath.Join(t.TempDir(), "bluetick.db")
		s := startReal(t, nil, append([]string{"-db", db, "-token", "s3cret"}, args...)...)
		// The answer names the wait before the next attempt once the first
		// has failed (under load, a request could come before).
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.stderr.String(), `pairing session "default": WhatsApp is unreachable`); {
			if time.Now().After(deadline) {
				t.Fatalf("%v: the first pairing attempt did not fail; stderr:\n%s", args, s.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}

		req, err := http.NewRequest(http.MethodPost, s.url+seenhandler.PathWasend, strings.NewReader(`{"session":"default","to":"15551234567","messageId":"A"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), string(seenhandler.CodeSessionNotLoggedIn)) ||
			after < 1 || after > int(bwm.MaxReconnectWait/time.Second) {
			t.Errorf("%v: status %d, Retry-After %q, body %s", args, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}

		req, err = http.NewRequest(http.MethodGet, s.url+"/api/sessions/default", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer s3cret")
		if status, body := do(t, req); status != http.StatusOK || !strings.Contains(string(body), `"status":"SCAN_QR_CODE"`) {
			t.Errorf("%v: status answer %d %s", args, status, body)
		}

		// The pairing is retried: the second attempt fails too.
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(s.stderr.String(), `pairing session "default": WhatsApp is unreachable`) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%v: no second pairing attempt on stderr:\n%s", args, s.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// storeDevice saves a paired device in the SQLite store at path, as an
// earlier run would have.
func storeDevice(t *testing.T, path, user string) {
	t.Helper()
	storeDeviceIn(t, "sqlite", "file:"+path+"?_pragma=foreign_keys(1)", user)
}

// storeDeviceIn stores a paired device whose JID user is user in the
// whatsmeow store of dialect ("sqlite", "postgres") at dsn.
func storeDeviceIn(t *testing.T, dialect, dsn, user string) {
	t.Helper()
	driver := dialect
	if dialect == "postgres" {
		driver = "pgx"
	}
	c, err := sqlstore.New(context.Background(), driver, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev := c.NewDevice()
	id := types.NewADJID(user, 0, 1)
	dev.ID = &id
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAsyncAndShutdownStats(t *testing.T) {
	s := start(t, nil, "-async", "-async-min", "1h", "-async-max", "1h")
	status, body := s.post(t, seenhandler.PathWasend, `{"session":"demo","to":"15551234567","messageId":"ASYNC1"}`, "Authorization", "Bearer "+demoToken)
	if status != http.StatusAccepted || !strings.Contains(string(body), `"accepted":true`) {
		t.Fatalf("status %d, body %s", status, body)
	}
	// Stopping sends the queued receipt at once (the delay was an hour).
	if out := s.stop(t); !strings.Contains(out, "1 accepted, 1 sent, 0 failed, 0 pending") {
		t.Errorf("stderr after stop:\n%s", out)
	}
}

func TestRateLimits(t *testing.T) {
	// Demo mode has no limit by default; -session-rate sets one.
	s := start(t, nil, "-session-rate", "0.001", "-session-burst", "2")
	codes := ""
	for i := range 3 {
		status, _ := s.post(t, seenhandler.PathWasend, fmt.Sprintf(`{"session":"demo","to":"15551234567","messageId":"R%d"}`, i), "Authorization", "Bearer "+demoToken)
		codes += fmt.Sprint(status, " ")
	}
	if codes != "200 200 429 " {
		t.Errorf("statuses %s, want 200 200 429", codes)
	}
	// Real mode protects each account by default.
	db := filepath.Join(t.TempDir(), "bluetick.db")
	storeDevice(t, db, "15550000001")
	r := startReal(t, nil, "-db", db, "-token", "s3cret")
	limited := false
	for i := range realSessionBurst + 1 {
		status, _ := r.post(t, seenhandler.PathWAHA, fmt.Sprintf(`{"session":"15550000001","chatId":"15551234567","messageIds":["R%d"]}`, i), "Authorization", "Bearer s3cret")
		limited = limited || status == http.StatusTooManyRequests
	}
	if !limited {
		t.Errorf("%d requests in a burst were not limited in real mode", realSessionBurst+1)
	}
}

// -max-conns caps the connections served at once: with
// one, a stalled client holds the only slot and the next request is served
// once it leaves.
func TestMaxConns(t *testing.T) {
	s := start(t, nil, "-max-conns", "1")
	stalled, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stalled, "POST /sendSeen HTTP/1.1\r\nHost: x\r\n"); err != nil { // headers never end
		t.Fatal(err)
	}
	served := make(chan int, 1)
	go func() {
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			served <- 0
			return
		}
		resp.Body.Close()
		served <- resp.StatusCode
	}()
	// A negative check: it can only pass wrongly, never fail by chance.
	select {
	case code := <-served:
		t.Fatalf("served (%d) while the only connection slot was taken", code)
	case <-time.After(100 * time.Millisecond):
	}
	stalled.Close()
	if code := <-served; code != http.StatusOK {
		t.Errorf("GET /healthz after the stalled client left: %d", code)
	}
}

// -max-conns is not held by connections that send nothing: with every slot
// taken by idle keep-alive connections (each sent a request and waits, as
// a client keeping a pool does), a new client is served at once — the
// connection idle for longest gives way — and a client sending a request
// keeps its slot (TestMaxConns).
//
// Before: the new client waited for an idle connection to end (the 60 s
// IdleTimeout; a client re-sending GET /healthz every 40 s held its slots
// for good).
func TestMaxConnsIdleConnectionsGiveWay(t *testing.T) {
	s := start(t, nil, "-max-conns", "2")
	get := func(c *http.Client) error {
		resp, err := c.Get(s.url + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	client := func() *http.Client { // a pool of its own: one connection, kept
		c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	for _, c := range []*http.Client{client(), client()} { // every slot: idle
		if err := get(c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := get(client()); err != nil {
			t.Fatalf("new client %d with every slot idle: %v", i, err)
		}
	}
}

// -tokens FILE scopes tokens to sessions, and SIGHUP
// reloads it (a bad file leaves the tokens in use).
func TestTokensFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(content string) {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# tenants\nsales-key: sales\n\nops-key: *\n")
	s := start(t, nil, "-sessions", "demo,sales", "-tokens", file)
	body := func(name string) string {
		return `{"session":"` + name + `","to":"15551234567","messageId":"3EB0AAAA0003"}`
	}
	check := func(token, name string, want int) {
		t.Helper()
		if status, got := s.post(t, seenhandler.PathWasend, body(name), "Authorization", "Bearer "+token); status != want {
			t.Errorf("%s on %s: %d %s, want %d", token, name, status, got, want)
		}
	}
	check("sales-key", "sales", 200)
	check("sales-key", "demo", 403)
	check("ops-key", "demo", 200)
	check(demoToken, "demo", 401) // -tokens without -token: no demo token
	// Each send returns once reloadOn has taken the signal; the second,
	// once it has finished with the first.
	hup := func() { s.hup <- syscall.SIGHUP; s.hup <- syscall.SIGHUP }

	write("sales-key: demo\n")
	hup()
	check("sales-key", "demo", 200)
	check("sales-key", "sales", 403)
	check("ops-key", "demo", 401)

	write("sales-key demo\n") // no colon: refused, the tokens in use stay
	hup()
	check("sales-key", "demo", 200)
	if out := s.stop(t); !strings.Contains(out, "tokens: 2 from") || !strings.Contains(out, "tokens reloaded from") ||
		!strings.Contains(out, "tokens not reloaded") || strings.Contains(out, "sales-key") {
		t.Errorf("stderr:\n%s", out)
	}
}

func TestParseTokens(t *testing.T) {
	got, err := parseTokens(strings.NewReader("a: x, y\n# c: z\n  b :* \n"))
	if err != nil || len(got) != 2 || len(got["a"]) != 2 || got["b"][0] != "*" {
		t.Errorf("parseTokens = %v, %v", got, err)
	}
	for _, bad := range []string{"a x", ": x", "a:", "a: x\na: y", "a b: x"} {
		if _, err := parseTokens(strings.NewReader(bad)); err == nil || strings.Contains(err.Error(), "a") && strings.Contains(bad, "a b") && strings.Contains(err.Error(), "a b") {
			t.Errorf("parseTokens(%q) = %v", bad, err)
		}
	}
}

// A second server on the same SQLite file refuses to
// start, saying why (exit status 1), instead of connecting the same
// devices a second time; the first one keeps serving.
func TestSQLiteStoreServesOneServer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	storeDevice(t, db, "15550000001")
	vars := map[string]string{tokenEnv: "s3cret"}
	first := startReal(t, vars, "-db", db)

	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db},
		env{getenv: func(k string) string { return vars[k] }, stdout: &stdout, stderr: &stderr, clientHook: offline})
	if !errors.Is(err, bwm.ErrStoreInUse) || exitCode(err) != 1 || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "use PostgreSQL") {
		t.Fatalf("second server: %v (exit status %d), want ErrStoreInUse naming %s and PostgreSQL", err, exitCode(err), db)
	}
	req, _ := http.NewRequest(http.MethodGet, first.url+"/api/sessions/15550000001", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if status, body := do(t, req); status != http.StatusOK {
		t.Errorf("the first server after the second's refusal: %d %s", status, body)
	}
}

// Receipts for one chat are group-committed unless the flags say
// otherwise; a -coalesce window (deprecated: batching waits on no timer)
// turns group commit on.
func TestDecorateOptionsGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		coalesce bool
	}{
		{nil, true},
		{[]string{"-group-commit=false"}, false},
		{[]string{"-coalesce", "10ms"}, true},
		{[]string{"-group-commit=false", "-coalesce", "10ms"}, true},
		{[]string{"-group-commit=false", "-coalesce", "0"}, false},
	} {
		c, err := parseFlags(append([]string{"-demo"}, tc.args...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if o := decorateOptions(c); (o.Coalesce != nil) != tc.coalesce {
			t.Errorf("%q: coalescing %+v, want %v", tc.args, o.Coalesce, tc.coalesce)
		}
	}
}
