package whatsmeow

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Bounds of a [Session]'s cache of group addressing modes.
const (
	// groupModeCacheSize is how many groups' addressing modes a Session
	// remembers; the least recently used is forgotten first.
	groupModeCacheSize = 1024
	// groupModeTTL is how long an answer of GetGroupInfo is trusted. A
	// group-change event (events.GroupInfo) forgets it sooner.
	groupModeTTL = time.Hour
)

// groupModes remembers, per group, whether WhatsApp said (GetGroupInfo) that
// it addresses its members by LID. It is bounded and concurrency-safe;
// expiry is checked on lookup, so it needs no goroutine and no closing.
type groupModes struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, groupMode]
}

type groupMode struct {
	lid     bool
	expires time.Time
}

func newGroupModes() *groupModes {
	lru, err := simplelru.NewLRU[string, groupMode](groupModeCacheSize, nil)
	if err != nil {
		panic(err) // unreachable: the size is positive
	}
	return &groupModes{lru: lru}
}

// get returns the remembered mode of group, if it has not expired at now.
func (g *groupModes) get(group string, now time.Time) (lid, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.lru.Get(group)
	if !ok || !now.Before(m.expires) {
		return false, false
	}
	return m.lid, true
}

// put remembers group's mode from now for groupModeTTL.
func (g *groupModes) put(group string, lid bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lru.Add(group, groupMode{lid: lid, expires: now.Add(groupModeTTL)})
}

// forget drops what is remembered of group.
func (g *groupModes) forget(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lru.Remove(group)
}
