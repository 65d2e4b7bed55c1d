package cluster_test

// The asynchronous queue in a cluster: a dead node's claimed jobs go out
// once its sessions have a new owner, and the jobs of a session whose
// device left the store fail as they do on one process.

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/sqlqueue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// shelf is a store of fake devices that can leave it (a logout), with
// which node has each connected and the message ids each node sent.
type shelf struct {
	mu    sync.Mutex
	names []string
	conn  map[string]string   // session → node connected
	down  map[string]bool     // sessions whose sends fail as not connected
	sent  map[string][]string // message id → nodes that sent it
}

func newShelf(names ...string) *shelf {
	return &shelf{names: names, conn: map[string]string{}, down: map[string]bool{}, sent: map[string][]string{}}
}

// setDown makes the sends of session name fail (or succeed again).
func (s *shelf) setDown(name string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[name] = down
}

// remove takes the device of session name out of the store.
func (s *shelf) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = slices.DeleteFunc(s.names, func(n string) bool { return n == name })
	delete(s.conn, name)
}

// sentIDs returns the ids sent, with the nodes that sent each.
func (s *shelf) sentIDs() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.sent))
	for id, nodes := range s.sent {
		out[id] = slices.Clone(nodes)
	}
	return out
}

// shelfView is one node's view of the shelf: a cluster.Devices.
type shelfView struct {
	s    *shelf
	node string
}

func (v *shelfView) Lookup(_ context.Context, name string) (session.Session, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if !slices.Contains(v.s.names, name) {
		return nil, fmt.Errorf("%w: %q", session.ErrSessionNotFound, name)
	}
	return &shelfSession{v: v, name: name}, nil
}

func (v *shelfView) Refresh(context.Context) ([]string, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return slices.Sorted(slices.Values(v.s.names)), nil
}

func (v *shelfView) Acquire(_ context.Context, names ...string) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	for _, name := range names {
		if slices.Contains(v.s.names, name) {
			v.s.conn[name] = v.node
		}
	}
	return nil
}

func (v *shelfView) Release(_ context.Context, name string) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if v.s.conn[name] == v.node {
		delete(v.s.conn, name)
	}
	if !slices.Contains(v.s.names, name) {
		return fmt.Errorf("%w: %q", session.ErrSessionNotFound, name)
	}
	return nil
}

func (v *shelfView) ReleaseAll() {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	for name, node := range v.s.conn {
		if node == v.node {
			delete(v.s.conn, name)
		}
	}
}

type shelfSession struct {
	v    *shelfView
	name string
}

func (s *shelfSession) SendReceipt(_ context.Context, r session.Receipt) (session.Result, error) {
	s.v.s.mu.Lock()
	defer s.v.s.mu.Unlock()
	if s.v.s.conn[s.name] != s.v.node || s.v.s.down[s.name] {
		return session.Result{}, session.ErrNotConnected
	}
	for _, id := range r.MessageIDs {
		s.v.s.sent[id] = append(s.v.s.sent[id], s.v.node)
	}
	return session.Result{}, nil
}

func (s *shelfSession) Status(context.Context) session.Status {
	s.v.s.mu.Lock()
	defer s.v.s.mu.Unlock()
	up := s.v.s.conn[s.name] == s.v.node && !s.v.s.down[s.name]
	return session.Status{Connected: up, LoggedIn: up, Paired: true}
}

// queueNode is a node of a test cluster with an asynchronous handler on
// the cluster's database (sqlqueue, named as the node), whose worker sends
// the jobs of the sessions the node serves (queue.Options.Local).
type queueNode struct {
	node *cluster.Node
	h    *seenhandler.Handler
	w    *queue.Worker
	db   *sql.DB
}

func startQueueNode(t *testing.T, dsn string, s *shelf, id string, o queue.Options) *queueNode {
	t.Helper()
	ctx := context.Background()
	node, err := cluster.Open(ctx, dsn, &shelfView{s: s, node: id}, cluster.Config{NodeID: id, LeaseTTL: testTTL, Renew: testRenew})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := sqlqueue.New(ctx, db, sqlqueue.Postgres, sqlqueue.Options{Node: id})
	if err != nil {
		t.Fatal(err)
	}
	o.Queue, o.Local = q, node.Local
	o.Logger = testLog(t, 0).With("worker", id)
	w, err := queue.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(node, seenhandler.WithNoAuth(), seenhandler.WithLater(w), seenhandler.WithAsyncByDefault(),
		seenhandler.WithLogger(testLog(t, 0).With("handler", id)))
	if err != nil {
		t.Fatal(err)
	}
	w.Start(h)
	t.Cleanup(func() { // before the node closes, and whether or not it has died
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		_ = w.Shutdown(ctx)
	})
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &queueNode{node: node, h: h, w: w, db: db}
}

