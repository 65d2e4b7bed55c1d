package cluster_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// connectedBy returns the sessions node has connected in w, sorted.
func connectedBy(w *world, node string) []string {
	var out []string
	for name, by := range w.owners() {
		if by == node {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// leases counts the lease rows of node, and whether name's is among them.
func leases(t *testing.T, db *sql.DB, node, name string) (int, bool) {
	t.Helper()
	var n int
	var has bool
	err := db.QueryRow(`SELECT count(*), coalesce(bool_or(name = $2), false) FROM bluetick_lease WHERE node = $1`, node, name).Scan(&n, &has)
	if err != nil {
		t.Fatal(err)
	}
	return n, has
}

func openPG(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Close hands the sessions over concurrently, and what it cannot release
// in time it still disconnects, before the leases may expire, and frees
// their leases only after: never a connected client without its lease.
func TestCloseHandsOver(t *testing.T) {
	t.Run("concurrently", func(t *testing.T) {
		// Each Release returns only once every Release has begun: one at a
		// time, the first would wait for good.
		dsn := pgtest.New(t)
		w := newWorld(4)
		var begun sync.WaitGroup
		begun.Add(len(w.names))
		all := make(chan struct{})
		go func() { begun.Wait(); close(all) }()
		var closing atomic.Bool
		h := &hooked{devices: &devices{w: w, node: "node-a"}, release: func(ctx context.Context, name string) error {
			if !closing.Load() {
				return nil
			}
			begun.Done()
			select {
			case <-all:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		a := startHooked(t, w, dsn, "node-a", h)
		closing.Store(true)
		if err := a.node.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := connectedBy(w, "node-a"); len(left) > 0 {
			t.Errorf("sessions still connected by the closed node: %v", left)
		}
		if n, _ := leases(t, openPG(t, dsn), "node-a", ""); n != 0 {
			t.Errorf("the closed node left %d leases, want them freed for the others to take at once", n)
		}
	})
	t.Run("a hand-over under way", func(t *testing.T) {
		// node-a is handing a session to node-b when it closes: the
		// placement's Release, cancelled by Close, gives the session back,
		// and Close lets it go with the others.
		dsn := pgtest.New(t)
		w := newWorld(2)
		var calls atomic.Int32
		entered := make(chan string, 1)
		h := &hooked{devices: &devices{w: w, node: "node-a"}, release: func(ctx context.Context, name string) error {
			if calls.Add(1) > 1 {
				return nil
			}
			entered <- name
			<-ctx.Done()
			return ctx.Err()
		}}
		a := startHooked(t, w, dsn, "node-a", h)
		startMember(t, w, dsn, "node-b") // the placement moves a session to node-b
		select {
		case <-entered:
		case <-time.After(10 * testTTL):
			t.Fatal("node-a handed nothing over to node-b")
		}
		if err := a.node.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := connectedBy(w, "node-a"); len(left) > 0 {
			t.Errorf("sessions still connected by the closed node: %v", left)
		}
	})
	t.Run("stuck", func(t *testing.T) {
		// s00's Release never gets through (an Acquire of it holds it): it
		// is disconnected with every session, its lease freed after.
		dsn := pgtest.New(t)
		db := openPG(t, dsn)
		w := newWorld(3)
		var (
			closing, leasedAtFence atomic.Bool
			fences                 atomic.Int32
		)
		h := &hooked{devices: &devices{w: w, node: "node-a"},
			release: func(ctx context.Context, name string) error {
				if !closing.Load() || name != "s00" {
					return nil
				}
				<-ctx.Done()
				return ctx.Err()
			},
			releaseAll: func() {
				if closing.Load() && fences.Add(1) == 1 {
					var n int
					err := db.QueryRow(`SELECT count(*) FROM bluetick_lease WHERE node = 'node-a' AND name = 's00'`).Scan(&n)
					leasedAtFence.Store(err == nil && n == 1)
				}
			}}
		a := startHooked(t, w, dsn, "node-a", h)
		closing.Store(true)
		if err := a.node.Close(); err == nil || !strings.Contains(err.Error(), `"s00"`) {
			t.Errorf("Close = %v, want the failed release of s00", err)
		}
		if left := connectedBy(w, "node-a"); len(left) > 0 {
			t.Errorf("sessions still connected by the closed node: %v", left)
		}
		if !leasedAtFence.Load() {
			t.Error("s00 was not disconnected while its lease was still there")
		}
		if n, _ := leases(t, db, "node-a", ""); n != 0 {
			t.Errorf("the closed node left %d leases", n)
		}
	})
}
