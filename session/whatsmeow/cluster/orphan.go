package cluster

import (
	"context"
	"errors"
	"slices"

	"github.com/bluetick/bluetick/session"
)

// orphaned reports whether the session called name has left the store as
// far as this node can tell, and this node answers for its queued
// receipts: this process does not know it (nor pairs it), the last
// snapshot of the store did not list it, no live node holds its lease, and
// of the live nodes this one scores highest for it (rendezvous hashing, as
// placement does), so that one node claims its jobs. Such a session never
// gets an owner: its jobs would wait, unclaimed and counted, for ever.
//
// A session paired on another node since this node's last snapshot, or
// still being paired there (it has no device in the store yet), looks the
// same: its jobs queued meanwhile fail as session_not_found too.
func (n *Node) orphaned(name string) bool {
	if _, err := n.dev.Lookup(context.Background(), name); !errors.Is(err, session.ErrSessionNotFound) {
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	v := n.view
	if v.at.IsZero() || slices.Contains(v.all, name) {
		return false
	}
	if l, ok := v.leases[name]; ok && l.live && n.alive(l.node) {
		return false
	}
	if _, member := v.nodes[n.cfg.NodeID]; !member {
		return false
	}
	best, top := "", uint64(0)
	for id := range v.nodes {
		if id != n.cfg.NodeID && !n.alive(id) {
			continue
		}
		if s := score(id, name); best == "" || s > top || (s == top && id < best) {
			best, top = id, s
		}
	}
	return best == n.cfg.NodeID
}
