package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// The lease and renewal period of the wire test's nodes: longer than the
// other tests', since real clients, 64 callers and the race detector on a
// busy machine can delay a renewal past the fake devices' second, and a
// node that fences itself for that moves its sessions for nothing.
const (
	wireTTL   = 3 * time.Second
	wireRenew = 500 * time.Millisecond
)

// wireNode is a node of a cluster of real Managers whose whatsmeow
// clients log in to one fake WhatsApp server.
type wireNode struct {
	id   string
	m    *bwm.Manager
	node *cluster.Node
	srv  *httptest.Server
	halt *halt
}

func startWireNode(t *testing.T, wa *fakewa.Server, dsn, coordDSN, id string) *wireNode {
	t.Helper()
	ctx := context.Background()
	n := &wireNode{id: id}
	m, err := bwm.Open(ctx, dsn, bwm.WithDBPool(bwm.DBPool{MaxOpen: 6}),
		bwm.WithLogger(testLog(t, slog.LevelInfo).With("manager", id)),
		bwm.WithClientHook(func(_ string, c *whatsmeow.Client) {
			c.SetWebsocketHTTPClient(wa.HTTPClient())
		}))
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	t.Cleanup(func() { m.Close() })
	n.node, n.srv, n.halt = serveNode(t, coordDSN, m, cluster.Config{NodeID: id, LeaseTTL: wireTTL, Renew: wireRenew,
		Logger: testLog(t, slog.LevelWarn).With("at", id)})
	return n
}

