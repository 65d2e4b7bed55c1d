package cluster_test

import (
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// full is a member's devices with room for no session: its sessions stay
// unplaced, nobody's.
type full struct{ *devices }

func (full) Capacity() int { return 0 }

// scans closes node and returns how many scans the cluster's tables of the
// database at dsn have had, once every other client has left it (a
// backend writes its statistics as it exits).
func scans(t *testing.T, node *cluster.Node, dsn string) int64 {
	t.Helper()
	node.Close()
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
			t.Fatalf("%d clients still on the database 30 s after the node closed", others)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int64
	if err := db.QueryRow(`SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables
WHERE relname IN ('bluetick_lease', 'bluetick_node')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Requests for a session nobody serves ask the lease table once a renewal
// period, not once each: the answer "nobody" is remembered.
func TestOwnerlessSessionCostsOneQueryAPeriod(t *testing.T) {
	dsn := pgtest.New(t)
	w := newWorld(1)
	node, srv, _ := serveNode(t, dsn, full{&devices{w: w, node: "node-a"}}, cluster.Config{NodeID: "node-a"})
	const requests = 300
	start := time.Now()
	for range requests {
		resp, err := http.Get(srv.URL + "/api/sessions/s00")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status of an ownerless session: %d", resp.StatusCode)
		}
	}
	took := time.Since(start)
	if owner, ok := node.Owner("s00"); ok {
		t.Fatalf("s00 is served by %s; the test needs it ownerless", owner)
	}
	n := scans(t, node, dsn)
	t.Logf("%d requests for an ownerless session in %v: %d scans of the cluster's tables in all", requests, took.Round(time.Millisecond), n)
	if n >= requests/2 {
		t.Errorf("%d scans for %d requests: a query per request", n, requests)
	}
}
