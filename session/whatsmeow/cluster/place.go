package cluster

import (
	"cmp"
	"context"
	"hash/fnv"
	"slices"
	"time"

	"github.com/bluetick/bluetick/session"
)

// assign places every session on a node: rendezvous hashing (each session
// goes to the node that scores highest for it, so that a node joining or
// leaving moves few sessions) with bounded loads: no node takes more than
// ⌈S/N⌉ sessions, nor more than its capacity; the sessions that fit
// nowhere within ⌈S/N⌉ go to the best node with room left, and those that
// fit nowhere stay unplaced (""). Every node computes the same placement
// from the same snapshot.
func assign(names []string, nodes []nodeRow) map[string]string {
	out := make(map[string]string, len(names))
	if len(nodes) == 0 {
		return out
	}
	fair := (len(names) + len(nodes) - 1) / len(nodes)
	load := make(map[string]int, len(nodes))
	ranked := make([]nodeRow, len(nodes))
	var left []string
	pick := func(name string, limit func(nodeRow) int) bool {
		copy(ranked, nodes)
		slices.SortFunc(ranked, func(a, b nodeRow) int {
			if c := cmp.Compare(score(b.id, name), score(a.id, name)); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		for _, nd := range ranked {
			if load[nd.id] < limit(nd) {
				out[name] = nd.id
				load[nd.id]++
				return true
			}
		}
		return false
	}
	for _, name := range names {
		if !pick(name, func(nd nodeRow) int { return min(fair, nd.capacity) }) {
			left = append(left, name)
		}
	}
	for _, name := range left {
		if !pick(name, func(nd nodeRow) int { return nd.capacity }) {
			out[name] = ""
		}
	}
	return out
}

// score is the rendezvous weight of node for session name: FNV-1a of both,
// mixed (splitmix64's finalizer) so that similar names spread.
func score(node, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(name))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// placeLoop revisits the placement every Renew.
func (n *Node) placeLoop() {
	defer n.loops.Done()
	defer n.recoverLoop("place")
	t := time.NewTicker(n.cfg.Renew)
	defer t.Stop()
	for {
		select {
		case <-n.life.Done():
			return
		case <-t.C:
		}
		if err := n.place(n.life); err != nil && n.life.Err() == nil {
			n.cfg.Logger.Warn("cluster: placement failed", "node", n.cfg.NodeID, "error", err)
		}
	}
}

// place takes a snapshot of the cluster, hands over the sessions this node
// holds that belong elsewhere now (disconnect, then free the lease), and
// claims and connects those that belong here and are free.
func (n *Node) place(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, n.cfg.fenceAfter())
	v, err := n.snapshot(sctx)
	cancel()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.view = v
	held := make(map[string]int64, len(n.held))
	for name, epoch := range n.held {
		held[name] = epoch
	}
	n.mu.Unlock()
	if _, member := v.nodes[n.cfg.NodeID]; !member {
		return nil // our heartbeat is not in: act on nothing
	}
	nodes := make([]nodeRow, 0, len(v.nodes))
	for _, nd := range v.nodes {
		nodes = append(nodes, nd)
	}
	slices.SortFunc(nodes, func(a, b nodeRow) int { return cmp.Compare(a.id, b.id) })
	desired := assign(v.names, nodes)

	// Hand over first: the old owner disconnects before the new one may
	// connect.
	for _, name := range sortedKeys(held) {
		if desired[name] == n.cfg.NodeID {
			continue
		}
		n.mu.Lock()
		still := n.held[name] == held[name]
		if still {
			delete(n.held, name)
		}
		fences := n.fences
		n.mu.Unlock()
		if !still {
			continue
		}
		n.cfg.Logger.Info("cluster: handing a session over", "node", n.cfg.NodeID, "session", name, "to", desired[name])
		released, err := n.handOver(ctx, name, held[name])
		if err != nil {
			n.cfg.Logger.Error("cluster: handing a session over failed", "session", name, "error", err)
		}
		if !released {
			// Still connected (Close cancelled the Release): it stays this
			// node's, its lease renewed, until a later round or Close lets
			// it go, unless a fence has disconnected it meanwhile.
			n.mu.Lock()
			if n.fences == fences {
				n.held[name] = held[name]
			}
			n.mu.Unlock()
		}
	}

	var want []string
	for _, name := range v.names {
		if desired[name] != n.cfg.NodeID {
			continue
		}
		if _, ok := held[name]; ok {
			continue
		}
		if l, ok := v.leases[name]; ok && l.live && l.node != n.cfg.NodeID {
			continue // its owner hands it over on its next round
		}
		want = append(want, name)
	}
	got := map[string]int64{}
	if len(want) > 0 {
		cctx, cancel := context.WithTimeout(ctx, n.cfg.fenceAfter())
		got, err = n.claim(cctx, want)
		cancel()
		if err != nil {
			return err
		}
	}
	n.mu.Lock()
	for name, epoch := range got {
		n.held[name] = epoch
	}
	n.mu.Unlock()

	// A session connected here without a lease (paired here, say) is
	// released.
	for _, name := range v.names {
		if _, ok := held[name]; ok {
			continue
		}
		if _, ok := got[name]; ok {
			continue
		}
		if n.connectedHere(ctx, name) {
			n.cfg.Logger.Warn("cluster: a session was connected here without its lease; releasing it", "session", name)
			if err := n.dev.Release(ctx, name); err != nil {
				n.cfg.Logger.Error("cluster: releasing a session failed", "session", name, "error", err)
			}
		}
	}
	if len(got) == 0 {
		return nil
	}
	names := sortedKeys(got)
	n.cfg.Logger.Info("cluster: taking sessions", "node", n.cfg.NodeID, "sessions", names)
	n.acquireMu.Lock()
	actx := n.acquiring
	n.acquireMu.Unlock()
	err = n.dev.Acquire(actx, names...)
	// Fenced, or a lease lost, while connecting: release what is not ours.
	for _, name := range names {
		n.mu.RLock()
		_, ok := n.held[name]
		n.mu.RUnlock()
		if !ok {
			if rerr := n.dev.Release(ctx, name); rerr != nil {
				n.cfg.Logger.Error("cluster: releasing a session failed", "session", name, "error", rerr)
			}
		}
	}
	return err
}

// connectedHere reports whether the session called name is connected in
// this process.
func (n *Node) connectedHere(ctx context.Context, name string) bool {
	s, err := n.dev.Lookup(ctx, name)
	if err != nil {
		return false
	}
	r, ok := session.As[session.StatusReporter](s)
	return ok && r.Status(ctx).Connected
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
