package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// The node forwards for the handler: seenhandler.Forwarder matches it
// structurally (the cluster does not import seenhandler).
var _ seenhandler.Forwarder = (*cluster.Node)(nil)

// world is the WhatsApp of the fake devices: which node has each device
// connected, and every time two were at once.
type world struct {
	mu       sync.Mutex
	names    []string
	conn     map[string]string // session → node connected
	overlaps []string
	sent     map[string][]string // session → nodes that sent a receipt for it
}

func newWorld(sessions int) *world {
	w := &world{conn: map[string]string{}, sent: map[string][]string{}}
	for i := range sessions {
		w.names = append(w.names, fmt.Sprintf("s%02d", i))
	}
	return w
}

func (w *world) owners() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.conn))
	for k, v := range w.conn {
		out[k] = v
	}
	return out
}

// devices is one node's view of the world: a cluster.Devices.
type devices struct {
	w    *world
	node string
	dead atomic.Bool // Acquire does nothing: the process is gone
}

func (d *devices) Lookup(_ context.Context, name string) (session.Session, error) {
	if !slices.Contains(d.w.names, name) {
		return nil, fmt.Errorf("%w: %q", session.ErrSessionNotFound, name)
	}
	return &device{d: d, name: name}, nil
}

func (d *devices) Refresh(context.Context) ([]string, error) { return slices.Clone(d.w.names), nil }

func (d *devices) Acquire(_ context.Context, names ...string) error {
	if d.dead.Load() {
		return nil
	}
	d.w.mu.Lock()
	defer d.w.mu.Unlock()
	for _, name := range names {
		if other := d.w.conn[name]; other != "" && other != d.node {
			d.w.overlaps = append(d.w.overlaps, fmt.Sprintf("%s: %s connected while %s was", name, d.node, other))
		}
		d.w.conn[name] = d.node
	}
	return nil
}

func (d *devices) Release(_ context.Context, name string) error {
	d.w.mu.Lock()
	defer d.w.mu.Unlock()
	if d.w.conn[name] == d.node {
		delete(d.w.conn, name)
	}
	return nil
}

func (d *devices) ReleaseAll() {
	d.w.mu.Lock()
	defer d.w.mu.Unlock()
	for name, node := range d.w.conn {
		if node == d.node {
			delete(d.w.conn, name)
		}
	}
}

type device struct {
	d    *devices
	name string
}

func (s *device) SendReceipt(ctx context.Context, r session.Receipt) (session.Result, error) {
	// As a backend does, right before it writes.
	if err := session.Fence(ctx); err != nil {
		return session.Result{}, err
	}
	return s.write()
}

// write records a receipt sent, if the world has the device connected
// here.
func (s *device) write() (session.Result, error) {
	s.d.w.mu.Lock()
	defer s.d.w.mu.Unlock()
	if s.d.w.conn[s.name] != s.d.node {
		return session.Result{}, session.ErrNotConnected
	}
	s.d.w.sent[s.name] = append(s.d.w.sent[s.name], s.d.node)
	return session.Result{}, nil
}

func (s *device) Status(context.Context) session.Status {
	s.d.w.mu.Lock()
	defer s.d.w.mu.Unlock()
	up := s.d.w.conn[s.name] == s.d.node
	return session.Status{Connected: up, LoggedIn: up, Paired: true, JID: "1555000" + s.name[1:] + "@s.whatsapp.net"}
}

const (
	testTTL   = 1500 * time.Millisecond
	testRenew = 250 * time.Millisecond
	secret    = "cluster-secret"
)

// member is one node of a test cluster, with its handler on loopback.
type member struct {
	id   string
	node *cluster.Node
	dev  *devices
	srv  *httptest.Server
}

func startMember(t testing.TB, w *world, dsn, id string) *member {
	t.Helper()
	m := &member{id: id, dev: &devices{w: w, node: id}}
	m.node, m.srv, _ = serveNode(t, dsn, m.dev, cluster.Config{NodeID: id})
	return m
}

