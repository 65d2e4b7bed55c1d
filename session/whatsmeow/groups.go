package whatsmeow

import (
	"context"
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
	lru    *simplelru.LRU[string, groupMode]
	asking map[string]*groupQuery // the query in flight per group
}

type groupMode struct {
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
	lru, err := simplelru.NewLRU[string, groupMode](groupModeCacheSize, nil)
	if err != nil {
		panic(err) // unreachable: the size is positive
	}
	return &groupModes{lru: lru, asking: make(map[string]*groupQuery)}
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
		if m, ok := g.lru.Get(group); ok && time.Now().Before(m.expires) {
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
				g.lru.Add(group, groupMode{lid: lid, expires: time.Now().Add(ttl)})
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
	g.lru.Add(group, groupMode{lid: lid, expires: time.Now().Add(groupModeTTL)})
}

// forget drops what is remembered of group, and the answer of a query
// about it in flight: the next caller asks again.
func (g *groupModes) forget(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lru.Remove(group)
	delete(g.asking, group)
}
