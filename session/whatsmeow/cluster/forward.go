package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
)

// The headers of a forwarded request.
const (
	// HeaderNode names the node that forwarded the request.
	HeaderNode = "X-Bluetick-Node"
	// HeaderTime is when it did, in Unix milliseconds.
	HeaderTime = "X-Bluetick-Time"
	// HeaderSignature is base64 of HMAC-SHA256 under the cluster secret of
	// the method, the request URI, the node, the time and SHA-256 of the
	// body, each followed by a newline.
	HeaderSignature = "X-Bluetick-Signature"
)

// maxSkew is how far a forwarded request's time may be from ours.
const maxSkew = 5 * time.Minute

// Forward serves a request for a session another node owns at that node
// (see seenhandler.Forwarder): it sends the request as it came (method,
// URI, headers, body) to the owner's advertised URL, signed with the
// cluster secret, and copies the owner's answer to w. It forwards nothing
// when this node serves the session, when nobody does (the handler then
// answers 503 with a Retry-After), or when r was forwarded already: a
// forwarded request is served where it lands, so forwarding never loops. A
// request that says it was forwarded but is not signed with the secret is
// refused (seenhandler.ErrForbidden). When the owner cannot be reached the
// error wraps session.ErrNotConnected with the expected takeover time.
func (n *Node) Forward(w http.ResponseWriter, r *http.Request, name string, body []byte) (bool, error) {
	if r.Header.Get(HeaderNode) != "" {
		if err := n.verify(r, body); err != nil {
			return false, fmt.Errorf("%w: %v", seenhandler.ErrForbidden, err)
		}
		return false, nil
	}
	if n.serving(name) || len(n.cfg.Secret) == 0 {
		return false, nil
	}
	owner, ok := n.Owner(name)
	var target string
	if ok {
		n.mu.RLock()
		target = n.view.nodes[owner].url
		n.mu.RUnlock()
	} else {
		// The snapshot (up to Renew old) knows no owner: ask the table,
		// in case one took the session since.
		owner, target, ok = n.currentOwner(r.Context(), name)
	}
	if !ok || owner == n.cfg.NodeID {
		return false, nil
	}
	if target == "" {
		return false, nil // the owner takes no forwarded requests: the stand-in answers 503
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimSuffix(target, "/")+requestURI(r), bytes.NewReader(body))
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
	n.sign(req, body)
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			return false, r.Context().Err()
		}
		n.cfg.Logger.Warn("cluster: the owner of a session could not be reached", "session", name, "owner", owner, "error", err)
		n.suspect(owner)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return false, nil // a status: answered here, the session ownerless for now
		}
		return false, session.WithRetryAfter(
			fmt.Errorf("%w: the owner %q of session %q cannot be reached: %v", session.ErrNotConnected, owner, name, err),
			n.retryAfter(name))
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if !hopByHop(k) {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		n.cfg.Logger.Warn("cluster: copying the owner's answer failed", "session", name, "owner", owner, "error", err)
	}
	return true, nil
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
		HeaderNode, HeaderTime, HeaderSignature:
		return true
	}
	return false
}

// mac is the signature of a forwarded request.
func (n *Node) mac(method, uri, node, at string, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, n.cfg.Secret)
	for _, part := range []string{method, uri, node, at, hex.EncodeToString(sum[:])} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

func (n *Node) sign(req *http.Request, body []byte) {
	at := strconv.FormatInt(n.cfg.Now().UnixMilli(), 10)
	req.Header.Set(HeaderNode, n.cfg.NodeID)
	req.Header.Set(HeaderTime, at)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(n.mac(req.Method, req.URL.RequestURI(), n.cfg.NodeID, at, body)))
}

// verify checks a forwarded request's signature and time.
func (n *Node) verify(r *http.Request, body []byte) error {
	if len(n.cfg.Secret) == 0 {
		return errors.New("a forwarded request, and this node has no cluster secret")
	}
	at := r.Header.Get(HeaderTime)
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return errors.New("a forwarded request without a valid " + HeaderTime)
	}
	if d := n.cfg.Now().Sub(time.UnixMilli(ms)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("a forwarded request %v away from this node's clock", d.Round(time.Second))
	}
	sig, err := base64.StdEncoding.DecodeString(r.Header.Get(HeaderSignature))
	if err != nil || !hmac.Equal(sig, n.mac(r.Method, requestURI(r), r.Header.Get(HeaderNode), at, body)) {
		return errors.New("a forwarded request with a bad signature")
	}
	return nil
}
