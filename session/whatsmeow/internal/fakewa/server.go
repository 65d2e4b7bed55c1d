package fakewa

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// tlsServerName is a name the certificate of httptest's TLS servers is valid
// for. The HTTP client dials the fake whatever host it is asked for and
// verifies the certificate against this name.
const tlsServerName = "example.com"

// Server is a fake WhatsApp websocket endpoint on 127.0.0.1. It completes the
// Noise handshake with an unmodified whatsmeow client, logs in any paired
// device with <success>, offers a device that registers (pairs) QR codes
// that nobody scans, answers the queries whatsmeow makes, and records every
// node it receives after the handshake.
//
// All methods are safe for concurrent use. The ones that take a testing.TB
// may call t.Fatal and so belong in the test's own goroutine.
type Server struct {
	log    *testLog
	ctx    context.Context
	cancel context.CancelFunc
	http   *httptest.Server
	client *http.Client
	static *keys.KeyPair
	chain  []byte

	handlers sync.WaitGroup

	receipts, receiptIDs, appStatePatches atomic.Int64 // see Counts

	// countWaiters counts the WaitCounts calls waiting: only while there
	// are some does count wake them, through countsChanged (closed and
	// replaced under countsMu), so that counting stays two atomic adds.
	countWaiters  atomic.Int32
	countsMu      sync.Mutex
	countsChanged chan struct{}

	mu      sync.Mutex
	cfg     config
	closed  bool
	conns   map[*conn]struct{}
	nodes   []waBinary.Node
	changed chan struct{} // closed and replaced whenever a node is recorded or a connection ends
	peers   map[peerKey]*peer
	groups  map[types.JID]Group // see SetGroup
	held    *[]heldReply        // see HoldGroupInfo; nil: answer at once

	replaced      int               // see Replaced
	maxConcurrent map[types.JID]int // see MaxConcurrent

	// appMu guards the accounts' app state (see AddAppStateKey), which
	// takes store queries: apart from mu.
	appMu    sync.Mutex
	accounts map[string]*accountState // by account (user)
	taken    []AppStatePatch          // see AppStatePatches
	rejected []error                  // see AppStateRejections
}

// Start starts a Server listening on 127.0.0.1 with a fresh port, static key
// and TLS certificate. t's cleanup closes every connection, stops the server
// and puts whatsmeow.WACertPubKey back.
//
// While any Server is alive, whatsmeow.WACertPubKey holds this package's fake
// root key instead of WhatsApp's. Servers share that key, but nothing else in
// the test binary may rely on the real one meanwhile: tests that use the fake
// must not run in parallel with tests that connect elsewhere or touch
// WACertPubKey themselves. The simplest rule is not to call t.Parallel in
// tests that use the fake.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}

	logs := newTestLog(t) // registered first, so it is flushed after the server stops
	s := &Server{
		log:     logs,
		static:  keys.NewKeyPair(),
		cfg:     cfg,
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
		peers:   make(map[peerKey]*peer),

		accounts: make(map[string]*accountState),

		maxConcurrent: make(map[types.JID]int),

		countsChanged: make(chan struct{}),
	}
	var err error
	if s.chain, err = certChain(s.static); err != nil {
		t.Fatalf("fakewa: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakewa: listen: %v", err)
	}

	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.http = httptest.NewUnstartedServer(http.HandlerFunc(s.serveWebsocket))
	_ = s.http.Listener.Close()
	s.http.Listener = ln
	s.http.Config.ErrorLog = log.New(logWriter{logs.logger("HTTP")}, "", 0)
	restoreCert := installRootKey()
	s.http.StartTLS()

	transport := s.http.Client().Transport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.TLSClientConfig.ServerName = tlsServerName
	addr := ln.Addr().String()
	transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	s.client = &http.Client{Transport: transport}

	t.Cleanup(func() {
		s.close()
		restoreCert()
	})
	return s
}

