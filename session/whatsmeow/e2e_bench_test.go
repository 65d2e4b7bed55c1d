package whatsmeow_test

// The end-to-end benchmark: HTTP on 127.0.0.1 → a gateway in a process of
// its own → real whatsmeow clients → the fake WhatsApp server
// (internal/fakewa) on 127.0.0.1, which counts the receipts it gets. The
// fake servers and the HTTP clients stay in the test process; each gateway
// is this test binary re-executed as TestE2EGatewayProcess, so that the CPU
// a request costs the gateway is measured apart from what it costs the
// fake and the clients. Subjects (-e2e.subjects picks some), each with a
// fake server and a store of its own:
//
//   - Bluetick: seenhandler.New over a Manager (SQLite file store), library
//     defaults, a static token, and group commit (session.Decorate with
//     CoalesceOptions{}) as examples/server has by default;
//   - BluetickNoGroupCommit: the same without session.Decorate;
//   - BluetickNoChatRead: Bluetick with WithMarkChatRead(false) (no
//     app-state patch marks chats read);
//   - BluetickPostgres: Bluetick on a PostgreSQL store, when
//     $BLUETICK_TEST_POSTGRES is set;
//   - Bare: bareGateway, ~30 lines of net/http calling MarkRead once per
//     request on clients of its own store: the least a gateway does;
//   - with -e2e.peers DIR, in the one-session variants only, gateways that
//     people run today, each its own binary from DIR, built by
//     internal/peers/build.sh (needs the Go module proxy, and GitHub unless
//     given their sources; CI builds none): Wuzapi (POST /chat/markread),
//     Gowa (go-whatsapp-web-multidevice, POST /message/{id}/read, which
//     first asks the fake by usync whether the chat's number is on
//     WhatsApp) and GowaNoValidation (the same with
//     --account-validation=false). Their whatsmeow is pointed at the fake
//     through $BLUETICK_FAKEWA; each request is translated to their format
//     (same chat and message id); their CPU time comes from /proc (their
//     threads' schedstat, checked against their stat's clock ticks), and
//     their barrier is the fake having counted every receipt of the round
//     (e2e_peers_test.go).
//
// Two workloads, -e2e.clients HTTP clients at once (32), each request
// marking one new message; request n goes to session n mod sessions:
//
//   - busy: every client marks messages of one chat, so that group commit
//     has receipts to batch;
//   - spread: 64 chats, a client's consecutive requests rotating over its
//     own share of them, so that no two concurrent requests share a chat:
//     nothing to batch.
//
// Each is run with one session and with -e2e.sessions (100). One iteration
// of a sub-benchmark (BenchmarkEndToEnd/sessions=1/spread) is a round: b.N
// requests to every subject, one subject after the other, the order
// rotated each round. Per subject it reports <subject>-req/s,
// <subject>-cpu-µs/req (the gateway process's user+system time over the
// round, from its getrusage: nothing of the fake's or the clients'),
// <subject>-p50-µs, <subject>-p99-µs, and the receipt frames and app-state
// patches the fake saw per request; for each subject but Bare, its ratios
// to Bare in the same round: <subject>/Bare-req/s and
// <subject>/Bare-cpu/req; and for each Bluetick subject, its ratios to each
// peer of the round: <subject>/<peer>-req/s and <subject>/<peer>-cpu/req.
// Every 2xx must be matched by its message id on the wire. -count gives
// rounds; benchstat their medians. A gateway process keeps its speed for
// its life and two processes of one binary differ by a few percent, more
// than rounds of one process do: pool the rounds of several runs. The
// flags of this file come after the package, where go test passes them on:
//
//	for run in 1 2 3; do go test -run '^$' -bench 'EndToEnd/sessions=1$/' -benchtime 20000x -count 5 ./session/whatsmeow/ -e2e.subjects='^(Bluetick|Bare)$'; done | tee e2e.txt
//	benchstat -filter '.unit:/Bare/' e2e.txt   # the ratios alone
//	go test -run '^$' -bench 'EndToEnd/.*/spread' ./session/whatsmeow/ -e2e.sessions=1000 -e2e.subjects='^Bluetick$'   # 1,000 sessions against one
//	session/whatsmeow/internal/peers/build.sh /tmp/peers   # the peers' binaries, outside the repository
//	go test -run '^$' -bench 'EndToEnd/sessions=1$/' -benchtime 20000x -count 5 ./session/whatsmeow/ -e2e.subjects='^(Bluetick|Bare|Wuzapi|Gowa|GowaNoValidation)$' -e2e.peers /tmp/peers
//
// TestEndToEnd runs the same path briefly as a test.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	signallog "go.mau.fi/libsignal/logger"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

