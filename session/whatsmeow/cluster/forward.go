package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Forward serves a request for a session another node owns at that node
// (see seenhandler.Forwarder): it sends the request as it came (method,
// URI, headers, body) to the owner's advertised URL, signed with the
// cluster secret for that node, and copies the owner's answer to w once it
// has checked its seal (see [Node.Wrap]). It forwards nothing when this
// node serves the session, when nobody does (the handler then answers 503
// with a Retry-After), or when r was forwarded already: a forwarded request
// is served where it lands, so forwarding never loops. A request that says
// it was forwarded but did not pass [Node.Wrap] is refused. When the owner
// cannot be reached, does not answer in time or gives an answer without
// its seal, the error wraps session.ErrNotConnected with the expected
// takeover time (a status request is answered here, from the status the
// owner published).
func (n *Node) Forward(w http.ResponseWriter, r *http.Request, name string, body []byte) (bool, error) {
	if r.Header.Get(HeaderNode) != "" {
		if _, ok := r.Context().Value(receivedKey{}).(string); ok {
			return false, nil // checked by Wrap: served here
		}
		err := errors.New("a forwarded request reached the handler without passing Node.Wrap, which checks it")
		if c := n.refusedRequests.count(time.Now()); c > 0 {
			n.cfg.Logger.Error("cluster: a forwarded request was refused: serve the handler through Node.Wrap",
				"node", n.cfg.NodeID, "from", r.Header.Get(HeaderNode), "error", err, "refused", c)
		}
		return false, session.RetryLater(fmt.Errorf("%w: %v", session.ErrNotConnected, err), n.cfg.Renew+n.cfg.ConnectEstimate)
	}
	if n.serving(name) || len(n.cfg.Secret) == 0 {
		return false, nil
	}
	if _, err := n.dev.Lookup(r.Context(), name); err != nil {
		// Not a session of the store (as of the last refresh, a renewal
		// period ago at most): answered here, without asking the
		// coordinator, whatever the name.
		return false, nil
	}
	owner, ok := n.Owner(name)
	var target string
	if ok {
		n.mu.RLock()
		target = n.view.nodes[owner].url
		n.mu.RUnlock()
	} else if !n.ownerless.has(name, time.Now()) {
		// The snapshot (up to Renew old) knows no owner: ask the table,
		// in case one took the session since. A session nobody serves is
		// remembered so for a renewal period, so that a burst of requests
		// for it costs one query, not one each.
		owner, target, ok = n.currentOwner(r.Context(), name)
		if !ok {
			now := time.Now()
			n.ownerless.add(name, now, now.Add(n.cfg.Renew))
		}
	}
	if !ok || owner == n.cfg.NodeID {
		return false, nil
	}
	if target == "" {
		return false, nil // the owner takes no forwarded requests: the stand-in answers 503
	}
	// The owner must answer within the handler's deadline, less a margin
	// to write this node's own answer when it does not: a hung owner gets
	// its callers a 503 in time, not an EOF when the server's
	// WriteTimeout has passed.
	ctx, cancel := forwardContext(r.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, strings.TrimSuffix(target, "/")+requestURI(r), bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	for k, vs := range r.Header {
		if !hopByHop(k) {
			req.Header[k] = vs
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			host = prior + ", " + host
		}
		req.Header.Set("X-Forwarded-For", host)
	}
	sig := n.sign(req, owner, body)
	resp, answer, err := n.exchange(req)
	if err == nil && !n.sealed(sig, resp, answer) {
		err = errors.New("its answer is not sealed with the cluster secret")
		if c := n.unsealedAnswers.count(time.Now()); c > 0 {
			n.cfg.Logger.Error("cluster: an answer from a session's owner is not sealed with the cluster secret (something else answers at its URL, or it has another secret): refused",
				"node", n.cfg.NodeID, "session", name, "owner", owner, "url", target, "status", resp.StatusCode, "refused", c)
		}
	}
	if err != nil {
		if r.Context().Err() != nil {
			return false, r.Context().Err()
		}
		n.cfg.Logger.Warn("cluster: the owner of a session could not be reached, or did not answer in time",
			"session", name, "owner", owner, "error", err)
		n.suspect(owner)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return false, nil // a status: answered here, the session ownerless for now
		}
		return false, session.RetryLater(
			fmt.Errorf("%w: the owner %q of session %q cannot be reached: %v", session.ErrNotConnected, owner, name, err),
			n.retryAfter(name))
	}
	for _, k := range sealedHeaders {
		if vs := resp.Header.Values(k); len(vs) > 0 {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := w.Write(answer); err != nil {
		n.cfg.Logger.Warn("cluster: copying the owner's answer failed", "session", name, "owner", owner, "error", err)
	}
	return true, nil
}

// maxAnswer bounds the owner's answer that a forwarding node reads (the
// handler's answers are small JSON documents).
const maxAnswer = 4 << 20

// exchange sends req and reads the whole answer, within req's context:
// nothing is written to the client until the owner has answered in full.
func (n *Node) exchange(req *http.Request) (*http.Response, []byte, error) {
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read the answer: %w", err)
	}
	if len(answer) > maxAnswer {
		return nil, nil, fmt.Errorf("an answer of more than %d bytes", maxAnswer)
	}
	return resp, answer, nil
}

// forwardContext is ctx with a deadline before ctx's own: a tenth of the
// time left, at most a second, is kept for the answer when the owner does
// not give one.
func forwardContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(deadline)/10, time.Second)
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

// ownerless remembers the sessions the lease table said nobody serves,
// each until a time, so that requests for one cost one query a renewal
// period. It holds at most maxOwnerless names: when full, the expired
// go, and if none has, all go.
type ownerless struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// maxOwnerless bounds [ownerless].
const maxOwnerless = 1024

func (o *ownerless) has(name string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	until, ok := o.until[name]
	return ok && now.Before(until)
}

func (o *ownerless) add(name string, now, until time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.until == nil {
		o.until = make(map[string]time.Time)
	}
	if len(o.until) >= maxOwnerless {
		for k, u := range o.until {
			if !now.Before(u) {
				delete(o.until, k)
			}
		}
		if len(o.until) >= maxOwnerless {
			clear(o.until)
		}
	}
	o.until[name] = until
}

// requestURI is r's URI as the client sent it (before any StripPrefix).
func requestURI(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// hopByHop reports whether header k belongs to one connection only.
func hopByHop(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Host",
		HeaderNode, HeaderTime, HeaderNonce, HeaderSignature, HeaderSeal:
		return true
	}
	return false
}
