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
	"github.com/bluetick/bluetick/seenhandler/sqlqueue"
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
	sent  map[string][]string // message id → nodes that sent it
}

func newShelf(names ...string) *shelf {
	return &shelf{names: names, conn: map[string]string{}, sent: map[string][]string{}}
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
	if s.v.s.conn[s.name] != s.v.node {
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
	up := s.v.s.conn[s.name] == s.v.node
	return session.Status{Connected: up, LoggedIn: up, Paired: true}
}

// queueNode is a node of a test cluster with an asynchronous handler on
// the cluster's database (sqlqueue, named as the node), whose worker sends
// the jobs of the sessions the node serves (AsyncOptions.Local).
type queueNode struct {
	node *cluster.Node
	h    *seenhandler.Handler
	db   *sql.DB
}

func startQueueNode(t *testing.T, dsn string, s *shelf, id string, o seenhandler.AsyncOptions) *queueNode {
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
	o.Default, o.Queue, o.Local = true, q, node.Local
	h, err := seenhandler.New(node, seenhandler.WithNoAuth(), seenhandler.WithAsync(o),
		seenhandler.WithLogger(testLog(t, 0).With("handler", id)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the node closes, and whether or not it has died
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = h.Shutdown(ctx)
	})
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &queueNode{node: node, h: h, db: db}
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
	if w.Code != http.StatusAccepted {
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
	dying := startQueueNode(t, dsn, s, ids[0], seenhandler.AsyncOptions{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Pace: time.Hour})
	waitFor(t, 10*testTTL, "the first node holds s00", func() bool { return dying.node.Local("s00") })
	const n = 10
	for i := range n {
		dying.queue(t, "s00", fmt.Sprint("M", i))
	}
	waitFor(t, 10*testTTL, "a job sent", func() bool { return len(s.sentIDs()) == 1 })
	var claimed int
	if err := dying.db.QueryRow(`SELECT COUNT(*) FROM bluetick_queue WHERE claimed_by = $1`, ids[0]).Scan(&claimed); err != nil || claimed == 0 {
		t.Fatalf("the first node holds %d claims (%v), want its lane's", claimed, err)
	}

	survivor := startQueueNode(t, dsn, s, ids[1], seenhandler.AsyncOptions{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Pace: time.Millisecond})
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
