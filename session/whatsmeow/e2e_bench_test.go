package whatsmeow_test

// The end-to-end benchmark: HTTP on 127.0.0.1 → a gateway →
// real whatsmeow clients → the fake WhatsApp server (internal/fakewa) on
// 127.0.0.1, which counts the receipts it gets. Subjects, in one run:
//
//   - Bluetick: seenhandler.New over a Manager (SQLite file store), library
//     defaults and a static token;
//   - BluetickNoChatRead: the same with WithMarkChatRead(false);
//   - BluetickGroupCommit: the defaults behind session.Decorate with
//     coalescing (CoalesceOptions{}: group commit);
//   - BluetickPostgres: the defaults on a PostgreSQL store, when
//     $BLUETICK_TEST_POSTGRES is set;
//   - Bare: bareGateway, ~30 lines of net/http calling MarkRead on clients
//     of its own store.
//
// Each is measured with one session and with many (-e2e.sessions, 100 by
// default), 32 HTTP clients at once (-e2e.clients), each request marking one
// new message of the client's own direct chat (-e2e.chats: of one of that
// many chats); a request goes to session (request number mod sessions). Metrics: req/s, CPU µs per request (the
// process's user+system time from getrusage: the fake server and the HTTP
// clients are in it too, the same for every subject), p50/p99 latency,
// receipt ids and frames seen on the wire per request, app-state patches per
// request. Every 2xx must be matched by its message id on the wire:
//
//	go test -run '^$' -bench EndToEnd -benchtime 5s ./session/whatsmeow/
//	go test -run '^$' -bench EndToEnd -e2e.sessions=1000 -e2e.subjects='^(Bluetick|Bare)$' ./session/whatsmeow/
//	go test -run '^$' -bench EndToEnd -e2e.chats=1 ./session/whatsmeow/   # every client in one chat
//
// TestEndToEnd runs the same path briefly as a test.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
	e2eOnly     = flag.String("e2e.subjects", "", "a regular expression: only the subjects whose names it matches are started (setting up 1,000 sessions takes minutes per subject)")
	e2eChats    = flag.Int("e2e.chats", 0, "direct chats BenchmarkEndToEnd's clients share (client g marks chat g mod chats); 0: one per client")
)

const e2eToken = "e2e-token-0123456789abcdef"

// e2eSubject is a gateway under test.
type e2eSubject struct {
	name    string
	srv     *fakewa.Server      // the fake its clients talk to
	url     string              // the gateway's POST endpoint
	clients []*whatsmeow.Client // the whatsmeow clients behind it
	names   []string            // its session names, in the order requests cycle through
	close   func()              // stops it
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
	deadline := time.After(fakewa.ConnectTimeout + time.Duration(n)*100*time.Millisecond)
	for c.n.Load() < int64(n) {
		select {
		case <-c.more:
		case <-deadline:
			tb.Fatalf("%d of %d clients logged in", c.n.Load(), n)
		}
	}
}

// newBluetick serves seenhandler over a Manager of sessions sessions whose
// clients dial srv.
func newBluetick(tb testing.TB, srv *fakewa.Server, name string, sessions int, o e2eOptions) *e2eSubject {
	tb.Helper()
	path, names := e2eStore(tb, sessions)
	return newBluetickOn(tb, srv, name, path, names, o)
}

// e2eOptions are a Bluetick subject's options beside the defaults.
type e2eOptions struct {
	session  []bwm.Option             // of every session
	coalesce *session.CoalesceOptions // the handler's registry is session.Decorate'd with them
}

