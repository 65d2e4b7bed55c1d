package seenhandler

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Forwarder lets several processes (replicas of one app) serve the same
// sessions, each session by one of them, its owner: a request that reaches a
// process which does not own its session is served by the owner. See
// [WithForwarder]; package session/whatsmeow/cluster implements it.
//
// Forward is called once the request's session name is known and its
// token has been accepted for that session (the owner authenticates it
// again, with its own answer): a client that may not use the session is
// answered here, at the same point whatever the session's owner, and its
// request reaches no other process. r's context carries the handler's
// deadline ([WithTimeout]): Forward must return by then, with an error
// (e.g. one wrapping session.ErrNotConnected with a Retry-After) when the
// owner has not answered, so that a hung owner does not hold its callers'
// clients past it. It returns false when this process serves the request: the
// session is its own, or nobody's, or r was forwarded to it already (a
// Forwarder never forwards a forwarded request: no loops). It returns true
// once it has written the owner's answer to w, and otherwise an error for
// the handler to answer with, having written nothing (e.g. an error
// wrapping session.ErrNotConnected with a Retry-After when the owner cannot
// be reached). body is the request's body as read, nil for a GET. r's
// RequestURI is in origin form, the path and query as the client sent them,
// whatever the form of its request line (a proxy's absolute form,
// "POST http://host/sendSeen HTTP/1.1", included): forward it to the
// owner's base URL. Forward must be safe for concurrent use.
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
func (h *Handler) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange, name string, body []byte) (bool, error) {
	if h.cfg.forwarder == nil {
		return false, nil
	}
	sw := &statusWriter{ResponseWriter: w, x: x, status: http.StatusOK}
	// A copy: the handler reads the next request's body into body's
	// buffer, and Forward's doc does not forbid keeping it. The request
	// carries the handler's deadline, so that an owner that hangs cannot
	// hold the client past it.
	done, err := h.cfg.forwarder.Forward(sw, originForm(r.WithContext(ctx)), name, bytes.Clone(body))
	if err != nil {
		return false, err
	}
	if done {
		x.answered = true
		x.status = sw.status
	}
	return done, nil
}

// originForm returns r with its RequestURI in origin form: the path and
// query of an absolute-form request line ("POST http://host/sendSeen",
// as proxies send), which a Forwarder appending it to the owner's URL would
// turn into "http://owner:port" + "http://host/sendSeen". r itself when
// its RequestURI is in origin form already (nearly always), or cannot be
// parsed.
func originForm(r *http.Request) *http.Request {
	if r.RequestURI == "" || strings.HasPrefix(r.RequestURI, "/") {
		return r
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || u.Opaque != "" {
		return r
	}
	o := r.WithContext(r.Context()) // a shallow copy
	o.RequestURI = u.RequestURI()
	return o
}

// statusWriter remembers the status a ResponseWriter was given, and marks
// the exchange answered on the first write: a Forwarder that panics after
// writing the owner's answer must not get a second body after it.
type statusWriter struct {
	http.ResponseWriter
	x      *exchange
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.x.answered = true
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.x.answered = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
