package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Lookup returns the session called name: this process's own session when
// this node serves it; otherwise a stand-in that reports the status its
// owner published (and the owner's node id) and answers every receipt with
// session.ErrNotConnected and a Retry-After, since a handler with
// [Node] as its seenhandler.Forwarder sends such requests to the owner. A
// name the store does not know wraps session.ErrSessionNotFound.
func (n *Node) Lookup(ctx context.Context, name string) (session.Session, error) {
	s, err := n.dev.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if n.serving(name) {
		return &local{Session: s, n: n, name: name}, nil
	}
	if !isPaired(ctx, s) {
		return s, nil // being paired here: nobody else has its device
	}
	r := &remote{name: name, n: n}
	n.mu.RLock()
	l, ok := n.view.leases[name]
	alive := ok && n.alive(l.node)
	n.mu.RUnlock()
	if ok && l.live && alive && l.node != n.cfg.NodeID {
		r.node = l.node
		var ws wireStatus
		if json.Unmarshal([]byte(l.status), &ws) == nil {
			r.status = session.Status{Connected: ws.Connected, LoggedIn: ws.LoggedIn, Paired: ws.Paired, JID: ws.JID}
		}
	}
	if r.node == "" {
		r.status = session.Status{Paired: true} // stored, so paired; nobody connects it now
	}
	r.status.Node = r.node
	return r, nil
}

// ListSessions returns the names of every session in the store, and of
// those being paired here, as of the last snapshot, sorted.
func (n *Node) ListSessions(ctx context.Context) ([]string, error) {
	n.mu.RLock()
	names := n.view.all
	n.mu.RUnlock()
	if names == nil {
		return n.dev.Refresh(ctx)
	}
	return append([]string(nil), names...), nil
}

// local is a session this node serves: its status names the node, and its
// sends are counted, so that a hand-over waits for those in flight before
// it disconnects (a receipt written to WhatsApp, then cut off before its
// answer, would be answered 503 though it went out).
type local struct {
	session.Session
	n    *Node
	name string
}

func (s *local) Unwrap() session.Session { return s.Session }

func (s *local) SendReceipt(ctx context.Context, r session.Receipt) (session.Result, error) {
	epoch, ok := s.n.enter(s.name)
	if !ok {
		err := fmt.Errorf("%w: session %q is being handed over", session.ErrNotConnected, s.name)
		return session.Result{}, session.RetryLater(err, s.n.retryAfter(s.name))
	}
	defer s.n.leave(s.name)
	// The lease is checked again right before each write, not only here:
	// a process stalled between this check and the write (a pause, a
	// SIGSTOP past the lease's term) must not write once it resumes,
	// before the watchdog has had its turn.
	ctx = session.WithFence(ctx, func() error {
		if s.n.holds(s.name, epoch) {
			return nil
		}
		err := fmt.Errorf("%w: session %q: this node may have lost its lease; nothing was sent", session.ErrNotConnected, s.name)
		return session.RetryLater(err, s.n.retryAfter(s.name))
	})
	res, err := s.Session.SendReceipt(ctx, r)
	if err != nil && ctx.Err() == nil && !s.n.serving(s.name) {
		// This node let the session go while the send was under way (a
		// fence that could not wait for it): the disconnection cut it, and
		// its owner, soon another node, is the place to retry.
		err = fmt.Errorf("%w: session %q was let go while sending: %w", session.ErrNotConnected, s.name, err)
		return res, session.RetryLater(err, s.n.retryAfter(s.name))
	}
	return res, err
}

func (s *local) Status(ctx context.Context) session.Status {
	r, ok := session.As[session.StatusReporter](s.Session)
	if !ok {
		return session.Status{Node: s.n.cfg.NodeID}
	}
	st := r.Status(ctx)
	st.Node = s.n.cfg.NodeID
	return st
}

// enter counts a send of the session called name in flight, if this node
// still serves it, and returns the epoch of its lease.
func (n *Node) enter(name string) (int64, bool) {
	n.flightMu.Lock()
	defer n.flightMu.Unlock()
	n.mu.RLock()
	epoch, ok := n.held[name]
	ok = ok && time.Now().Before(n.validUntil)
	n.mu.RUnlock()
	if !ok {
		return 0, false
	}
	n.inflight[name]++
	return epoch, true
}

// holds reports whether this node still holds the lease of the session
// called name at epoch, renewed recently enough to serve it: the lease a
// send began under, neither lost, nor fenced, nor taken again since.
func (n *Node) holds(name string, epoch int64) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	e, ok := n.held[name]
	return ok && e == epoch && time.Now().Before(n.validUntil)
}

func (n *Node) leave(name string) {
	n.flightMu.Lock()
	defer n.flightMu.Unlock()
	if n.inflight[name]--; n.inflight[name] <= 0 {
		delete(n.inflight, name)
		n.landed.Broadcast()
	}
}

// drain waits, up to timeout, while busy reports sends in flight (it is
// called with flightMu held) that no longer start: those of sessions this
// node no longer serves.
func (n *Node) drain(timeout time.Duration, busy func() bool) {
	if timeout <= 0 {
		return
	}
	stop := time.AfterFunc(timeout, func() {
		n.flightMu.Lock()
		n.landed.Broadcast()
		n.flightMu.Unlock()
	})
	defer stop.Stop()
	deadline := time.Now().Add(timeout)
	n.flightMu.Lock()
	defer n.flightMu.Unlock()
	for busy() && time.Now().Before(deadline) {
		n.landed.Wait()
	}
}

// remote stands for a session this node does not serve.
type remote struct {
	n      *Node
	name   string
	node   string // the owner's id; "" while nobody serves it
	status session.Status
}

func (r *remote) SendReceipt(context.Context, session.Receipt) (session.Result, error) {
	err := fmt.Errorf("%w: session %q has no owner now", session.ErrNotConnected, r.name)
	if r.node != "" {
		err = fmt.Errorf("%w: session %q is served by node %q, and this handler does not forward", session.ErrNotConnected, r.name, r.node)
	}
	return session.Result{}, session.RetryLater(err, r.n.retryAfter(r.name))
}

func (r *remote) Status(context.Context) session.Status { return r.status }

// paired reports whether the session called name has a paired device (a
// session being paired here has none yet, and is not placed).
func (n *Node) paired(ctx context.Context, name string) bool {
	s, err := n.dev.Lookup(ctx, name)
	return err == nil && isPaired(ctx, s)
}

// isPaired reports whether s has a paired device; a session that cannot
// tell counts as paired.
func isPaired(ctx context.Context, s session.Session) bool {
	r, ok := session.As[session.StatusReporter](s)
	return !ok || r.Status(ctx).Paired
}
