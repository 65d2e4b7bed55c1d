package seenhandler

import (
	"context"
	"errors"
	"reflect"
	"sync"

	"github.com/bluetick/bluetick/session"
)

// WithCoalescing batches receipts for the same (session, chat, sender,
// type) that arrive within o.Window into one backend call (see
// session.Coalesce); every request still gets its own answer. A request
// then waits up to o.Window before its receipts go out (its senders' batches
// are waited for at once), so it is off by default: the synchronous path
// never waits on a timer unless asked.
// Shutdown flushes pending batches. Default: off.
func WithCoalescing(o session.CoalesceOptions) Option {
	return func(c *config) error {
		if o.Window < 0 || o.MaxBatch < 0 || o.SendTimeout < 0 {
			return errors.New("seenhandler: WithCoalescing: negative option")
		}
		c.coalesce = &o
		return nil
	}
}

// WithDedup skips ids whose receipt was sent recently, per session, chat
// and type (see session.Dedup); they are listed in skipped with reason
// duplicate. Default: off.
func WithDedup(o session.DedupOptions) Option {
	return func(c *config) error {
		if o.Size < 0 || o.TTL < 0 {
			return errors.New("seenhandler: WithDedup: negative option")
		}
		c.dedup = &o
		return nil
	}
}

// decorators holds the decorated form of each session, by name, so that
// batches and the dedup memory span requests.
type decorators struct {
	mu     sync.Mutex
	byName map[string]*decorated
}

type decorated struct {
	inner     session.Session
	outer     session.Session
	coalescer *session.Coalescer
}

// decorate returns s with the configured decorators, made once per session
// name; a registry that returns another session for the name gets fresh
// ones (sessions whose type cannot be compared, such as a SessionFunc, are
// taken to be the same).
func (h *Handler) decorate(name string, s session.Session) session.Session {
	if h.cfg.coalesce == nil && h.cfg.dedup == nil {
		return s
	}
	d := &h.decorators
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.byName[name]; ok && sameSession(cur.inner, s) {
		return cur.outer
	} else if ok && cur.coalescer != nil {
		go func() { _ = cur.coalescer.Close(context.Background()) }() // flush the old batches
	}
	dec := &decorated{inner: s, outer: s}
	if h.cfg.coalesce != nil {
		dec.coalescer = session.Coalesce(dec.outer, *h.cfg.coalesce)
		dec.outer = dec.coalescer
	}
	if h.cfg.dedup != nil {
		dec.outer = session.Dedup(dec.outer, *h.cfg.dedup)
	}
	if d.byName == nil {
		d.byName = make(map[string]*decorated)
	}
	d.byName[name] = dec
	return dec.outer
}

func sameSession(a, b session.Session) bool {
	ta := reflect.TypeOf(a)
	if ta != reflect.TypeOf(b) {
		return false
	}
	if !ta.Comparable() {
		return true
	}
	return a == b
}

// closeDecorators flushes and closes the coalescers, waiting for their
// batches until ctx ends.
func (h *Handler) closeDecorators(ctx context.Context) error {
	d := &h.decorators
	d.mu.Lock()
	var coalescers []*session.Coalescer
	for _, dec := range d.byName {
		if dec.coalescer != nil {
			coalescers = append(coalescers, dec.coalescer)
		}
	}
	d.mu.Unlock()
	var errs []error
	for _, c := range coalescers {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}
