package session

import "context"

// fenceKey is the context key of the fences a context carries.
type fenceKey struct{}

// WithFence returns ctx carrying check, which a backend that honours
// fences (the whatsmeow one does; the sessiontest fake does not) calls
// right before each write to WhatsApp it makes for a call with that
// context (each receipt stanza, and what it sends first, such as its
// presence): when check returns an error, the write does not happen and
// the call returns that error. A cluster fences so the sends of a session whose lease it
// may have lost since the call began (a stalled process, a pause past the
// lease's term): nothing is written once the lease is in doubt. Fences
// nest: every one of them must pass. check must be safe for concurrent
// use and quick (it is called on the sending path).
func WithFence(ctx context.Context, check func() error) context.Context {
	outer, _ := ctx.Value(fenceKey{}).([]func() error)
	checks := make([]func() error, len(outer), len(outer)+1)
	copy(checks, outer)
	return context.WithValue(ctx, fenceKey{}, append(checks, check))
}

// Fence runs the checks ctx carries (see [WithFence]), outermost first,
// and returns the first error; nil when there is none. A backend calls it
// right before each write to WhatsApp.
func Fence(ctx context.Context) error {
	checks, _ := ctx.Value(fenceKey{}).([]func() error)
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}
