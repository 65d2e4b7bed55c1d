package session

import (
	"context"
	"fmt"
)

// singleName is the one name a SingleRegistry lists and answers as:
// WAHA's clients send it when they name no session, so a WAHA client that
// lists the sessions and sends to the first finds the same one.
const singleName = "default"

// SingleRegistry is the [Registry] of an app with one WhatsApp account: it
// answers every name, and no name, with its one session, so that clients
// need not invent a session name nor agree with the server on one. Create
// it with [Single]; it is safe for concurrent use.
//
// The HTTP handler (package seenhandler) recognises it, also under
// [Decorate]: a request to it needs no session name in any dialect, a name
// it does carry (in the body, the query, Wawp's X-Instance-ID header or
// the URL) is ignored rather than checked against the others, and the
// request is served, authenticated, rate-limited, queued and reported
// (the status endpoints' and the session list's "session"/"name") as the
// session of [SingleRegistry.Name], "default".
type SingleRegistry struct {
	s Session
}

var (
	_ Registry = (*SingleRegistry)(nil)
	_ Lister   = (*SingleRegistry)(nil)
)

// Single returns a [SingleRegistry] whose one session is s. A nil s makes a
// registry with no session: every Lookup fails with [ErrSessionNotFound]
// (HTTP 404) and the list is empty, rather than a nil Session reaching a
// caller.
func Single(s Session) *SingleRegistry {
	return &SingleRegistry{s: s}
}

// Name returns the name the session is known by: "default", the session
// WAHA's clients address when they name none.
func (r *SingleRegistry) Name() string { return singleName }

// Lookup returns the one session, whatever name is asked for.
func (r *SingleRegistry) Lookup(_ context.Context, name string) (Session, error) {
	if r.s == nil {
		return nil, fmt.Errorf("%w: %q: the single registry has no session", ErrSessionNotFound, name)
	}
	return r.s, nil
}

// ListSessions implements [Lister]: the one name, [SingleRegistry.Name].
func (r *SingleRegistry) ListSessions(context.Context) ([]string, error) {
	if r.s == nil {
		return []string{}, nil
	}
	return []string{singleName}, nil
}
