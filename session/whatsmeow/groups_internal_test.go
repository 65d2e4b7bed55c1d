package whatsmeow

import (
	"fmt"
	"testing"
)

// The group modes are bounded: beyond groupModeCacheSize the least
// recently used group is forgotten, not one looked up lately.
func TestGroupModesForgetLeastRecentlyUsed(t *testing.T) {
	g := newGroupModes()
	name := func(i int) string { return fmt.Sprintf("1203630%011d@g.us", i) }
	for i := range groupModeCacheSize {
		g.put(name(i), i%2 == 0)
	}
	g.mu.Lock()
	if m, ok := g.getLocked(name(0)); !ok || !m.lid { // now the most recently used
		t.Fatalf("group 0: %+v, %v; want remembered as LID", m, ok)
	}
	g.mu.Unlock()
	g.put(name(groupModeCacheSize), false)
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.getLocked(name(1)); ok {
		t.Error("group 1, the least recently used, is still remembered beyond the bound")
	}
	if _, ok := g.getLocked(name(0)); !ok {
		t.Error("group 0, looked up lately, was forgotten")
	}
	if n := g.order.Len(); n != groupModeCacheSize || len(g.modes) != n {
		t.Errorf("%d groups (%d in the map), want %d", n, len(g.modes), groupModeCacheSize)
	}
	g.removeLocked(name(0))
	if _, ok := g.getLocked(name(0)); ok {
		t.Error("a forgotten group is still remembered")
	}
}
