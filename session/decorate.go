package session

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// defaultIdleTTL is the default of DecorateOptions.IdleTTL.
const defaultIdleTTL = 10 * time.Minute

// DecorateOptions configures [Decorate]. The zero value decorates nothing.
type DecorateOptions struct {
	// Coalesce, when set, batches each session's receipts for one chat,
	// sender and type by group commit (see [CoalesceOptions]). Default nil:
	// no coalescing.
	Coalesce *CoalesceOptions
	// Dedup, when set, skips the ids each session sent recently, reporting
	// them in [Result].Duplicates (see [DedupOptions]), before they reach
	// the coalescing: ids sent recently never enter a batch. Default nil: no
	// dedup.
	Dedup *DedupOptions
	// IdleTTL is how long the decorators of a session name may go unused
	// (neither looked up nor sent through) before they are closed and
	// dropped; a later Lookup of the name builds fresh ones, with an empty
	// dedup memory. Default (0 or less) 10 minutes.
	IdleTTL time.Duration
}

// Decorated is a [Registry] that wraps the sessions of another Registry in
// the decorators [DecorateOptions] asks for, and owns them: it makes them,
// keeps them while they are used, and closes them. Create it with
// [Decorate]; it is safe for concurrent use.
//
// Whoever calls Decorate owns the Decorated and must call [Decorated.Close]
// once nothing sends through it any more: with an HTTP handler, after the
// handler's Shutdown, so that the batches still waiting go out.
type Decorated struct {
	reg      Registry
	coalesce *CoalesceOptions
	dedup    *DedupOptions
	ttl      time.Duration

	// sends counts the calls the coalescers made to the sessions; see Stats.
	sends atomic.Int64

	mu        sync.Mutex
	chains    map[string]*chain // the live chains, by session name
	retired   map[*chain]bool   // dropped, but being closed or still sent through
	calls     int64             // coalescer.stats().Calls of the settled chains
	nextSweep time.Time
	closed    bool
}

var _ Registry = (*Decorated)(nil)

// Decorate returns a Registry that looks sessions up in reg (which must not
// be nil) and returns them wrapped in the decorators opts asks for: dedup
// outermost, then coalescing. With neither, Lookup returns reg's sessions unchanged
// and Decorated keeps no state.
//
// The decorators are made once per session name, not once per Session
// value, so that batches and the dedup memory span the requests for that
// name: a registry may return a new Session value on every lookup (a
// [SessionFunc] made on the fly, say) or replace the session behind a name,
// and no value comparison can tell those apart. Innermost, the decorators
// call the Session that reg returned on the latest Lookup of the name, so
// batches go to the session registered now. The optional interfaces
// ([Resolver], [UnreadLister], …) of that Session are found through the
// decorators with [As].
//
// The decorators of a name are closed (their pending batches flushed) and
// dropped when reg reports the name unknown (an error wrapping
// [ErrSessionNotFound]), and when they have gone unused for
// opts.IdleTTL with no SendReceipt in flight through them. Idle ones are
// found by Lookup, at most about twice per IdleTTL; Decorated starts no
// goroutine. A Session returned before its decorators were dropped keeps
// working: it then passes receipts straight to its session, undecorated.
func Decorate(reg Registry, opts DecorateOptions) *Decorated {
	d := &Decorated{reg: reg, ttl: opts.IdleTTL}
	if d.ttl <= 0 {
		d.ttl = defaultIdleTTL
	}
	if opts.Coalesce != nil {
		o := *opts.Coalesce
		d.coalesce = &o
	}
	if opts.Dedup != nil {
		o := *opts.Dedup
		d.dedup = &o
	}
	return d
}

// Unwrap returns the Registry d decorates.
func (d *Decorated) Unwrap() Registry { return d.reg }

// ListSessions implements [Lister] by asking the wrapped Registry; it
// returns an error wrapping errors.ErrUnsupported when that is no Lister.
func (d *Decorated) ListSessions(ctx context.Context) ([]string, error) {
	l, ok := d.reg.(Lister)
	if !ok {
		return nil, fmt.Errorf("session: %T cannot list its sessions: %w", d.reg, errors.ErrUnsupported)
	}
	return l.ListSessions(ctx)
}