// HTTPClient returns the client to give to whatsmeow's
// Client.SetWebsocketHTTPClient: whatever URL whatsmeow dials
// (wss://web.whatsapp.com/ws/chat), it connects to this server over TLS.
func (s *Server) HTTPClient() *http.Client {
	return s.client
}

// Certificate returns the server's TLS certificate, the one HTTPClient
// trusts, for a client in another process (which must check it against the
// name HTTPClient's TLS configuration has as ServerName).
func (s *Server) Certificate() *x509.Certificate {
	return s.http.Certificate()
}

// Addr returns the server's address, 127.0.0.1:port.
func (s *Server) Addr() string {
	return s.http.Listener.Addr().String()
}

// SetReadReceipts changes the "readreceipts" value of later answers to the
// privacy settings query (see WithReadReceipts). The value is sent verbatim.
func (s *Server) SetReadReceipts(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.readReceipts = value
}

// SetPrivacyErrors turns the error answers of WithPrivacyErrors on or off.
func (s *Server) SetPrivacyErrors(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.privacyErrors = on
}

// DropConnections closes every open websocket connection abruptly, as a
// network failure would. It does not wait for the clients to notice. The
// server keeps accepting connections: a client with EnableAutoReconnect set
// would come back, which is why the clients made by NewClient and Connect have
// it unset.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.CloseNow()
	}
}

// Nodes returns a copy of every node received from clients after their
// handshake (the login queries included), in the order they arrived.
func (s *Server) Nodes() []waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]waBinary.Node, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = cloneNode(n)
	}
	return out
}

// Receipts returns a copy of the <receipt> nodes among Nodes, in order.
func (s *Server) Receipts() []waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []waBinary.Node
	for _, n := range s.nodes {
		if n.Tag == "receipt" {
			out = append(out, cloneNode(n))
		}
	}
	return out
}

// WaitNode returns a copy of the first received node, past or future, for
// which match returns true. If none arrives within timeout it fails the test
// with t.Fatalf, listing the nodes received so far.
func (s *Server) WaitNode(t testing.TB, timeout time.Duration, match func(waBinary.Node) bool) waBinary.Node {
	t.Helper()
	seen := 0
	var found waBinary.Node
	waitFor(t, timeout, func() (<-chan struct{}, bool) {
		s.mu.Lock()
		fresh := s.nodes[seen:len(s.nodes):len(s.nodes)]
		changed := s.changed
		s.mu.Unlock()
		for _, n := range fresh {
			if c := cloneNode(n); match(c) {
				found = c
				return changed, true
			}
		}
		seen += len(fresh)
		return changed, false
	}, func() string {
		var got []string
		for _, n := range s.Nodes() {
			got = append(got, XML(n))
		}
		return fmt.Sprintf("no matching node within %v; received:\n%s", timeout, strings.Join(got, "\n"))
	})
	return found
}

// waitFor calls check until it reports done, again each time the channel
// it returned last is closed; it fails t with failure's message if
// timeout passes first. check returns the channel before reading what it
// checks, so that a change after the read closes it.
func waitFor(t testing.TB, timeout time.Duration, check func() (changed <-chan struct{}, done bool), failure func() string) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		changed, done := check()
		if done {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("fakewa: %s", failure())
		}
	}
}

