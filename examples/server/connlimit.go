package main

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connLimit is a listener that serves at most a fixed number of
// connections at once, so that many clients cannot grow the server's
// memory and descriptors without bound — without letting connections that
// send nothing hold the slots: when every slot is taken, a new connection
// takes the slot of the connection quiet for longest (idle between two
// requests, or connected and not yet sending anything), which is closed, as
// http.Server closes idle connections after IdleTimeout. Only when every
// connection is busy with a request does a new one wait for a slot. Its
// ConnState method must be the http.Server's ConnState.
type connLimit struct {
	net.Listener
	slots chan struct{} // one token per connection served

	mu      sync.Mutex
	quiet   map[*limitedConn]quietSince // connections sending nothing
	changed chan struct{}               // closed and replaced when one becomes quiet
	done    chan struct{}               // closed by Close
	closed  bool
}

// newConnLimit limits ln to max connections at once (max > 0).
func newConnLimit(ln net.Listener, max int) *connLimit {
	return &connLimit{Listener: ln, slots: make(chan struct{}, max),
		quiet: make(map[*limitedConn]quietSince), changed: make(chan struct{}), done: make(chan struct{})}
}

// Accept accepts a connection and gives it a slot: a free one, else the
// slot of the connection quiet for longest, which it closes, else the
// first to free up. The connection counts as quiet until it sends a
// request.
func (l *connLimit) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.acquire() {
		c.Close()
		return nil, net.ErrClosed
	}
	lc := &limitedConn{Conn: c, l: l}
	l.setQuiet(lc, http.StateNew)
	return lc, nil
}

// newConnGrace is how long a new connection may take to start sending
// before it counts as quiet: its first bytes may be on their way, or not
// read yet.
const newConnGrace = time.Second

// quietSince is since when a connection sends nothing, and whether it is
// new (has sent no request yet).
type quietSince struct {
	at    time.Time
	fresh bool
}

// acquire takes a slot, closing quiet connections to free one; it fails
// once the listener is closed.
func (l *connLimit) acquire() bool {
	for {
		select {
		case l.slots <- struct{}{}:
			return true
		default:
		}
		victim, wait := l.quietest(time.Now())
		if victim != nil {
			victim.Close() // frees its slot
			continue
		}
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		var later <-chan time.Time // a new connection's grace ends
		var timer *time.Timer
		if wait > 0 {
			timer = time.NewTimer(wait)
			later = timer.C
		}
		got, closed := false, false
		select { // every connection is busy
		case l.slots <- struct{}{}:
			got = true
		case <-changed:
		case <-later:
		case <-l.done:
			closed = true
		}
		if timer != nil {
			timer.Stop()
		}
		if got || closed {
			return got
		}
	}
}

// quietest returns the connection quiet for longest at now, or nil and how
// long until a new connection's grace ends (0: none waits for it).
func (l *connLimit) quietest(now time.Time) (victim *limitedConn, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var since time.Time
	for c, q := range l.quiet {
		if c.heard.Load() { // sending a request: not quiet after all
			continue
		}
		if left := q.at.Add(newConnGrace).Sub(now); q.fresh && left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		if victim == nil || q.at.Before(since) {
			victim, since = c, q.at
		}
	}
	return victim, wait
}

// ConnState tracks which connections send nothing: new ones and idle
// ones.
func (l *connLimit) ConnState(c net.Conn, state http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.setQuiet(lc, state)
}

// setQuiet records c's state: new and idle connections send nothing.
func (l *connLimit) setQuiet(c *limitedConn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (state != http.StateNew && state != http.StateIdle) || c.released {
		delete(l.quiet, c)
		return
	}
	if q, ok := l.quiet[c]; ok && q.fresh && state == http.StateNew {
		return // Accept's, told again
	}
	l.quiet[c] = quietSince{at: time.Now(), fresh: state == http.StateNew}
	c.heard.Store(false)
	close(l.changed)
	l.changed = make(chan struct{})
}

// Close closes the listener; an Accept waiting for a slot returns.
func (l *connLimit) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// limitedConn is a connection holding a slot of its connLimit until it is
// closed.
type limitedConn struct {
	net.Conn
	l        *connLimit
	released bool        // guarded by l.mu
	heard    atomic.Bool // bytes came since it was last marked quiet
}

// Read reads from the connection, noting that it sends something: a
// client slowly sending a request is not quiet (http.Server says a
// connection is active only once it has read a request's headers).
func (c *limitedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
	}
	return n, err
}

// Close closes the connection and frees its slot, once.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	release := !c.released
	c.released = true
	delete(c.l.quiet, c)
	c.l.mu.Unlock()
	if release {
		<-c.l.slots
	}
	return c.Conn.Close()
}