// Lookup looks name up in the wrapped Registry and returns its session
// decorated. An error from the wrapped Registry is returned as is; if it
// wraps [ErrSessionNotFound], the decorators of name are closed first, their
// pending batches flushed, in the caller's goroutine and waiting no longer
// than ctx. A nil Session with a nil error is reported as an error wrapping
// ErrSessionNotFound. After [Decorated.Close], sessions are returned
// undecorated.
func (d *Decorated) Lookup(ctx context.Context, name string) (Session, error) {
	s, err := d.reg.Lookup(ctx, name)
	if err == nil && s == nil {
		err = fmt.Errorf("session: registry returned no session for %q: %w", name, ErrSessionNotFound)
	}
	if d.coalesce == nil && d.dedup == nil {
		return s, err
	}
	if err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			d.drop(ctx, name)
		}
		return nil, err
	}

	now := time.Now()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return s, nil
	}
	c := d.chains[name]
	if c == nil {
		c = d.newChain(s)
		if d.chains == nil {
			d.chains = make(map[string]*chain)
		}
		d.chains[name] = c
	} else {
		c.fwd.set(s)
	}
	c.mu.Lock()
	c.lastUsed = now
	c.mu.Unlock()
	var idle []*chain
	if !now.Before(d.nextSweep) {
		idle = d.sweep(now)
		d.nextSweep = now.Add(d.ttl / 2)
	}
	d.mu.Unlock()

	// No caller waits on idle chains: if ctx ends first, their last batches
	// (of callers that gave up) finish within SendTimeout on their own.
	_ = d.closeChains(ctx, idle)
	return c, nil
}

// Close closes every session's decorators, flushing the pending batches, and
// waits until they have gone out, or until ctx ends (it then returns
// ctx.Err(); the batches still out finish within their SendTimeout).
// Afterwards Lookup returns sessions undecorated, and the Sessions it
// returned before pass receipts straight through, so that the requests still
// arriving during a graceful shutdown are served and nothing is lost. Close
// may be called more than once; a later call waits again for what an earlier
// one did not.
func (d *Decorated) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	all := make([]*chain, 0, len(d.chains)+len(d.retired))
	for c := range d.retired {
		all = append(all, c) // closed again: coalescer.close waits for it too
	}
	for _, c := range d.chains {
		all = append(all, c)
		d.retire(c)
	}
	d.chains = nil
	d.mu.Unlock()
	return d.closeChains(ctx, all)
}

// Stats returns the traffic of the coalescers so far: those of the live
// decorators plus those already closed, so that the counts never go
// backwards. It is zero without [DecorateOptions].Coalesce. Receipts passed
// straight through after Close or after their decorators were dropped are
// not counted.
func (d *Decorated) Stats() CoalesceStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.coalesce == nil {
		return CoalesceStats{}
	}
	calls := d.calls
	for _, c := range d.chains {
		calls += c.coalescer.stats().Calls
	}
	for c := range d.retired { // only chains with a coalescer get there
		calls += c.coalescer.stats().Calls
	}
	return CoalesceStats{Calls: calls, Sends: d.sends.Load()}
}

// newChain makes the decorators for a session name whose Session is s.
// d.mu must be held.
func (d *Decorated) newChain(s Session) *chain {
	c := &chain{d: d, fwd: &forward{}}
	c.fwd.set(s)
	c.outer = c.fwd
	if d.coalesce != nil {
		// Every call a coalescer makes to the session, batch or straight
		// through, goes through its forward: counting them there keeps
		// counting after the coalescer is dropped from Stats' view, until its
		// last batch is out.
		c.fwd.sends = &d.sends
		c.coalescer = coalesce(c.fwd, *d.coalesce)
		c.outer = c.coalescer
	} else {
		c.closed = true // nothing to close
	}
	if d.dedup != nil {
		c.outer = dedup(c.outer, *d.dedup)
	}
	return c
}

// sweep retires the chains unused since now-d.ttl with no call in flight,
// and returns them for closing. d.mu must be held.
func (d *Decorated) sweep(now time.Time) []*chain {
	var idle []*chain
	for name, c := range d.chains {
		c.mu.Lock()
		ok := c.inflight == 0 && now.Sub(c.lastUsed) >= d.ttl
		if ok {
			c.retired = true // in the same section: no call starts in between
		}
		c.mu.Unlock()
		if ok {
			delete(d.chains, name)
			d.track(c)
			idle = append(idle, c)
		}
	}
	return idle
}

// drop retires and closes the chain of name, if any, waiting no longer than
// ctx.
func (d *Decorated) drop(ctx context.Context, name string) {
	d.mu.Lock()
	c := d.chains[name]
	if c != nil {
		delete(d.chains, name)
		d.retire(c)
	}
	d.mu.Unlock()
	if c != nil {
		_ = d.closeChains(ctx, []*chain{c}) // the Lookup's error says enough
	}
}