// testLog is a logger that writes records of level and above to t's log.
func testLog(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

// serveNode opens and starts a node over dev, with the test's secret,
// lease and renewal period (unless cfg sets them), and serves it on loopback behind a handler
// with the node as its registry and forwarder (advertised at the server's
// URL), which logs its 5xx answers. Both stop when t ends. The halt stops
// the server answering, as the node's process dying would.
func serveNode(t testing.TB, dsn string, dev cluster.Devices, cfg cluster.Config) (*cluster.Node, *httptest.Server, *halt) {
	t.Helper()
	var h http.Handler
	stop := &halt{}
	srv := httptest.NewServer(stop.wrap(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { h.ServeHTTP(rw, r) })))
	t.Cleanup(srv.Close)
	cfg.Advertise, cfg.Secret = srv.URL, []byte(secret)
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL, cfg.Renew = testTTL, testRenew
	}
	node, err := cluster.Open(context.Background(), dsn, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	sh, err := seenhandler.New(node, seenhandler.WithNoAuth(), seenhandler.WithForwarder(node),
		seenhandler.WithLogger(testLog(t, slog.LevelWarn).With("handler", cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, sh)
	h = node.Wrap(mux, seenhandler.WriteError)
	if err := node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return node, srv, stop
}

// halt stops a handler answering, as a dead process does not answer: once
// stopped, a request is dropped unserved (its connection closed without an
// answer, so the caller sees a transport error), and Stop returns when the
// requests that came in before have been answered. It cuts none half-way,
// unlike closing the server, which can close a connection whose request
// is being read: a request then served whose answer is lost, which no
// test can tell from one that was not served.
type halt struct {
	mu      sync.RWMutex
	stopped bool
	serving sync.WaitGroup
	// impostor, once set, answers every request with a fixed 200 of its
	// own, as something else at the node's advertised URL would.
	impostor atomic.Bool
}

// wrap returns h behind the halt.
func (g *halt) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if g.impostor.Load() {
			rw.Header().Set("Content-Type", "application/json")
			io.WriteString(rw, `{"success":true,"acknowledged":true}`)
			return
		}
		g.mu.RLock()
		if g.stopped {
			g.mu.RUnlock()
			panic(http.ErrAbortHandler) // the connection closes, unanswered
		}
		g.serving.Add(1)
		g.mu.RUnlock()
		defer g.serving.Done()
		h.ServeHTTP(rw, r)
	})
}

// Stop drops every later request and waits for those being served.
func (g *halt) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.serving.Wait()
}

