package cluster

import "math"

// Assign is assign for tests: names placed on nodes of unbounded capacity.
func Assign(names, nodes []string) map[string]string {
	rows := make([]nodeRow, len(nodes))
	for i, id := range nodes {
		rows[i] = nodeRow{id: id, capacity: math.MaxInt32}
	}
	return assign(names, rows)
}

// Kill stops n as a dying process would: no renewals, no hand-over, its
// database connections closed; its leases stay until they expire.
func Kill(n *Node) {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.endLife()
	n.loops.Wait()
	n.db.Close()
}