// Send sends n to every logged-in client, as WhatsApp pushes a node (a
// <stream:error>, a <message>, …). It fails the test if no client is
// logged in or a send fails.
func (s *Server) Send(t testing.TB, n waBinary.Node) {
	t.Helper()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.loggedIn.Load() {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	if len(conns) == 0 {
		t.Fatalf("fakewa: no logged-in client to send %s to", n.Tag)
	}
	for _, c := range conns {
		if err := c.send(s.ctx, n); err != nil {
			t.Fatalf("fakewa: send %s: %v", XML(n), err)
		}
	}
}

// WaitConnections waits until exactly n clients are connected; it fails the
// test if that does not happen within timeout.
func (s *Server) WaitConnections(t testing.TB, timeout time.Duration, n int) {
	t.Helper()
	var have int
	waitFor(t, timeout, func() (<-chan struct{}, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		have = len(s.conns)
		return s.changed, have == n
	}, func() string { return fmt.Sprintf("%d connections after %v, want %d", have, timeout, n) })
}

// Counts is what a Server has received from its clients, counted.
type Counts struct {
	// Receipts counts the receipts for messages seen (type read,
	// read-self, played, played-self or view), ReceiptIDs the message ids
	// they carried (the id attribute and each list item).
	Receipts, ReceiptIDs int64
	// AppStatePatches counts the app-state patches sent (an
	// xmlns="w:sync:app:state" query carrying a <patch>).
	AppStatePatches int64
}

// Counts returns what the server has received so far, counted; unlike
// Nodes it also counts WithCountOnly.
func (s *Server) Counts() Counts {
	return Counts{Receipts: s.receipts.Load(), ReceiptIDs: s.receiptIDs.Load(), AppStatePatches: s.appStatePatches.Load()}
}

// WaitCounts waits until done returns true for the counts (see Counts),
// called again each time they change; it fails the test if that does not
// happen within timeout. Unlike WaitNode it works WithCountOnly: it is how
// a benchmark waits for the receipts of requests another process has
// answered.
func (s *Server) WaitCounts(t testing.TB, timeout time.Duration, done func(Counts) bool) {
	t.Helper()
	s.countWaiters.Add(1)
	defer s.countWaiters.Add(-1)
	var got Counts
	waitFor(t, timeout, func() (<-chan struct{}, bool) {
		s.countsMu.Lock()
		changed := s.countsChanged
		s.countsMu.Unlock()
		got = s.Counts() // read after taking the channel
		return changed, done(got)
	}, func() string { return fmt.Sprintf("counts %+v after %v, still not what was waited for", got, timeout) })
}

// count adds n to the counts and wakes WaitCounts.
func (s *Server) count(n waBinary.Node) {
	switch n.Tag {
	case "receipt":
		switch n.Attrs["type"] {
		case "read", "read-self", "played", "played-self", "view":
		default:
			return
		}
		ids := int64(1)
		for _, list := range n.GetChildrenByTag("list") {
			ids += int64(len(list.GetChildrenByTag("item")))
		}
		s.receipts.Add(1)
		s.receiptIDs.Add(ids)
	case "iq":
		if _, ok := n.GetOptionalChildByTag("sync", "collection", "patch"); ok && n.Attrs["xmlns"] == "w:sync:app:state" {
			s.appStatePatches.Add(1)
		} else {
			return
		}
	default:
		return
	}
	if s.countWaiters.Load() > 0 {
		s.countsMu.Lock()
		close(s.countsChanged)
		s.countsChanged = make(chan struct{})
		s.countsMu.Unlock()
	}
}

// record counts a received node and, unless WithCountOnly, appends it and
// wakes WaitNode.
func (s *Server) record(n waBinary.Node) {
	s.count(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.countOnly {
		return
	}
	s.nodes = append(s.nodes, n)
	close(s.changed)
	s.changed = make(chan struct{})
}

// settings returns a copy of the current configuration.
func (s *Server) settings() config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"web.whatsapp.com"}})
	if err != nil {
		s.log.logger("Server").Warnf("websocket accept: %v", err)
		return
	}
	c := &conn{srv: s, ws: ws, log: s.log.logger("Server"), quiet: s.settings().countOnly, done: make(chan struct{})}
	if !s.track(c) {
		_ = ws.CloseNow()
		return
	}
	defer s.untrack(c)
	c.serve(s.ctx)
}

// track registers a new connection, unless the server is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	close(s.changed) // WaitConnections: WithCountOnly no node wakes it
	s.changed = make(chan struct{})
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.handlers.Done()
}

// close drops every connection, waits for their goroutines and stops the
// HTTP server.
func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.DropConnections()
	s.handlers.Wait()
	s.http.Close()
	s.client.CloseIdleConnections()
}

// logWriter adapts a waLog.Logger to the io.Writer of a *log.Logger.
type logWriter struct{ l waLog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warnf("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