var (
	e2eSessions = flag.Int("e2e.sessions", 100, "sessions of BenchmarkEndToEnd's many-sessions variant")
	e2eClients  = flag.Int("e2e.clients", 32, "concurrent HTTP clients of BenchmarkEndToEnd")
	e2eProfile  = flag.String("e2e.cpuprofile", "", "a directory: each gateway process writes its CPU profile there, as SUBJECT-sessions=N.pprof (setup included)")
	e2eMemProf  = flag.String("e2e.memprofile", "", "a directory: each gateway process writes its allocation profile there, as SUBJECT-sessions=N.mem.pprof (setup included)")
	e2eOnly     = flag.String("e2e.subjects", "", "a regular expression: only the subjects whose names it matches are started (setting up 1,000 sessions takes minutes per subject)")
)

const e2eToken = "e2e-token-0123456789abcdef"

// e2eSpreadChats is how many chats the spread workload's requests rotate
// over: twice the default clients, so that each client has two of its own.
const e2eSpreadChats = 64

// e2eGatewayEnv is the environment variable that makes
// TestE2EGatewayProcess a gateway: it holds an e2eGatewayConfig as JSON.
const e2eGatewayEnv = "BLUETICK_E2E_GATEWAY"

// e2eGatewayConfig is what a gateway process is told by the benchmark.
type e2eGatewayConfig struct {
	Subject string // the name of one of e2eGateways
	Fake    string // the fake server's address, 127.0.0.1:port
	TLSName string // the name the fake's certificate is checked against
	RootKey string // the fake's root key (hex), for whatsmeow.WACertPubKey
	Store   string // the store: a SQLite file's path or a postgres:// DSN
}

// e2eGateway is a subject: how its process builds the gateway.
type e2eGateway struct {
	name     string
	postgres bool // its store is on $BLUETICK_TEST_POSTGRES: it runs only when that is set
	// build opens the store at cfg.Store, connects its clients through
	// fake and returns the handler, the clients (for the barrier round
	// trips) and what closes them.
	build func(t *testing.T, cfg e2eGatewayConfig, fake *http.Client) (http.Handler, []*whatsmeow.Client, func())
}

// e2eGateways returns every subject, in the order a first round runs them.
func e2eGateways() []e2eGateway {
	groupCommit := &session.CoalesceOptions{}
	return []e2eGateway{
		{name: "Bluetick", build: bluetickGateway(e2eOptions{coalesce: groupCommit})},
		{name: "BluetickNoGroupCommit", build: bluetickGateway(e2eOptions{})},
		{name: "BluetickNoChatRead", build: bluetickGateway(e2eOptions{coalesce: groupCommit, session: []bwm.Option{bwm.WithMarkChatRead(false)}})},
		{name: "BluetickPostgres", postgres: true, build: bluetickGateway(e2eOptions{coalesce: groupCommit})},
		{name: "Bare", build: bareGatewayOn},
	}
}

// e2eStore makes a SQLite store file holding n paired devices, accounts
// 1555100000..., with app-state keys, and returns its path and the session names (the numbers).
func e2eStore(tb testing.TB, n int) (string, []string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "store.db")
	names := e2eDevices(tb, "sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)", n)
	return path, names
}

