package sessiontest

import (
	"sync"

	"github.com/bluetick/bluetick/session"
)

// Arrivals is a [session.ArrivalSource] that a test feeds by hand: each
// [Arrivals.Emit] reaches every subscriber, as a Manager's incoming
// messages reach auto-read. The zero value is ready to use, and it is safe
// for concurrent use.
type Arrivals struct {
	mu   sync.Mutex
	next int
	subs map[int]func(string, session.Arrival)
}

var _ session.ArrivalSource = (*Arrivals)(nil)

// SubscribeArrivals implements session.ArrivalSource: f is called with
// each arrival emitted until stop is called.
func (a *Arrivals) SubscribeArrivals(f func(name string, ar session.Arrival)) (stop func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subs == nil {
		a.subs = make(map[int]func(string, session.Arrival))
	}
	id := a.next
	a.next++
	a.subs[id] = f
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.subs, id)
	}
}

// Emit hands ar, arrived in the session name, to the subscribers, on the
// caller's goroutine, outside a's lock.
func (a *Arrivals) Emit(name string, ar session.Arrival) {
	a.mu.Lock()
	subs := make([]func(string, session.Arrival), 0, len(a.subs))
	for _, f := range a.subs {
		subs = append(subs, f)
	}
	a.mu.Unlock()
	for _, f := range subs {
		f(name, ar)
	}
}