// queue asks n's handler to mark message id of session name read,
// asynchronously; it must be accepted.
func (n *queueNode) queue(t *testing.T, name, id string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA,
		strings.NewReader(`{"session":"`+name+`","chatId":"15551234567","messageIds":["`+id+`"]}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	n.h.ServeHTTP(w, r)
	if w.Code != http.StatusCreated { // WAHA's path, queued
		t.Fatalf("queueing %s: %d %s", id, w.Code, w.Body)
	}
}

// waitFor polls cond every 20 ms until it holds, or fails t after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// A node holds queued jobs of its session claimed, waiting their turn, and
// dies (kill -9: no renewal, no release): once the survivor holds the
// session, it sends them — the queue's five-minute claims do not outlive
// the session's lease.
func TestDeadNodeClaims(t *testing.T) {
	dsn := pgtest.New(t)
	s := newShelf("s00")
	ids := []string{"node-x", "node-y"}
	if cluster.Assign([]string{"s00"}, ids)["s00"] != ids[0] {
		ids[0], ids[1] = ids[1], ids[0] // s00 stays the dying node's when both live
	}
	// The dying node sends one job, then waits an hour before the next:
	// the rest of its session's lane stays claimed.
	dying := startQueueNode(t, dsn, s, ids[0], queue.Options{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Pace: time.Hour})
	waitFor(t, 10*testTTL, "the first node holds s00", func() bool { return dying.node.Local("s00") })
	const n = 10
	for i := range n {
		dying.queue(t, "s00", fmt.Sprint("M", i))
	}
	waitFor(t, 10*testTTL, "a job sent", func() bool { return len(s.sentIDs()) == 1 })
	var claimed int
	waitFor(t, 10*testTTL, "the first node's lane claimed", func() bool {
		err := dying.db.QueryRow(`SELECT COUNT(*) FROM bluetick_queue WHERE claimed_by = $1`, ids[0]).Scan(&claimed)
		return err == nil && claimed > 0
	})
	if n := len(s.sentIDs()); n != 1 {
		t.Fatalf("%d jobs sent before the kill, want 1 (the next wait an hour)", n)
	}

	survivor := startQueueNode(t, dsn, s, ids[1], queue.Options{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Pace: time.Millisecond})
	cluster.Kill(dying.node)
	killed := time.Now()
	took := waitFor(t, 10*testTTL, "the survivor holds s00", func() bool { return survivor.node.Local("s00") })
	waitFor(t, 10*testTTL, "every receipt sent", func() bool { return len(s.sentIDs()) == n })
	t.Logf("the dead node held %d claims; the survivor held s00 %v after the kill, and had sent every receipt %v after it",
		claimed, took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	for id, by := range s.sentIDs() {
		if len(by) != 1 {
			t.Errorf("%s sent by %v, want once", id, by)
		}
	}
}

// Receipts queued for a session that is down, whose device then leaves the
// store (a logout): no node will ever own it, and one node fails them at
// once as session_not_found, as a single process does; the receipts of a
// session still in the store are not touched.
func TestOrphanedJobs(t *testing.T) {
	dsn := pgtest.New(t)
	s := newShelf("s00", "s01")
	s.setDown("s00", true)
	s.setDown("s01", true)
	o := queue.Options{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Pace: time.Millisecond}
	nodes := []*queueNode{startQueueNode(t, dsn, s, "node-x", o), startQueueNode(t, dsn, s, "node-y", o)}
	waitFor(t, 10*testTTL, "both sessions placed", func() bool {
		return (nodes[0].node.Local("s00") || nodes[1].node.Local("s00")) && (nodes[0].node.Local("s01") || nodes[1].node.Local("s01"))
	})
	nodes[0].queue(t, "s00", "GONE1")
	nodes[1].queue(t, "s01", "KEPT1")
	stats := func(name string) queue.SessionStats {
		all, err := nodes[0].w.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range all {
			if st.Session == name {
				return st
			}
		}
		return queue.SessionStats{}
	}
	// Both wait for their sessions, retried every few seconds.
	waitFor(t, 10*testTTL, "a first attempt", func() bool {
		var n int
		_ = nodes[0].db.QueryRow(`SELECT COUNT(*) FROM bluetick_queue WHERE attempts > 0`).Scan(&n)
		return n == 2
	})
	s.remove("s00")
	left := time.Now()
	took := waitFor(t, 60*time.Second, "s00's receipt failed", func() bool { return stats("s00").Failed == 1 })
	t.Logf("s00's queued receipt failed %v after its device left the store", took.Round(time.Millisecond))
	if st := stats("s00"); st.Pending != 0 || st.Sent != 0 {
		t.Errorf("s00: %+v, want 1 failed only", st)
	}
	var reason string
	if err := nodes[0].db.QueryRow(`SELECT reason FROM bluetick_queue_failure WHERE session = 's00'`).Scan(&reason); err != nil || reason != string(seenhandler.CodeSessionNotFound) {
		t.Errorf("failure recorded as %q (%v), want %s", reason, err, seenhandler.CodeSessionNotFound)
	}
	// s01 is still in the store: its receipt waits for it, then goes out.
	if st := stats("s01"); st.Pending != 1 || st.Failed != 0 {
		t.Errorf("s01 %v after s00 left: %+v, want its receipt pending", time.Since(left), st)
	}
	s.setDown("s01", false)
	waitFor(t, 60*time.Second, "s01's receipt sent", func() bool { return stats("s01").Sent == 1 })
}
