// Package session defines the seam between bluetick's HTTP handler and a
// WhatsApp backend: the [Session] that sends one read receipt, the [Registry]
// that finds a session by name, the optional [Resolver] that knows the
// messages a session has seen, and the sentinel errors every backend returns.
// An app with one WhatsApp account needs no names: [Single] is the registry
// whose one session answers every request. [NewMemoryRegistry] names several.
//
// [Decorate] wraps every session of a Registry in two decorators, each
// optional: coalescing ([CoalesceOptions]) batches receipts for the same
// chat, sender and type that arrive while one is being sent into one call
// (group commit), and dedup ([DedupOptions]) skips ids sent recently
// (reporting them in Result.Duplicates). The optional interfaces are found
// through decorators with [As]. A backend whose SendReceipt returns when
// its context ends says so with [ContextBound]: group commit then sends a
// receipt that has no company from its caller's goroutine, so that where
// nothing is batched it costs next to nothing. Decorate makes one chain
// of decorators per session name on first Lookup, sends through it to the
// session the registry returns now, drops it when the name goes away or
// stays unused, and closes them all in [Decorated.Close], which its creator
// calls at shutdown, after the HTTP handler's.
//
// Importing session never links whatsmeow: the real backend lives in its own
// subpackage, and package sessiontest provides a recording fake and a
// conformance suite for tests.
//
// A backend is anything with a SendReceipt method:
//
//	reg := session.NewMemoryRegistry()
//	reg.Set("support", session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
//		// deliver r.MessageIDs in r.Chat as r.Type ...
//		return session.Result{Type: r.Type}, nil
//	}))
package session