// settle waits until every session is connected by exactly one of the
// live members, each member holds what it connected, the placement is
// balanced (⌈S/N⌉+1) and it has stayed so for two renewal periods.
func settle(t testing.TB, w *world, live []*member, within time.Duration) map[string]string {
	t.Helper()
	deadline := time.Now().Add(within)
	var since time.Time
	for {
		owners, ok := settled(w, live)
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= 2*testRenew:
			return owners
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %v: connected %v", within, owners)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func settled(w *world, live []*member) (map[string]string, bool) {
	{
		owners := w.owners()
		ok := len(owners) == len(w.names)
		count := map[string]int{}
		for _, m := range live {
			held := m.node.Held()
			count[m.id] = len(held)
			for _, name := range held {
				ok = ok && owners[name] == m.id
			}
		}
		total := 0
		for _, c := range count {
			total += c
		}
		limit := (len(w.names)+len(live)-1)/len(live) + 1
		for _, c := range count {
			ok = ok && c <= limit
		}
		return owners, ok && total == len(w.names)
	}
}

func checkBalance(t *testing.T, owners map[string]string, nodes int) {
	t.Helper()
	per := map[string]int{}
	for _, n := range owners {
		per[n]++
	}
	limit := (len(owners)+nodes-1)/nodes + 1
	for n, c := range per {
		if c > limit {
			t.Errorf("node %s owns %d of %d sessions, more than ⌈S/N⌉+1 = %d (%v)", n, c, len(owners), limit, per)
		}
	}
}

// seen marks a message of session name seen through m's handler.
func seen(t *testing.T, m *member, name string) (int, string, http.Header) {
	t.Helper()
	body := `{"session":"` + name + `","chatId":"15551234567@c.us","messageIds":["3EB0` + strconv.Itoa(int(time.Now().UnixNano()%1e9)) + `"]}`
	resp, err := http.Post(m.srv.URL+"/api/sendSeen", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestCluster(t *testing.T) {
	dsn := pgtest.New(t)
	w := newWorld(9)
	var members []*member
	for _, id := range []string{"node-a", "node-b", "node-c"} {
		members = append(members, startMember(t, w, dsn, id))
	}
	owners := settle(t, w, members, 10*testTTL)
	checkBalance(t, owners, 3)

	// Every session answers through every node, sent by its owner.
	for _, m := range members {
		for _, name := range w.names {
			status, body, _ := seen(t, m, name)
			if status != 201 { // WAHA's path answers 201, as WAHA
				t.Fatalf("via %s, session %s: %d %s", m.id, name, status, body)
			}
		}
	}
	w.mu.Lock()
	for _, name := range w.names {
		if got := w.sent[name]; len(got) != 3 || got[0] != owners[name] || got[1] != owners[name] || got[2] != owners[name] {
			t.Errorf("session %s: receipts sent by %v, want 3 by its owner %s", name, got, owners[name])
		}
	}
	w.mu.Unlock()
	// Status names the owner, through any node.
	for _, m := range members {
		resp, err := http.Get(m.srv.URL + "/api/sessions/s00")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Name, Status, Node string }
		json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if info.Node != owners["s00"] || info.Status != "WORKING" {
			t.Errorf("status of s00 via %s: %+v, want WORKING on %s", m.id, info, owners["s00"])
		}
		resp, err = http.Get(m.srv.URL + "/api/sessions")
		if err != nil {
			t.Fatal(err)
		}
		var list []struct{ Name, Status, Node string }
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list) != 9 {
			t.Fatalf("session list via %s: %+v", m.id, list)
		}
		for _, info := range list {
			if info.Node != owners[info.Name] {
				t.Errorf("session list via %s: %s on %q, want %q", m.id, info.Name, info.Node, owners[info.Name])
			}
		}
	}

	// A forged forwarded request is refused, never served: 503 with a
	// Retry-After (a client must not take it for a permanent 403).
	req, _ := http.NewRequest("POST", members[0].srv.URL+"/api/sendSeen",
		strings.NewReader(`{"session":"s01","chatId":"15551234567@c.us","messageIds":["3EB0FF"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(cluster.HeaderNode, "node-b")
	req.Header.Set(cluster.HeaderTime, strconv.FormatInt(time.Now().UnixMilli(), 10))
	req.Header.Set(cluster.HeaderSignature, "AAAA")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("forged forwarded request: %d Retry-After %q, want 503 with a Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	w.mu.Lock()
	if len(w.overlaps) > 0 {
		t.Errorf("two nodes had a device connected at once: %v", w.overlaps)
	}
	w.mu.Unlock()

	// A clean stop hands the sessions over at once.
	leaving := members[2]
	leaving.node.Close()
	owners = settle(t, w, members[:2], 4*testTTL)
	checkBalance(t, owners, 2)
	for name, n := range owners {
		if n == leaving.id {
			t.Errorf("session %s still on the node that left", name)
		}
	}
	w.mu.Lock()
	if len(w.overlaps) > 0 {
		t.Errorf("two nodes had a device connected at once: %v", w.overlaps)
	}
	w.mu.Unlock()
}

func TestAssignBalanceAndMoves(t *testing.T) {
	// Through a real cluster is slow; the placement is deterministic, so
	// exercise it through the exported test hook.
	for _, tc := range []struct{ sessions, nodes int }{{9, 3}, {100, 3}, {1000, 7}, {10, 4}, {1, 3}} {
		names := make([]string, tc.sessions)
		for i := range names {
			names[i] = fmt.Sprintf("session-%d", i)
		}
		nodes := make([]string, tc.nodes)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("node-%d", i)
		}
		got := cluster.Assign(names, nodes)
		per := map[string]int{}
		for _, n := range got {
			per[n]++
		}
		limit := (tc.sessions + tc.nodes - 1) / tc.nodes
		for n, c := range per {
			if c > limit {
				t.Errorf("%d sessions on %d nodes: %s has %d > ⌈S/N⌉ = %d", tc.sessions, tc.nodes, n, c, limit)
			}
		}
		// A node joining moves sessions only to itself, mostly.
		more := cluster.Assign(names, append(nodes, "node-new"))
		moved, toNew := 0, 0
		for name, n := range more {
			if got[name] != n {
				moved++
				if n == "node-new" {
					toNew++
				}
			}
		}
		t.Logf("%d sessions, %d → %d nodes: %d moved, %d of them to the new node", tc.sessions, tc.nodes, tc.nodes+1, moved, toNew)
	}
}

// proxy is a TCP proxy to addr that can be cut: it then stops forwarding
// in both directions, keeping the connections open (a partition).
type proxy struct {
	ln  net.Listener
	cut atomic.Bool
}

func newProxy(t *testing.T, addr string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			pipe := func(dst, src net.Conn) {
				defer dst.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					for p.cut.Load() {
						time.Sleep(10 * time.Millisecond) // black hole: hold the bytes
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return p
}

func TestPartitionAndDeath(t *testing.T) {
	dsn := pgtest.New(t)
	w := newWorld(9)
	a := startMember(t, w, dsn, "node-a")
	b := startMember(t, w, dsn, "node-b")
	// node-c reaches Postgres through a proxy that the test cuts.
	host := dsn[strings.Index(dsn, "@")+1:]
	host = host[:strings.Index(host, "/")]
	p := newProxy(t, host)
	c := startMember(t, w, strings.Replace(dsn, "@"+host+"/", "@"+p.ln.Addr().String()+"/", 1), "node-c")
	settle(t, w, []*member{a, b, c}, 10*testTTL)
	if len(c.node.Held()) == 0 {
		t.Fatal("node-c holds nothing to lose")
	}

	// Partition: node-c cannot reach Postgres. It disconnects its devices
	// before its leases expire; the others take them, without overlap.
	p.cut.Store(true)
	start := time.Now()
	owners := settle(t, w, []*member{a, b}, 4*testTTL)
	t.Logf("partition: node-c's sessions connected elsewhere after %v", time.Since(start).Round(time.Millisecond))
	checkBalance(t, owners, 2)
	w.mu.Lock()
	if len(w.overlaps) > 0 {
		t.Errorf("two nodes had a device connected at once: %v", w.overlaps)
	}
	w.mu.Unlock()
	p.cut.Store(false)
	settle(t, w, []*member{a, b, c}, 10*testTTL) // node-c is back

	// Death: node-b stops renewing and drops its devices without a word.
	cluster.Kill(b.node)
	b.dev.dead.Store(true)
	b.dev.ReleaseAll()
	start = time.Now()
	owners = settle(t, w, []*member{a, c}, 4*testTTL)
	took := time.Since(start)
	t.Logf("death: node-b's sessions connected elsewhere after %v (lease %v, renew %v)", took.Round(time.Millisecond), testTTL, testRenew)
	// The bound: the lease's life, a placement round, a connect; with room
	// for a loaded machine.
	if bound := testTTL + 4*testRenew + 2*time.Second; took > bound {
		t.Errorf("takeover took %v, more than the bound %v", took, bound)
	}
	checkBalance(t, owners, 2)
	w.mu.Lock()
	if len(w.overlaps) > 0 {
		t.Errorf("two nodes had a device connected at once: %v", w.overlaps)
	}
	w.mu.Unlock()
}
