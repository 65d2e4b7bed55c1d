package cluster

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/bluetick/bluetick/session"
)

// The cluster's tables, in the store's database. A node row is the node's
// heartbeat, with a proof of the cluster secret; a lease row says which
// node serves a session, until when, and with which epoch (bumped by every
// new owner, so that a node that lost a lease cannot renew or free its
// successor's); the one row of bluetick_cluster is the proof of the
// secret that the first node recorded, which every later node must match.
const schema = `
CREATE TABLE IF NOT EXISTS bluetick_node (
	id          TEXT PRIMARY KEY,
	incarnation TEXT NOT NULL,
	url         TEXT NOT NULL,
	capacity    INTEGER NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS bluetick_lease (
	name       TEXT PRIMARY KEY,
	node       TEXT NOT NULL,
	epoch      BIGINT NOT NULL,
	status     TEXT NOT NULL DEFAULT '',
	expires_at TIMESTAMPTZ NOT NULL
);
ALTER TABLE bluetick_node ADD COLUMN IF NOT EXISTS proof TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS bluetick_cluster (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	salt  TEXT NOT NULL,
	proof TEXT NOT NULL
);`

// createSchema creates the tables, one node at a time (concurrent CREATE
// TABLE IF NOT EXISTS can fail in PostgreSQL).
func createSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cluster: create tables: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('bluetick_cluster_schema'))`); err != nil {
		return fmt.Errorf("cluster: create tables: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("cluster: create tables: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cluster: create tables: %w", err)
	}
	return nil
}

// seconds is d as a float of seconds, for make_interval.
func seconds(d time.Duration) float64 { return d.Seconds() }

// heartbeat writes the node's row; false if another live incarnation
// holds the id.
func (n *Node) heartbeat(ctx context.Context) (bool, error) {
	c := capacity(n.dev)
	res, err := n.db.ExecContext(ctx, `
INSERT INTO bluetick_node (id, incarnation, url, capacity, expires_at, proof)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6)
ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation, url = excluded.url,
	capacity = excluded.capacity, expires_at = excluded.expires_at, proof = excluded.proof
WHERE bluetick_node.incarnation = excluded.incarnation OR bluetick_node.expires_at < now()`,
		n.cfg.NodeID, n.incarnation, n.cfg.Advertise, c, seconds(n.cfg.LeaseTTL),
		n.nodeProof(n.cfg.NodeID, n.incarnation, n.cfg.Advertise, c))
	if err != nil {
		return false, err
	}
	rows, err := res.RowsAffected()
	return rows == 1, err
}

// renew heartbeats and renews every lease held, in one statement, and
// publishes each session's status with its lease. It returns the names
// renewed, and whether the heartbeat was written.
func (n *Node) renew(ctx context.Context, held map[string]int64) (bool, map[string]bool, error) {
	names := make([]string, 0, len(held))
	epochs := make([]int64, 0, len(held))
	statuses := make([]string, 0, len(held))
	for name, epoch := range held {
		names = append(names, name)
		epochs = append(epochs, epoch)
		statuses = append(statuses, n.publishedStatus(ctx, name))
	}
	c := capacity(n.dev)
	rows, err := n.db.QueryContext(ctx, `
WITH hb AS (
	INSERT INTO bluetick_node (id, incarnation, url, capacity, expires_at, proof)
	VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $9)
	ON CONFLICT (id) DO UPDATE SET url = excluded.url, capacity = excluded.capacity, expires_at = excluded.expires_at,
		proof = excluded.proof
	WHERE bluetick_node.incarnation = excluded.incarnation
	RETURNING id
), renewed AS (
	UPDATE bluetick_lease l SET expires_at = now() + make_interval(secs => $5), status = s.status
	FROM unnest($6::text[], $7::bigint[], $8::text[]) AS s(name, epoch, status)
	WHERE l.name = s.name AND l.node = $1 AND l.epoch = s.epoch AND EXISTS (SELECT 1 FROM hb)
	RETURNING l.name
)
SELECT h.n, r.name FROM (SELECT count(*) AS n FROM hb) h LEFT JOIN renewed r ON true`,
		n.cfg.NodeID, n.incarnation, n.cfg.Advertise, c, seconds(n.cfg.LeaseTTL),
		names, epochs, statuses, n.nodeProof(n.cfg.NodeID, n.incarnation, n.cfg.Advertise, c))
	if err != nil {
		return false, nil, err
	}
	defer rows.Close()
	var beat bool
	got := make(map[string]bool, len(held))
	for rows.Next() {
		var count int
		var name sql.NullString
		if err := rows.Scan(&count, &name); err != nil {
			return false, nil, err
		}
		beat = count == 1
		if name.Valid {
			got[name.String] = true
		}
	}
	return beat, got, rows.Err()
}

// wireStatus is a session's status as its owner publishes it in its lease,
// for the other nodes' status answers.
type wireStatus struct {
	Connected bool   `json:"c,omitempty"`
	LoggedIn  bool   `json:"l,omitempty"`
	Paired    bool   `json:"p,omitempty"`
	JID       string `json:"j,omitempty"`
}

func (n *Node) publishedStatus(ctx context.Context, name string) string {
	s, err := n.dev.Lookup(ctx, name)
	if err != nil {
		return ""
	}
	r, ok := session.As[session.StatusReporter](s)
	if !ok {
		return ""
	}
	st := r.Status(ctx)
	b, _ := json.Marshal(wireStatus{Connected: st.Connected, LoggedIn: st.LoggedIn, Paired: st.Paired, JID: st.JID})
	return string(b)
}

// claim takes the leases of names that are free (never taken, expired, or
// this node's own), and returns those it got with their epochs.
func (n *Node) claim(ctx context.Context, names []string) (map[string]int64, error) {
	rows, err := n.db.QueryContext(ctx, `