// e2ePostgresStore is e2eStore on a fresh PostgreSQL database of
// $BLUETICK_TEST_POSTGRES: it returns the database's DSN.
func e2ePostgresStore(tb testing.TB, n int) (string, []string) {
	tb.Helper()
	dsn := pgtest.New(tb)
	return dsn, e2eDevices(tb, "pgx", dsn, n)
}

// e2eDevices stores n paired devices with app-state keys in the whatsmeow
// store of driver at dsn, and returns their session names.
func e2eDevices(tb testing.TB, driver, dsn string, n int) []string {
	tb.Helper()
	ctx := context.Background()
	c, err := sqlstore.New(ctx, driver, dsn, nil)
	if err != nil {
		tb.Fatal(err)
	}
	names := make([]string, n)
	for i := range n {
		names[i] = strconv.Itoa(1555100000 + i)
		dev := fakewa.PairDeviceAs(tb, c, names[i])
		// The phone has shared its app-state keys, as it does soon after
		// pairing: chats are marked read (in the background).
		if err := dev.AppStateKeys.PutAppStateSyncKey(ctx, []byte{0, 0, 0, 1},
			store.AppStateSyncKey{Data: bytes.Repeat([]byte{7}, 32), Fingerprint: []byte{1}, Timestamp: 1}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		tb.Fatal(err)
	}
	return names
}

// connectedCounter counts events.Connected of many clients.
type connectedCounter struct {
	n    atomic.Int64
	more chan struct{}
}

func newConnectedCounter() *connectedCounter { return &connectedCounter{more: make(chan struct{}, 1)} }

func (c *connectedCounter) handler(evt any) {
	if _, ok := evt.(*events.Connected); ok {
		c.n.Add(1)
		select {
		case c.more <- struct{}{}:
		default:
		}
	}
}

func (c *connectedCounter) wait(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(e2eConnectWait(n))
	for c.n.Load() < int64(n) {
		select {
		case <-c.more:
		case <-deadline:
			tb.Fatalf("%d of %d clients logged in", c.n.Load(), n)
		}
	}
}

// e2eConnectWait bounds how long n clients may take to log in.
func e2eConnectWait(n int) time.Duration {
	return fakewa.ConnectTimeout + time.Duration(n)*100*time.Millisecond
}

// e2eOptions are a Bluetick subject's options beside the defaults.
type e2eOptions struct {
	session  []bwm.Option             // of every session
	coalesce *session.CoalesceOptions // the handler's registry is session.Decorate'd with them
}

// bluetickGateway builds seenhandler.New over a Manager of the store's
// sessions, with a static token, as an application mounts it.
func bluetickGateway(o e2eOptions) func(*testing.T, e2eGatewayConfig, *http.Client) (http.Handler, []*whatsmeow.Client, func()) {
	return func(t *testing.T, cfg e2eGatewayConfig, fake *http.Client) (http.Handler, []*whatsmeow.Client, func()) {
		t.Helper()
		ctx := context.Background()
		var (
			mu      sync.Mutex
			clients []*whatsmeow.Client
			conn    = newConnectedCounter()
		)
		hook := bwm.WithClientHook(func(_ string, cli *whatsmeow.Client) {
			cli.SetWebsocketHTTPClient(fake)
			cli.EnableAutoReconnect = false
			cli.AddEventHandler(conn.handler)
			mu.Lock()
			clients = append(clients, cli)
			mu.Unlock()
		})
		m, err := bwm.Open(ctx, cfg.Store, append([]bwm.Option{hook}, o.session...)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			_ = m.Close()
			t.Fatal(err)
		}
		conn.wait(t, len(m.Names()))
		auth, err := seenhandler.NewStaticAuth(map[string][]string{e2eToken: {seenhandler.AllSessions}})
		if err != nil {
			t.Fatal(err)
		}
		var reg session.Registry = m
		closeReg := func() {}
		if o.coalesce != nil {
			d := session.Decorate(m, session.DecorateOptions{Coalesce: o.coalesce})
			reg, closeReg = d, func() { _ = d.Close(context.Background()) }
		}
		h, err := seenhandler.New(reg, seenhandler.WithAuth(auth))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return h, slices.Clone(clients), func() { closeReg(); _ = m.Close() }
	}
}

// bareGateway is the least a gateway does: check the token, decode the
// request, call MarkRead, answer.
func bareGateway(clients map[string]*whatsmeow.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+e2eToken)) != 1 {
			http.Error(w, `{"success":false}`, http.StatusUnauthorized)
			return
		}
		var req struct {
			Session    string   `json:"session"`
			ChatID     string   `json:"chatId"`
			MessageIDs []string `json:"messageIds"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.MessageIDs) == 0 {
			http.Error(w, `{"success":false}`, http.StatusBadRequest)
			return
		}
		cli, ok := clients[req.Session]
		chat, err := types.ParseJID(req.ChatID)
		if !ok || err != nil {
			http.Error(w, `{"success":false}`, http.StatusNotFound)
			return
		}
		if err := cli.MarkRead(r.Context(), req.MessageIDs, time.Now(), chat, types.EmptyJID); err != nil {
			http.Error(w, `{"success":false}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true}`)
	})
}

// bareGatewayOn builds bareGateway over a client of each device of the
// SQLite store at cfg.Store.
func bareGatewayOn(t *testing.T, cfg e2eGatewayConfig, fake *http.Client) (http.Handler, []*whatsmeow.Client, func()) {
	t.Helper()
	ctx := context.Background()
	c, err := sqlstore.New(ctx, "sqlite", "file:"+cfg.Store+"?_pragma=foreign_keys(1)", nil)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*whatsmeow.Client
	closeAll := func() {
		for _, cli := range clients {
			cli.Disconnect()
		}
		_ = c.Close()
	}
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		closeAll()
		t.Fatal(err)
	}
	byName := make(map[string]*whatsmeow.Client, len(devices))
	conn := newConnectedCounter()
	for _, dev := range devices {
		cli := whatsmeow.NewClient(dev, waLog.Noop) // as the Manager's discard their logs
		cli.EnableAutoReconnect = false
		cli.SetWebsocketHTTPClient(fake)
		cli.AddEventHandler(conn.handler)
		clients = append(clients, cli)
		if err := cli.Connect(); err != nil {
			closeAll()
			t.Fatal(err)
		}
		byName[dev.ID.User] = cli
	}
	conn.wait(t, len(devices))
	return bareGateway(byName), clients, closeAll
}

// TestE2EGatewayProcess is BenchmarkEndToEnd's gateway process: with
// $BLUETICK_E2E_GATEWAY set (an e2eGatewayConfig) it builds that subject,
// connects its clients to the fake server of the test process that
// started it, prints "e2e: listening <address>" and serves on 127.0.0.1
// until its standard input closes. Meanwhile it answers the lines of its
// standard input: "cpu" with "e2e: cpu <ns>", its user+system time so far
// (getrusage: microseconds, where /proc/<pid>/stat counts 10 ms ticks);
// "barrier" with "e2e: barrier ok" once a round trip on every client has
// returned, so that the fake has read every receipt written before.
// Without the variable it returns at once.
func TestE2EGatewayProcess(t *testing.T) {
	raw := os.Getenv(e2eGatewayEnv)
	if raw == "" {
		return
	}
	var cfg e2eGatewayConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("$%s: %v", e2eGatewayEnv, err)
	}
	key, err := hex.DecodeString(cfg.RootKey)
	if err != nil || len(key) != len(whatsmeow.WACertPubKey) {
		t.Fatalf("root key %q: want %d bytes of hex", cfg.RootKey, len(whatsmeow.WACertPubKey))
	}
	// The fake's certificate chain is signed by its process's root key,
	// which fakewa puts in whatsmeow.WACertPubKey of that process only.
	whatsmeow.WACertPubKey = [32]byte(key)
	// libsignal sets its package logger on first use, unguarded: the
	// first handshakes, in parallel, would race on it (-race says so).
	signallog.Debug()
	i := slices.IndexFunc(e2eGateways(), func(g e2eGateway) bool { return g.name == cfg.Subject })
	if i < 0 {
		t.Fatalf("no subject %q", cfg.Subject)
	}
	h, clients, closeGateway := e2eGateways()[i].build(t, cfg, e2eFakeClient(cfg))
	defer closeGateway()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		_ = hs.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	}()
	fmt.Printf("e2e: listening %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "cpu":
			fmt.Printf("e2e: cpu %d\n", cpuTime().Nanoseconds())
		case "barrier":
			fmt.Printf("e2e: barrier %s\n", barrier(clients))
		default:
			fmt.Printf("e2e: unknown command %q\n", in.Text())
		}
	}
}

// e2eFakeClient returns an HTTP client that connects to the fake server of
// cfg as fakewa.Server.HTTPClient does in the fake's own process: TLS
// checked against cfg.TLSName, whatever the URL's host.
func e2eFakeClient(cfg e2eGatewayConfig) *http.Client {
	// Every httptest TLS server presents the same certificate, the one the
	// fake's does: a throwaway server's client trusts it.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	transport := ts.Client().Transport.(*http.Transport).Clone()
	ts.Close()
	transport.Proxy = nil
	transport.TLSClientConfig.ServerName = cfg.TLSName
	transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", cfg.Fake)
	}
	return &http.Client{Transport: transport}
}

// barrier makes a round trip on each client: MarkRead returns once its
// frame is written, and the answer to a query written after it comes once
// the server has read it. It returns "ok" or the first error.
func barrier(clients []*whatsmeow.Client) string {
	ctx, cancel := context.WithTimeout(context.Background(), wireWait)
	defer cancel()
	for _, cli := range clients {
		if _, err := cli.TryFetchPrivacySettings(ctx, true); err != nil {
			return "failed: " + err.Error()
		}
	}
	return "ok"
}

// cpuTime returns the user+system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// e2eSubject is a gateway process under test, seen from the benchmark.
type e2eSubject struct {
	name  string
	srv   *fakewa.Server // the fake its clients talk to
	url   string         // the gateway's POST endpoint; a peer's base URL (http://127.0.0.1:port)
	names []string       // its session names, in the order requests cycle through
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // the lines of its standard output, closed at its end
	out   *bytes.Buffer // its standard output, then its standard error, for failures
	outMu *sync.Mutex   // guards out
	// peer is set for another project's gateway (e2e_peers_test.go): its
	// process, whose CPU time comes from /proc, its request format and a
	// barrier on the fake's counts; cmd, stdin, lines and out are unset.
	peer *e2ePeerProcess
}

// startGateway starts g's process over a fresh store of sessions sessions
// and a fake server of its own. tb's cleanup closes its standard input and
// waits for it to end, before the fake server stops.
func startGateway(tb testing.TB, g e2eGateway, sessions int) *e2eSubject {
	tb.Helper()
	srv := fakewa.Start(tb, fakewa.WithCountOnly())
	var st string
	var names []string
	if g.postgres {
		st, names = e2ePostgresStore(tb, sessions)
	} else {
		st, names = e2eStore(tb, sessions)
	}
	cfg, err := json.Marshal(e2eGatewayConfig{Subject: g.name, Fake: srv.Addr(),
		TLSName: srv.HTTPClient().Transport.(*http.Transport).TLSClientConfig.ServerName,
		RootKey: hex.EncodeToString(whatsmeow.WACertPubKey[:]), // fakewa's while srv lives
		Store:   st})
	if err != nil {
		tb.Fatal(err)
	}
	// No timeout of its own: it ends when its standard input closes, at the
	// latest when this process ends.
	args := []string{"-test.run=^TestE2EGatewayProcess$", "-test.timeout=0"}
	if *e2eProfile != "" {
		args = append(args, "-test.cpuprofile="+filepath.Join(*e2eProfile, fmt.Sprintf("%s-sessions=%d.pprof", g.name, sessions)))
	}
	if *e2eMemProf != "" {
		args = append(args, "-test.memprofile="+filepath.Join(*e2eMemProf, fmt.Sprintf("%s-sessions=%d.mem.pprof", g.name, sessions)))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), e2eGatewayEnv+"="+string(cfg))
	s := &e2eSubject{name: g.name, srv: srv, names: names, cmd: cmd, lines: make(chan string, 16),
		out: new(bytes.Buffer), outMu: new(sync.Mutex)}
	cmd.Stderr = lockedWriter{s.outMu, s.out}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "e2e: "); ok {
				s.lines <- line
				continue
			}
			s.outMu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.outMu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	tb.Cleanup(func() { s.stop(tb) })
	addr, ok := strings.CutPrefix(s.expect(tb, e2eConnectWait(sessions)+30*time.Second), "listening ")
	if !ok {
		tb.Fatalf("%s: want its address, got %q", s.name, addr)
	}
	s.url = "http://" + addr + seenhandler.PathWAHA
	return s
}

// lockedWriter is an io.Writer under a mutex.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// output returns what the process wrote beside its answers.
func (s *e2eSubject) output() string {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.out.String()
}

// expect returns the process's next answer; it fails tb if none comes
// within timeout.
func (s *e2eSubject) expect(tb testing.TB, timeout time.Duration) string {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-s.lines:
		if !ok {
			tb.Fatalf("%s: the gateway process ended:\n%s", s.name, s.output())
		}
		return line
	case <-timer.C:
		tb.Fatalf("%s: no answer from the gateway process within %v:\n%s", s.name, timeout, s.output())
	}
	return ""
}

// ask sends the gateway process a command and returns its answer without
// the command's name.
func (s *e2eSubject) ask(tb testing.TB, command string) string {
	tb.Helper()
	if _, err := io.WriteString(s.stdin, command+"\n"); err != nil {
		tb.Fatalf("%s: %s: %v\n%s", s.name, command, err, s.output())
	}
	answer, ok := strings.CutPrefix(s.expect(tb, 2*wireWait), command+" ")
	if !ok {
		tb.Fatalf("%s: %s: unexpected answer %q", s.name, command, answer)
	}
	return answer
}

// cpu returns the gateway process's user+system time so far.
func (s *e2eSubject) cpu(tb testing.TB) time.Duration {
	tb.Helper()
	if s.peer != nil {
		return s.peer.cpu(tb)
	}
	ns, err := strconv.ParseInt(s.ask(tb, "cpu"), 10, 64)
	if err != nil {
		tb.Fatalf("%s: cpu: %v", s.name, err)
	}
	return time.Duration(ns)
}

// stop closes the process's standard input and waits for it to end; it
// kills it if it does not within a minute.
func (s *e2eSubject) stop(tb testing.TB) {
	_ = s.stdin.Close()
	ended := make(chan error, 1)
	go func() {
		for range s.lines { // the output is read before Wait
		}
		ended <- s.cmd.Wait()
	}()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case err := <-ended:
		if err != nil {
			tb.Errorf("%s: the gateway process: %v\n%s", s.name, err, s.output())
		}
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-ended
		tb.Errorf("%s: the gateway process did not end within a minute of its input's end; killed\n%s", s.name, s.output())
	}
}

// e2eWorkload says which chat each request marks a message of.
type e2eWorkload struct {
	name string
	// chat returns the chat of client's i-th request, of clients
	// concurrent clients: a number below max(e2eSpreadChats, clients).
	chat func(client, clients, i int) int
}

// e2eWorkloads are the busy and the spread workloads.
func e2eWorkloads() []e2eWorkload {
	return []e2eWorkload{
		{"busy", func(int, int, int) int { return 0 }},
		{"spread", func(client, clients, i int) int {
			// Client g marks chats g, g+clients, g+2·clients…: no other
			// client marks those, so no two requests in flight share one.
			return client + clients*(i%max(1, e2eSpreadChats/clients))
		}},
	}
}

// e2eResult is what one run measured.
type e2eResult struct {
	requests, ok2xx int64
	elapsed         time.Duration
	cpu             time.Duration // the gateway process's
	wire            fakewa.Counts // received during the run
	latencies       []time.Duration
}

// e2eSeq makes message ids unique across the whole test binary.
var e2eSeq atomic.Int64

// drive sends n requests to s with clients concurrent HTTP clients, each
// request marking one new message of the chat w gives, and waits until
// every receipt sent has reached the server.
func drive(tb testing.TB, s *e2eSubject, w e2eWorkload, clients int, n int64) e2eResult {
	tb.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	chats := make([]string, max(e2eSpreadChats, clients))
	for i := range chats {
		chats[i] = fmt.Sprintf("1555200%04d@s.whatsapp.net", i)
	}
	var (
		res     e2eResult
		failed  atomic.Int64
		lastErr atomic.Value
		wg      sync.WaitGroup
		mu      sync.Mutex
		req     atomic.Int64
	)
	before, cpu0, t0 := s.srv.Counts(), s.cpu(tb), time.Now()
	for g := range clients {
		wg.Go(func() {
			var lat []time.Duration
			for i := 0; ; i++ {
				k := req.Add(1)
				if k > n {
					break
				}
				r := s.request(s.names[int(k)%len(s.names)], chats[w.chat(g, clients, i)], "3EB0E2E"+strconv.FormatInt(e2eSeq.Add(1), 16))
				start := time.Now()
				resp, err := hc.Do(r)
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if resp.StatusCode/100 != 2 {
					failed.Add(1)
					lastErr.Store(fmt.Sprintf("%d %s", resp.StatusCode, b))
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed, res.cpu = time.Since(t0), s.cpu(tb)-cpu0
	res.requests = n
	res.ok2xx = n - failed.Load()
	if f := failed.Load(); f > 0 {
		tb.Errorf("%s: %d of %d requests failed, the last: %v", s.name, f, n, lastErr.Load())
	}
	if s.peer != nil {
		s.waitReceipts(tb, before, res.ok2xx)
	} else if answer := s.ask(tb, "barrier"); answer != "ok" {
		tb.Errorf("%s: barrier round trip: %s", s.name, answer)
	}
	after := s.srv.Counts()
	res.wire = fakewa.Counts{Receipts: after.Receipts - before.Receipts, ReceiptIDs: after.ReceiptIDs - before.ReceiptIDs,
		AppStatePatches: after.AppStatePatches - before.AppStatePatches}
	if res.wire.ReceiptIDs != res.ok2xx {
		tb.Errorf("%s: %d 2xx answers but %d message ids seen on the wire", s.name, res.ok2xx, res.wire.ReceiptIDs)
	}
	return res
}

// request is the request marking message id of chat read in session, in
// the subject's format.
func (s *e2eSubject) request(session, chat, id string) *http.Request {
	if s.peer != nil {
		return s.peer.peer.request(s.url, chat, id)
	}
	body := `{"session":"` + session + `","chatId":"` + chat + `","messageIds":["` + id + `"]}`
	r, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+e2eToken)
	return r
}

func (r e2eResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
}

// rate is the requests per second.
func (r e2eResult) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the gateway's CPU µs per request.
func (r e2eResult) cpuPerRequest() float64 {
	return float64(r.cpu.Nanoseconds()) / 1e3 / float64(r.requests)
}

// e2eSubjects starts the gateway processes -e2e.subjects picks, over
// sessions sessions each.
func e2eSubjects(tb testing.TB, sessions int) []*e2eSubject {
	tb.Helper()
	only, err := regexp.Compile(*e2eOnly)
	if err != nil {
		tb.Fatalf("-e2e.subjects: %v", err)
	}
	var subjects []*e2eSubject
	for _, g := range e2eGateways() {
		if only.MatchString(g.name) && (!g.postgres || os.Getenv(pgtest.Env) != "") {
			subjects = append(subjects, startGateway(tb, g, sessions))
		}
	}
	return append(subjects, e2ePeerSubjects(tb, sessions, only)...)
}

// BenchmarkEndToEnd runs the end-to-end benchmark the comment at the top of
// this file describes: each workload with one session and with
// -e2e.sessions, every subject in each round. The ratios that matter are
// Bluetick/Bare-req/s and Bluetick/Bare-cpu/req on the spread workload,
// where nothing can be batched; examples/BENCHMARKS.md has the last
// numbers and the comparison with other gateways.
func BenchmarkEndToEnd(b *testing.B) {
	for _, sessions := range []int{1, *e2eSessions} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			subjects := e2eSubjects(b, sessions)
			for _, w := range e2eWorkloads() {
				round := 0
				b.Run(w.name, func(b *testing.B) {
					results := make(map[string]e2eResult, len(subjects))
					b.ResetTimer()
					for i := range subjects {
						s := subjects[(i+round)%len(subjects)]
						results[s.name] = drive(b, s, w, *e2eClients, int64(b.N))
					}
					b.StopTimer()
					round++
					b.ReportMetric(0, "ns/op") // a round's time per request is every subject's, summed: no measure of any
					bare, haveBare := results["Bare"]
					for _, s := range subjects {
						res := results[s.name]
						n := float64(res.requests)
						b.ReportMetric(res.rate(), s.name+"-req/s")
						b.ReportMetric(res.cpuPerRequest(), s.name+"-cpu-µs/req")
						b.ReportMetric(float64(res.percentile(0.50).Microseconds()), s.name+"-p50-µs")
						b.ReportMetric(float64(res.percentile(0.99).Microseconds()), s.name+"-p99-µs")
						b.ReportMetric(float64(res.wire.Receipts)/n, s.name+"-frames/req")
						b.ReportMetric(float64(res.wire.AppStatePatches)/n, s.name+"-patches/req")
						if haveBare && s.name != "Bare" {
							b.ReportMetric(res.rate()/bare.rate(), s.name+"/Bare-req/s")
							b.ReportMetric(res.cpuPerRequest()/bare.cpuPerRequest(), s.name+"/Bare-cpu/req")
						}
						peerRatios(b, s.name, res, results)
					}
				})
			}
		})
	}
}

// TestEndToEnd runs the benchmark's path briefly: every subject in its own
// process, one and a few sessions, both workloads, each 2xx matched by its
// receipt on the wire.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gateway processes that connect many clients")
	}
	for _, sessions := range []int{1, 4} {
		t.Run(fmt.Sprintf("sessions=%d", sessions), func(t *testing.T) {
			for _, s := range e2eSubjects(t, sessions) {
				for _, w := range e2eWorkloads() {
					t.Run(w.name+"/"+s.name, func(t *testing.T) {
						res := drive(t, s, w, 8, 200)
						if res.ok2xx != 200 {
							t.Errorf("%d 2xx answers, want 200", res.ok2xx)
						}
						if res.cpu <= 0 {
							t.Errorf("the gateway process used %v of CPU for 200 requests", res.cpu)
						}
					})
				}
			}
		})
	}
}