// retire marks c, already out of d.chains, as dropped: calls that start
// from now on pass it by. d.mu must be held.
func (d *Decorated) retire(c *chain) {
	c.mu.Lock()
	c.retired = true
	c.mu.Unlock()
	d.track(c)
}

// track keeps a retired chain that has a coalescer in d.retired until it is
// settled. d.mu must be held.
func (d *Decorated) track(c *chain) {
	if c.coalescer != nil {
		if d.retired == nil {
			d.retired = make(map[*chain]bool)
		}
		d.retired[c] = true
	}
}

// closeChains closes the coalescers of retired chains, flushing them all
// before waiting for any, and waits until their batches are out or ctx ends.
func (d *Decorated) closeChains(ctx context.Context, chains []*chain) error {
	for _, c := range chains {
		if c.coalescer != nil {
			c.coalescer.flush()
		}
	}
	var err error
	for _, c := range chains {
		if c.coalescer == nil {
			continue
		}
		if cerr := c.coalescer.close(ctx); cerr != nil && err == nil {
			err = cerr
		}
		c.mu.Lock()
		c.closed = true
		settle := c.settleable()
		c.mu.Unlock()
		if settle {
			d.settle(c)
		}
	}
	return err
}

// settle moves a retired chain's calls into d's total, once no call is in
// flight through it: its coalescer gets no more calls.
func (d *Decorated) settle(c *chain) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retired[c] {
		delete(d.retired, c)
		d.calls += c.coalescer.stats().Calls
	}
}

// chain is the Session Decorated.Lookup returns for a name: it sends through
// the name's decorators and keeps track of their use.
type chain struct {
	d         *Decorated
	fwd       *forward   // innermost: the name's latest Session
	coalescer *coalescer // nil without coalescing
	outer     Session    // the outermost decorator

	mu       sync.Mutex
	inflight int       // SendReceipt calls through the decorators
	lastUsed time.Time // last Lookup, or last SendReceipt start or end
	retired  bool      // dropped: new calls pass by the decorators
	closed   bool      // the coalescer's Close has returned, or there is none
	settled  bool      // counted in d.calls
}

var (
	_ Session = (*chain)(nil)
	_ wrapper = (*chain)(nil)
)

// Unwrap returns the outermost decorator.
func (c *chain) Unwrap() Session { return c.outer }

// SendReceipt sends r through the decorators, or straight to the session
// once they have been dropped.
func (c *chain) SendReceipt(ctx context.Context, r Receipt) (Result, error) {
	c.mu.Lock()
	if c.retired {
		c.mu.Unlock()
		return c.fwd.current().SendReceipt(ctx, r)
	}
	c.inflight++
	c.lastUsed = time.Now()
	c.mu.Unlock()
	defer func() { // also when the session panics
		c.mu.Lock()
		c.inflight--
		c.lastUsed = time.Now()
		settle := c.settleable()
		c.mu.Unlock()
		if settle {
			c.d.settle(c)
		}
	}()
	return c.outer.SendReceipt(ctx, r)
}

// settleable reports whether c is to be settled now, and marks it settled if
// so. c.mu must be held.
func (c *chain) settleable() bool {
	if !c.retired || !c.closed || c.inflight > 0 || c.settled || c.coalescer == nil {
		return false
	}
	c.settled = true
	return true
}

// forward is the innermost Session of a chain: it calls the Session the
// registry returned on the latest Lookup of the chain's name.
type forward struct {
	target atomic.Pointer[Session]
	sends  *atomic.Int64 // nil when not counted
}

var (
	_ ContextBound = (*forward)(nil)
	_ wrapper      = (*forward)(nil)
)

// set makes s the Session f calls. Every Lookup sets it: where it is
// still the same pointer, nothing is stored (and nothing allocated).
func (f *forward) set(s Session) {
	if cur := f.target.Load(); cur != nil && reflect.ValueOf(s).Kind() == reflect.Pointer && *cur == s {
		return // == is safe: s's dynamic type is a pointer, comparable
	}
	p := new(Session) // not &s: that would move s to the heap on every call
	*p = s
	f.target.Store(p)
}

func (f *forward) current() Session { return *f.target.Load() }

// Unwrap returns the Session f calls now.
func (f *forward) Unwrap() Session { return f.current() }

// BoundByContext reports whether the Session f calls now is [ContextBound].
func (f *forward) BoundByContext() bool { return boundByContext(f.current()) }

// SendReceipt calls the Session f calls now.
func (f *forward) SendReceipt(ctx context.Context, r Receipt) (Result, error) {
	if f.sends != nil {
		f.sends.Add(1)
	}
	return f.current().SendReceipt(ctx, r)
}