INSERT INTO bluetick_lease (name, node, epoch, status, expires_at)
SELECT s.name, $2, 1, '', now() + make_interval(secs => $3) FROM unnest($1::text[]) AS s(name)
ON CONFLICT (name) DO UPDATE SET node = excluded.node, epoch = bluetick_lease.epoch + 1,
	status = '', expires_at = excluded.expires_at
WHERE bluetick_lease.expires_at < now() OR bluetick_lease.node = excluded.node
RETURNING name, epoch`, names, n.cfg.NodeID, seconds(n.cfg.LeaseTTL))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := make(map[string]int64)
	for rows.Next() {
		var name string
		var epoch int64
		if err := rows.Scan(&name, &epoch); err != nil {
			return nil, err
		}
		got[name] = epoch
	}
	return got, rows.Err()
}

// free deletes the lease of name if it is still this node's at epoch.
func (n *Node) free(ctx context.Context, name string, epoch int64) error {
	_, err := n.db.ExecContext(ctx, `DELETE FROM bluetick_lease WHERE name = $1 AND node = $2 AND epoch = $3`,
		name, n.cfg.NodeID, epoch)
	if err != nil {
		return fmt.Errorf("free the lease of %q: %w", name, err)
	}
	return nil
}

// snapshot reads the live nodes and the leases, and refreshes the store's
// session names.
func (n *Node) snapshot(ctx context.Context) (view, error) {
	v := view{at: time.Now(), nodes: make(map[string]nodeRow), leases: make(map[string]leaseRow)}
	names, err := n.dev.Refresh(ctx)
	if err != nil {
		return v, fmt.Errorf("refresh the sessions: %w", err)
	}
	v.all = names
	for _, name := range names {
		if n.paired(ctx, name) {
			v.names = append(v.names, name)
		}
	}
	rows, err := n.db.QueryContext(ctx, `SELECT id, incarnation, url, capacity, proof FROM bluetick_node WHERE expires_at > now()`)
	if err != nil {
		return v, err
	}
	for rows.Next() {
		var r nodeRow
		var incarnation, proof string
		if err := rows.Scan(&r.id, &incarnation, &r.url, &r.capacity, &proof); err != nil {
			rows.Close()
			return v, err
		}
		if n.trusted(r.id, incarnation, r.url, r.capacity, proof) {
			v.nodes[r.id] = r
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return v, err
	}
	rows, err = n.db.QueryContext(ctx, `SELECT name, node, epoch, status, expires_at > now(),
	greatest(extract(epoch FROM expires_at - now()), 0)::float8 FROM bluetick_lease`)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var l leaseRow
		var remains float64
		if err := rows.Scan(&name, &l.node, &l.epoch, &l.status, &l.live, &remains); err != nil {
			return v, err
		}
		l.remains = time.Duration(remains * float64(time.Second))
		v.leases[name] = l
	}
	return v, rows.Err()
}

// markRenewed moves the fencing deadline on after a renewal sent at sent
// succeeded.
func (n *Node) markRenewed(sent time.Time) {
	n.mu.Lock()
	if until := sent.Add(n.cfg.fenceAfter()); until.After(n.validUntil) {
		n.validUntil = until
	}
	n.mu.Unlock()
	select {
	case n.renewed <- struct{}{}:
	default:
	}
}

// renewLoop renews the heartbeat and the leases every Renew. A lease that
// was not renewed was lost (its epoch moved on): its session is released
// at once.
func (n *Node) renewLoop() {
	defer n.loops.Done()
	defer n.recoverLoop("renew")
	t := time.NewTicker(n.cfg.Renew)
	defer t.Stop()
	for {
		select {
		case <-n.life.Done():
			return
		case <-t.C:
		}
		n.mu.RLock()
		held := make(map[string]int64, len(n.held))
		for name, epoch := range n.held {
			held[name] = epoch
		}
		n.mu.RUnlock()
		sent := time.Now()
		ctx, cancel := context.WithTimeout(n.life, n.cfg.fenceAfter())
		beat, renewed, err := n.renew(ctx, held)
		cancel()
		if err != nil {
			if n.life.Err() == nil {
				n.cfg.Logger.Warn("cluster: renewing the leases failed", "node", n.cfg.NodeID, "error", err)
			}
			continue
		}
		if !beat {
			n.cfg.Logger.Error("cluster: another process took this node's id; releasing every session", "node", n.cfg.NodeID)
			n.fence()
			continue
		}
		var lost []string
		n.mu.Lock()
		for name, epoch := range held {
			if !renewed[name] && n.held[name] == epoch {
				delete(n.held, name)
				lost = append(lost, name)
			}
		}
		n.mu.Unlock()
		n.markRenewed(sent)
		slices.Sort(lost)
		for _, name := range lost {
			n.cfg.Logger.Error("cluster: a lease was lost; releasing its session", "node", n.cfg.NodeID, "session", name)
			if err := n.dev.Release(n.life, name); err != nil {
				n.cfg.Logger.Error("cluster: releasing a lost session failed", "session", name, "error", err)
			}
		}
	}
}

// watchdog fences the node when its leases may expire: once the deadline
// of the last renewal that succeeded has passed, it disconnects every
// session, before any other node may take them (a lease lives LeaseTTL
// from the renewal; the node stops 2 × Renew earlier).
func (n *Node) watchdog() {
	defer n.loops.Done()
	defer n.recoverLoop("watchdog")
	t := time.NewTimer(n.cfg.Renew)
	defer t.Stop()
	for {
		n.mu.RLock()
		wait := time.Until(n.validUntil)
		holding := len(n.held) > 0
		n.mu.RUnlock()
		if wait <= 0 {
			if holding {
				n.cfg.Logger.Error("cluster: the leases could not be renewed in time; disconnecting every session (self-fencing)",
					"node", n.cfg.NodeID)
				n.fence()
			}
			wait = n.cfg.Renew
		}
		t.Reset(wait)
		select {
		case <-n.life.Done():
			return
		case <-n.renewed:
			if !t.Stop() {
				<-t.C
			}
		case <-t.C:
		}
	}
}

// fence drops every lease this node holds and disconnects every session,
// cancelling the connects under way. The sends in flight get up to half a
// renewal period to land first (no new one starts): a send cut by the
// disconnection cannot say whether its receipt went out, and the fence
// has two renewal periods before the leases may expire.
func (n *Node) fence() {
	n.mu.Lock()
	n.held = make(map[string]int64)
	n.validUntil = time.Time{}
	n.fences++
	n.mu.Unlock()
	n.acquireMu.Lock()
	n.stopAcquiring()
	n.acquiring, n.stopAcquiring = context.WithCancel(n.life)
	n.acquireMu.Unlock()
	n.drain(n.cfg.Renew/2, func() bool { return len(n.inflight) > 0 })
	n.dev.ReleaseAll()
}

// recoverLoop logs a panic of a background loop, which then ends; the
// node fences itself, as it can no longer keep its leases' promise.
func (n *Node) recoverLoop(loop string) {
	if v := recover(); v != nil {
		n.cfg.Logger.Error("cluster: panic in a background loop; disconnecting every session",
			"loop", loop, "panic", v, "stack", string(debug.Stack()))
		n.fence()
	}
}

// currentOwner reads who holds the lease of name now, and that node's
// URL, when both the lease and the node are live.
func (n *Node) currentOwner(ctx context.Context, name string) (node, url string, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Renew)
	defer cancel()
	var incarnation, proof string
	var capacity int
	err := n.db.QueryRowContext(ctx, `SELECT l.node, nd.url, nd.incarnation, nd.capacity, nd.proof
FROM bluetick_lease l JOIN bluetick_node nd ON nd.id = l.node
WHERE l.name = $1 AND l.expires_at > now() AND nd.expires_at > now()`, name).Scan(&node, &url, &incarnation, &capacity, &proof)
	if err != nil || !n.trusted(node, incarnation, url, capacity, proof) {
		return "", "", false
	}
	n.mu.RLock()
	suspect := !n.alive(node) && n.view.nodes[node].id != ""
	n.mu.RUnlock()
	return node, url, !suspect
}
