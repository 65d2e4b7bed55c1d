package seenhandler

import (
	"bytes"
	"errors"
	"net/http"
)

// Forwarder lets several processes (replicas of one app) serve the same
// sessions, each session by one of them, its owner: a request that reaches a
// process which does not own its session is served by the owner. See
// [WithForwarder]; package session/whatsmeow/cluster implements it.
//
// Forward is called once the request's session name is known, before the
// request is authenticated (the owner authenticates it, with its own
// answer). It returns false when this process serves the request: the
// session is its own, or nobody's, or r was forwarded to it already (a
// Forwarder never forwards a forwarded request: no loops). It returns true
// once it has written the owner's answer to w, and otherwise an error for
// the handler to answer with, having written nothing (e.g. an error
// wrapping session.ErrNotConnected with a Retry-After when the owner cannot
// be reached). body is the request's body as read, nil for a GET. Forward
// must be safe for concurrent use.
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request, session string, body []byte) (bool, error)
}

// WithForwarder makes the handler ask f, for every request that names a
// session, whether another process serves it; nil is an error. Default:
// none (every session is served here).
func WithForwarder(f Forwarder) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("seenhandler: WithForwarder: nil Forwarder")
		}
		c.forwarder = f
		return nil
	}
}

// forwarded is what an endpoint returns when the session's owner answered.
type forwarded struct{}

// forward asks the Forwarder, if any, to serve the request elsewhere, and
// records the owner's status for the log and the Observer.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, x *exchange, name string, body []byte) (bool, error) {
	if h.cfg.forwarder == nil {
		return false, nil
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	// A copy: the handler reads the next request's body into body's
	// buffer, and Forward's doc does not forbid keeping it.
	done, err := h.cfg.forwarder.Forward(sw, r, name, bytes.Clone(body))
	if err != nil {
		return false, err
	}
	if done {
		x.answered = true
		x.status = sw.status
	}
	return done, nil
}

// statusWriter remembers the status a ResponseWriter was given.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