// newBluetickOn is newBluetick on the store at path (a SQLite file or a
// postgres:// DSN) holding the sessions
// names.
func newBluetickOn(tb testing.TB, srv *fakewa.Server, name, path string, names []string, o e2eOptions) *e2eSubject {
	tb.Helper()
	ctx := context.Background()
	sessions := len(names)
	var (
		mu      sync.Mutex
		clients []*whatsmeow.Client
		conn    = newConnectedCounter()
	)
	hook := bwm.WithClientHook(func(_ string, cli *whatsmeow.Client) {
		cli.SetWebsocketHTTPClient(srv.HTTPClient())
		cli.EnableAutoReconnect = false
		cli.AddEventHandler(conn.handler)
		mu.Lock()
		clients = append(clients, cli)
		mu.Unlock()
	})
	m, err := bwm.Open(ctx, path, append([]bwm.Option{hook}, o.session...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	conn.wait(tb, sessions)
	auth, err := seenhandler.NewStaticAuth(map[string][]string{e2eToken: {seenhandler.AllSessions}})
	if err != nil {
		tb.Fatal(err)
	}
	var reg session.Registry = m
	closeReg := func() {}
	if o.coalesce != nil {
		d := session.Decorate(m, session.DecorateOptions{Coalesce: o.coalesce})
		reg, closeReg = d, func() { _ = d.Close(context.Background()) }
	}
	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth))
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(h)
	return &e2eSubject{name: name, srv: srv, url: hs.URL + seenhandler.PathWAHA, clients: clients, names: names,
		close: func() { hs.Close(); closeReg(); _ = m.Close() }}
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

// newBare serves bareGateway over sessions clients of their own store.
func newBare(tb testing.TB, srv *fakewa.Server, sessions int) *e2eSubject {
	tb.Helper()
	ctx := context.Background()
	path, names := e2eStore(tb, sessions)
	c, err := sqlstore.New(ctx, "sqlite", "file:"+path+"?_pragma=foreign_keys(1)", nil)
	if err != nil {
		tb.Fatal(err)
	}
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	byName := make(map[string]*whatsmeow.Client, len(devices))
	var clients []*whatsmeow.Client
	conn := newConnectedCounter()
	for _, dev := range devices {
		cli := whatsmeow.NewClient(dev, waLog.Noop) // as the Manager's discard their logs
		cli.EnableAutoReconnect = false
		cli.SetWebsocketHTTPClient(srv.HTTPClient())
		cli.AddEventHandler(conn.handler)
		if err := cli.Connect(); err != nil {
			tb.Fatal(err)
		}
		byName[dev.ID.User] = cli
		clients = append(clients, cli)
	}
	conn.wait(tb, sessions)
	hs := httptest.NewServer(bareGateway(byName))
	return &e2eSubject{name: "Bare", srv: srv, url: hs.URL + seenhandler.PathWAHA, clients: clients, names: names,
		close: func() {
			hs.Close()
			for _, cli := range clients {
				cli.Disconnect()
			}
			_ = c.Close()
		}}
}

// e2eResult is what one run measured.
type e2eResult struct {
	requests, ok2xx int64
	elapsed         time.Duration
	cpu             time.Duration
	wire            fakewa.Counts // received during the run
	latencies       []time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// e2eSeq makes message ids unique across the whole test binary.
var e2eSeq atomic.Int64

// drive sends requests with clients concurrent HTTP clients while next
// says so, each request marking one new message of a direct chat — client
// g's chat is number g mod chats — and waits until every receipt sent has
// reached the server.
func drive(tb testing.TB, s *e2eSubject, clients, chats int, next func() bool) e2eResult {
	tb.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	var (
		res     e2eResult
		failed  atomic.Int64
		lastErr atomic.Value
		wg      sync.WaitGroup
		mu      sync.Mutex
	)
	srv := s.srv
	before, cpu0, t0 := srv.Counts(), cpuTime(), time.Now()
	var req atomic.Int64
	for g := range clients {
		chat := fmt.Sprintf("1555200%04d@s.whatsapp.net", g%chats)
		wg.Go(func() {
			var lat []time.Duration
			for next() {
				n := req.Add(1)
				session := s.names[int(n)%len(s.names)]
				body := `{"session":"` + session + `","chatId":"` + chat + `","messageIds":["3EB0E2E` + strconv.FormatInt(e2eSeq.Add(1), 16) + `"]}`
				r, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+e2eToken)
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
	res.elapsed, res.cpu = time.Since(t0), cpuTime()-cpu0
	res.requests = req.Load()
	res.ok2xx = res.requests - failed.Load()
	if f := failed.Load(); f > 0 {
		tb.Errorf("%s: %d of %d requests failed, the last: %v", s.name, f, res.requests, lastErr.Load())
	}
	// MarkRead returns once the frame is written: a round trip on each
	// connection makes sure the server has read every receipt.
	ctx, cancel := context.WithTimeout(context.Background(), wireWait)
	defer cancel()
	for _, cli := range s.clients {
		if _, err := cli.TryFetchPrivacySettings(ctx, true); err != nil {
			tb.Errorf("%s: barrier round trip: %v", s.name, err)
		}
	}
	after := srv.Counts()
	res.wire = fakewa.Counts{Receipts: after.Receipts - before.Receipts, ReceiptIDs: after.ReceiptIDs - before.ReceiptIDs,
		AppStatePatches: after.AppStatePatches - before.AppStatePatches}
	if res.wire.ReceiptIDs != res.ok2xx {
		tb.Errorf("%s: %d 2xx answers but %d message ids seen on the wire", s.name, res.ok2xx, res.wire.ReceiptIDs)
	}
	return res
}

func (r e2eResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
}

// e2eSubjects starts the subjects over sessions sessions each, each with
// a fake server of its own (so that one's background work is not counted
// as another's).
func e2eSubjects(tb testing.TB, sessions int) []*e2eSubject {
	tb.Helper()
	only, err := regexp.Compile(*e2eOnly)
	if err != nil {
		tb.Fatalf("-e2e.subjects: %v", err)
	}
	type starter struct {
		name  string
		start func(srv *fakewa.Server, name string) *e2eSubject
	}
	bluetick := func(o e2eOptions) func(*fakewa.Server, string) *e2eSubject {
		return func(srv *fakewa.Server, name string) *e2eSubject { return newBluetick(tb, srv, name, sessions, o) }
	}
	starters := []starter{
		{"Bluetick", bluetick(e2eOptions{})},
		{"BluetickNoChatRead", bluetick(e2eOptions{session: []bwm.Option{bwm.WithMarkChatRead(false)}})},
		{"BluetickGroupCommit", bluetick(e2eOptions{coalesce: &session.CoalesceOptions{}})},
		{"Bare", func(srv *fakewa.Server, _ string) *e2eSubject { return newBare(tb, srv, sessions) }},
	}
	if os.Getenv(pgtest.Env) != "" { // the default options on a Postgres store
		starters = append(starters, starter{"BluetickPostgres", func(srv *fakewa.Server, name string) *e2eSubject {
			dsn, names := e2ePostgresStore(tb, sessions)
			return newBluetickOn(tb, srv, name, dsn, names, e2eOptions{})
		}})
	}
	var subjects []*e2eSubject
	for _, st := range starters {
		if only.MatchString(st.name) {
			s := st.start(fakewa.Start(tb, fakewa.WithCountOnly()), st.name)
			// Registered after its fake server's cleanup, so run before it: the
			// clients disconnect before the server drops them (whatsmeow's
			// Disconnect racing its own read pump's close is a data race
			// inside whatsmeow that -race reports).
			tb.Cleanup(s.close)
			subjects = append(subjects, s)
		}
	}
	return subjects
}

// BenchmarkEndToEnd runs the end-to-end benchmark the comment at the top of
// this file describes: every subject with one session and with
// -e2e.sessions. The ratio that matters is Bluetick's req/s over Bare's:
// last measured 0.83× on one session (12,957 against 15,582 req/s) and
// 0.80× on 100; examples/BENCHMARKS.md has the whole table, group commit's
// runs and the comparison with other gateways.
func BenchmarkEndToEnd(b *testing.B) {
	for _, sessions := range []int{1, *e2eSessions} {
		subjects := e2eSubjects(b, sessions)
		for _, s := range subjects {
			b.Run(fmt.Sprintf("sessions=%d/%s", sessions, s.name), func(b *testing.B) {
				left := int64(b.N)
				var mu sync.Mutex
				b.ResetTimer()
				chats := *e2eChats
				if chats <= 0 {
					chats = *e2eClients
				}
				res := drive(b, s, *e2eClients, chats, func() bool {
					mu.Lock()
					defer mu.Unlock()
					left--
					return left >= 0
				})
				b.StopTimer()
				n := float64(res.requests)
				b.ReportMetric(n/res.elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(res.cpu.Microseconds())/n, "cpu-µs/req")
				b.ReportMetric(float64(res.percentile(0.50).Microseconds()), "p50-µs")
				b.ReportMetric(float64(res.percentile(0.99).Microseconds()), "p99-µs")
				b.ReportMetric(float64(res.wire.ReceiptIDs)/n, "wire-ids/req")
				b.ReportMetric(float64(res.wire.Receipts)/n, "frames/req")
				b.ReportMetric(float64(res.wire.AppStatePatches)/n, "patches/req")
			})
		}
	}
}

// TestEndToEnd runs the benchmark's path briefly: every subject, one and
// a few sessions, each 2xx matched by its receipt on the wire.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("connects many clients")
	}
	for _, sessions := range []int{1, 4} {
		for _, s := range e2eSubjects(t, sessions) {
			t.Run(fmt.Sprintf("sessions=%d/%s", sessions, s.name), func(t *testing.T) {
				var left atomic.Int64
				left.Store(200)
				res := drive(t, s, 8, 8, func() bool { return left.Add(-1) >= 0 })
				if res.requests != 200 {
					t.Errorf("%d requests, want 200", res.requests)
				}
			})
		}
	}
}
