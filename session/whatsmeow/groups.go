package whatsmeow

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Bounds of a [Session]'s cache of group addressing modes.
const (
	// groupModeCacheSize is how many groups' addressing modes a Session
	// remembers; the least recently used is forgotten first.
	groupModeCacheSize = 1024
	// groupModeTTL is how long an answer of GetGroupInfo is trusted. A
	// group-change event (events.GroupInfo) forgets it sooner.
	groupModeTTL = time.Hour
	// groupModeFailureTTL is how long a failed GetGroupInfo (not
	// connected, timed out, an error answer) is remembered: meanwhile the
	// group is taken as addressed by phone number without asking again, so
	// that requests about a group WhatsApp cannot answer now do not each
	// ask (WhatsApp rate-limits group metadata queries). A group-change
	// event forgets it sooner.
	groupModeFailureTTL = 2 * time.Minute
)

// groupModes remembers, per group, whether WhatsApp said (GetGroupInfo) that
// it addresses its members by LID, and asks one question per group at a
// time. It is bounded and concurrency-safe; expiry is checked on lookup, so
// it needs no goroutine and no closing.
type groupModes struct {
	mu     sync.Mutex
	order  *list.List               // of *groupMode, most recently used first
	modes  map[string]*list.Element // by group
	asking map[string]*groupQuery   // the query in flight per group
}

type groupMode struct {
	group   string
	lid     bool
	expires time.Time
}

// groupQuery is a GetGroupInfo in flight: whoever wants the same group's
// mode meanwhile waits for its answer instead of asking too.
type groupQuery struct {
	done chan struct{} // closed once lid and ok are set
	lid  bool
	ok   bool // false: the asker's request ended first; nothing was learnt
}

func newGroupModes() *groupModes {
	return &groupModes{order: list.New(), modes: make(map[string]*list.Element), asking: make(map[string]*groupQuery)}
}

// getLocked returns group's mode, if remembered, as most recently used.
// g.mu must be held.
func (g *groupModes) getLocked(group string) (groupMode, bool) {
	e, ok := g.modes[group]
	if !ok {
		return groupMode{}, false
	}
	g.order.MoveToFront(e)
	return *e.Value.(*groupMode), true
}

// putLocked remembers m, forgetting the least recently used group beyond
// groupModeCacheSize. g.mu must be held.
func (g *groupModes) putLocked(m groupMode) {
	if e, ok := g.modes[m.group]; ok {
		*e.Value.(*groupMode) = m
		g.order.MoveToFront(e)
		return
	}
	g.modes[m.group] = g.order.PushFront(&m)
	if g.order.Len() > groupModeCacheSize {
		g.removeLocked(g.order.Back().Value.(*groupMode).group)
	}
}

// removeLocked forgets group's mode. g.mu must be held.
func (g *groupModes) removeLocked(group string) {
	if e, ok := g.modes[group]; ok {
		g.order.Remove(e)
		delete(g.modes, group)
	}
}

// mode returns group's remembered mode or else asks for it with ask, which
// returns the mode and how long to remember it (0: not at all, when the
// asker's ctx ended before an answer). One caller asks per group at a time:
// the others wait for its answer, and ask in turn if it learnt nothing. A
// caller whose ctx ends while waiting gets false (phone numbers), as after
// a failure.
func (g *groupModes) mode(ctx context.Context, group string, ask func(context.Context) (lid bool, ttl time.Duration)) bool {
	for ctx.Err() == nil {
		g.mu.Lock()
		if m, ok := g.getLocked(group); ok && time.Now().Before(m.expires) {
			g.mu.Unlock()
			return m.lid
		}
		q := g.asking[group]
		if q == nil {
			q = &groupQuery{done: make(chan struct{})}
			g.asking[group] = q
			g.mu.Unlock()
			return g.ask(ctx, group, q, ask)
		}
		g.mu.Unlock()
		select {
		case <-q.done:
			if q.ok {
				return q.lid
			}
		case <-ctx.Done():
		}
	}
	return false
}

// ask runs q, the query about group, remembers its answer unless the group
// was forgotten meanwhile (the answer may predate the change), and hands it
// to the callers waiting for q.
func (g *groupModes) ask(ctx context.Context, group string, q *groupQuery, ask func(context.Context) (bool, time.Duration)) (lid bool) {
	var ttl time.Duration
	defer func() {
		g.mu.Lock()
		if g.asking[group] == q {
			delete(g.asking, group)
			if ttl > 0 {
				g.putLocked(groupMode{group: group, lid: lid, expires: time.Now().Add(ttl)})
			}
		}
		q.lid, q.ok = lid, ttl > 0
		g.mu.Unlock()
		close(q.done)
	}()
	lid, ttl = ask(ctx)
	return lid
}

// put remembers group's mode from now for groupModeTTL.
func (g *groupModes) put(group string, lid bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.putLocked(groupMode{group: group, lid: lid, expires: time.Now().Add(groupModeTTL)})
}

// forget drops what is remembered of group, and the answer of a query
// about it in flight: the next caller asks again.
func (g *groupModes) forget(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removeLocked(group)
	delete(g.asking, group)
}