// wireSettle waits until the fake server sees each of the devices logged
// in once, each node holds what its clients connected, and the placement
// is balanced.
func wireSettle(t *testing.T, wa *fakewa.Server, users []string, live []*wireNode, within time.Duration) map[string]string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		owners := map[string]string{}
		ok := true
		limit := (len(users)+len(live)-1)/len(live) + 1
		for _, n := range live {
			held := n.node.Held()
			ok = ok && len(held) <= limit
			for _, name := range held {
				c, _ := n.m.Client(name)
				ok = ok && c != nil && c.IsLoggedIn()
				owners[name] = n.id
			}
		}
		connected := map[string]int{}
		for _, d := range wa.ConnectedDevices() {
			connected[d.User]++
		}
		for _, u := range users {
			ok = ok && connected[u] == 1 && owners[u] != ""
			for _, n := range live { // every node knows the owner
				o, known := n.node.Owner(u)
				ok = ok && known && o == owners[u]
			}
		}
		if ok {
			return owners
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %v: held %v, connected at the fake %v", within, owners, connected)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// tWriter writes to t's log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var msgSeq atomic.Int64

// mark posts a receipt for session name through n and returns the status,
// the Retry-After and the message id.
func mark(client *http.Client, base, name string) (int, time.Duration, string, error) {
	id := fmt.Sprintf("3EB0%016X", msgSeq.Add(1))
	body := `{"session":"` + name + `","chatId":"15551234567@c.us","messageIds":["` + id + `"]}`
	resp, err := client.Post(base+"/api/sendSeen", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, 0, id, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, time.Duration(after) * time.Second, id, nil
}

// receiptIDs returns the ids of the receipts the fake server received.
func receiptIDs(wa *fakewa.Server) map[string]int {
	ids := map[string]int{}
	for _, n := range wa.Receipts() {
		for _, id := range nodeIDs(n) {
			ids[id]++
		}
	}
	return ids
}

// nodeIDs returns the message ids a <receipt> carries: its id and those of
// its list.
func nodeIDs(n waBinary.Node) []string {
	ids := []string{n.AttrGetter().OptionalString("id")}
	if list, ok := n.GetOptionalChildByTag("list"); ok {
		for _, item := range list.GetChildren() {
			ids = append(ids, item.AttrGetter().OptionalString("id"))
		}
	}
	return ids
}

// waitReceipts waits until the fake server has received a receipt for
// each of ids, and returns how many it had not yet when called. An answer
// 200 can come first: whatsmeow's MarkRead returns once the receipt is
// written to the socket, before the server has read it.
func waitReceipts(t *testing.T, wa *fakewa.Server, ids []string) (late int) {
	t.Helper()
	missing := make(map[string]bool, len(ids))
	for _, id := range ids {
		missing[id] = true
	}
	got := receiptIDs(wa)
	for id := range missing {
		if got[id] == 0 {
			late++
		}
	}
	if len(missing) == 0 {
		return 0
	}
	wa.WaitNode(t, 30*time.Second, func(n waBinary.Node) bool {
		if n.Tag == "receipt" {
			for _, id := range nodeIDs(n) {
				delete(missing, id)
			}
		}
		return len(missing) == 0
	})
	return late
}

// "Cluster test", "Abrupt death" and "Partition", on the wire: 3
// nodes with real Managers on one Postgres store of 9 devices, their
// clients logging in to the fake WhatsApp server, which replaces an older
// connection of a device as WhatsApp does and counts it.
func TestClusterWire(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of three on Postgres")
	}
	ctx := context.Background()
	wa := fakewa.Start(t)
	dsn := pgtest.New(t)
	c, err := sqlstore.New(ctx, "pgx", dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for i := range 9 {
		users = append(users, fmt.Sprintf("1555000%04d", i+1))
		fakewa.PairDeviceAs(t, c, users[i])
	}
	c.Close()

	// node-c reaches Postgres for its leases through a proxy the test cuts.
	host := dsn[strings.Index(dsn, "@")+1:]
	host = host[:strings.Index(host, "/")]
	p := newProxy(t, host)
	cutDSN := strings.Replace(dsn, "@"+host+"/", "@"+p.ln.Addr().String()+"/", 1)
	a := startWireNode(t, wa, dsn, dsn, "node-a")
	b := startWireNode(t, wa, dsn, dsn, "node-b")
	cn := startWireNode(t, wa, dsn, cutDSN, "node-c")
	nodes := []*wireNode{a, b, cn}
	owners := wireSettle(t, wa, users, nodes, 20*time.Second)
	t.Logf("placement: %v", owners)

	// Every session answers through every node; the receipt reaches the
	// fake server.
	client := &http.Client{Timeout: 10 * time.Second}
	var want []string
	for _, n := range nodes {
		for _, u := range users {
			status, _, id, err := mark(client, n.srv.URL, u)
			if err != nil || status != 201 { // WAHA's path answers 201, as WAHA
				t.Fatalf("via %s, session %s: %d %v", n.id, u, status, err)
			}
			want = append(want, id)
		}
	}
	if late := waitReceipts(t, wa, want); late > 0 {
		t.Logf("%d of %d receipts reached the fake server after their answer 200", late, len(want))
	}
	got := receiptIDs(wa)
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("message %s: %d receipts at the fake server, want 1", id, got[id])
		}
	}
	checkNoOverlap := func(when string) {
		t.Helper()
		if n, most := wa.Replaced(), wa.MaxConcurrent(types.EmptyJID); n != 0 || most > 1 {
			t.Errorf("%s: the fake server replaced %d connections and saw %d at once for a device; want 0 and 1", when, n, most)
		}
	}
	checkNoOverlap("settled")

	// Partition: node-c cannot reach Postgres; it disconnects its clients
	// before the others may connect them.
	if len(cn.node.Held()) == 0 {
		t.Fatal("node-c holds nothing")
	}
	p.cut.Store(true)
	start := time.Now()
	wireSettle(t, wa, users, []*wireNode{a, b}, 20*time.Second)
	t.Logf("partition: node-c's sessions on the others after %v", time.Since(start).Round(time.Millisecond))
	checkNoOverlap("partition")
	p.cut.Store(false)
	wireSettle(t, wa, users, nodes, 20*time.Second)

	// Abrupt death under load: 64 clients, honouring Retry-After, spread
	// over the nodes that live on. node-b dies: it stops renewing and
	// answering at once (the requests it was serving get their answers),
	// then its WhatsApp connections close, without a hand-over. Every
	// answer is a 200 whose receipt went out, or a 503 with a Retry-After
	// whose receipt did not: never a 500, never a 404.
	var (
		mu      sync.Mutex
		changed = make(chan struct{}) // closed and replaced at each answer
		ok      = map[string]bool{}   // ids answered 201 (WAHA's path)
		okSince = map[string]int{}    // 200s by session since the mark
		notOK   = map[string]int{}    // ids answered otherwise, by status
		bad     []string              // answers neither 200 nor 503 with a Retry-After
		detail  = map[string]string{}
		stop    atomic.Bool
		wg      sync.WaitGroup
		counts  = map[int]int{}
	)
	// await waits for cond, read under mu, to hold after some answer.
	await := func(what string, cond func() bool) {
		t.Helper()
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for {
			mu.Lock()
			done, next := cond(), changed
			mu.Unlock()
			if done {
				return
			}
			select {
			case <-next:
			case <-timeout.C:
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("under load: %s not within 30 s; answers %v", what, counts)
			}
		}
	}
	defer func() { stop.Store(true); wg.Wait() }()
	for i := range 64 {
		wg.Go(func() {
			targets := []*wireNode{a, cn}
			for j := 0; !stop.Load(); j++ {
				u, via := users[(i+j)%len(users)], targets[(i+j)%2]
				status, after, id, err := mark(client, via.srv.URL, u)
				mu.Lock()
				detail[id] = fmt.Sprintf("via %s session %s at %s: %d, err %v, Retry-After %v", via.id, u, time.Now().Format("05.000"), status, err, after)
				counts[status]++
				switch {
				case err == nil && status == 201:
					ok[id] = true
					okSince[u]++
				default:
					notOK[id] = status
					if err != nil || status != 503 || after <= 0 {
						bad = append(bad, detail[id])
					}
				}
				close(changed)
				changed = make(chan struct{})
				mu.Unlock()
				if status == 503 || status == 429 {
					time.Sleep(min(after, 2*time.Second)) // as a client honouring Retry-After does
				}
			}
		})
	}
	await("64 answers 200", func() bool { return len(ok) >= 64 })
	cluster.Kill(b.node)
	b.halt.Stop()
	b.m.ReleaseAll()
	start = time.Now()
	wireSettle(t, wa, users, []*wireNode{a, cn}, 20*time.Second)
	took := time.Since(start)
	// Load on the new placement: each session answers 200 again.
	mu.Lock()
	clear(okSince)
	mu.Unlock()
	await("a 200 for each session after the takeover", func() bool { return len(okSince) == len(users) })
	stop.Store(true)
	wg.Wait()
	t.Logf("death: node-b's sessions on the others after %v (lease %v, renew %v); answers %v", took.Round(time.Millisecond), wireTTL, wireRenew, counts)
	if bound := wireTTL + 4*wireRenew + 2*time.Second; took > bound {
		t.Errorf("takeover took %v, more than %v", took, bound)
	}
	for i, d := range bad {
		if i == 10 {
			t.Errorf("… and %d more", len(bad)-10)
			break
		}
		t.Errorf("an answer neither 200 nor 503 with a Retry-After: %s", d)
	}

	// Every receipt written has reached the fake server once the live
	// connections have carried one more (each connection's frames arrive
	// in order) and node-b's have ended.
	var okIDs, marks []string
	for id := range ok {
		okIDs = append(okIDs, id)
	}
	for _, u := range users {
		status, _, id, err := mark(client, a.srv.URL, u)
		if err != nil || status != 201 {
			t.Fatalf("after the load, session %s: %d %v", u, status, err)
		}
		marks = append(marks, id)
	}
	waitReceipts(t, wa, append(okIDs, marks...))
	wa.WaitConnections(t, 30*time.Second, len(users))
	got = receiptIDs(wa)
	for id := range ok {
		if got[id] != 1 {
			t.Errorf("message %s answered 200 has %d receipts at the fake server (%s)", id, got[id], detail[id])
		}
	}
	for id, status := range notOK {
		if got[id] != 0 {
			t.Errorf("message %s answered %d has a receipt at the fake server (%s)", id, status, detail[id])
		}
	}
	checkNoOverlap("death")
}
