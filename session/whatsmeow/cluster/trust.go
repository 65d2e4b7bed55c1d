package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// This file is what the nodes of a cluster believe of each other, and
// why: each proves the shared secret — once to the database, when it
// joins; in its node row, which the others verify before they place a
// session on it or send it a request; in each request it forwards, bound
// to the node it is for, to the client's credentials and to a nonce; and
// in each answer it gives to a forwarded request.

// The headers of a forwarded request and of its answer.
const (
	// HeaderNode names the node that forwarded the request.
	HeaderNode = "X-Bluetick-Node"
	// HeaderTime is when it did, in Unix milliseconds.
	HeaderTime = "X-Bluetick-Time"
	// HeaderNonce is a random value the receiving node accepts once.
	HeaderNonce = "X-Bluetick-Nonce"
	// HeaderSignature is base64 of HMAC-SHA256 under the cluster secret
	// of the method, the request URI, the forwarding node, the node it is
	// for, the time, the nonce, the Authorization, X-Api-Key and
	// Content-Type headers and SHA-256 of the body.
	HeaderSignature = "X-Bluetick-Signature"
	// HeaderSeal, on the answer, is base64 of HMAC-SHA256 under the
	// cluster secret of the request's signature, the status, the headers
	// the forwarding node copies to its client and SHA-256 of the body.
	HeaderSeal = "X-Bluetick-Seal"
)

// ErrSecret is what [Open] returns (wrapped) when its secret is not the
// one the cluster's database records: such a node does not join.
var ErrSecret = errors.New("cluster: this node's secret is not the cluster's")

// maxSkew is how far a forwarded request's time may be from the
// receiving node's: a request is good for this long after it was signed
// (the nodes' clocks must agree within it).
const maxSkew = 30 * time.Second

// maxNonces bounds the nonces a node remembers per period of 2 × maxSkew
// (it holds two periods'): past it, forwarded requests are refused until
// the period ends, rather than remembered without bound.
const maxNonces = 1 << 17

// maxForwardedBody bounds the body of a forwarded request that [Node.Wrap]
// reads to check its signature.
const maxForwardedBody = 4 << 20

// sealedHeaders are the owner's answer headers that a forwarding node
// copies to its client, under the seal; the others stay behind.
var sealedHeaders = []string{"Content-Type", "X-Content-Type-Options", "Retry-After", "Allow", "WWW-Authenticate", "Cache-Control"}

// mac is HMAC-SHA256 under secret of parts, each preceded by its length,
// so that no two lists of parts sign the same bytes.
func mac(secret []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, secret)
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkSecret makes sure that secret is the cluster's: the first node of
// the database records a proof of its secret (an HMAC of a random salt),
// and every later node must match it before it takes any part.
func checkSecret(ctx context.Context, db *sql.DB, secret []byte) error {
	salt := rand.Text()
	proof := base64.StdEncoding.EncodeToString(mac(secret, "bluetick cluster secret", salt))
	if _, err := db.ExecContext(ctx, `INSERT INTO bluetick_cluster (id, salt, proof) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		salt, proof); err != nil {
		return fmt.Errorf("cluster: record the secret's proof: %w", err)
	}
	var stored string
	if err := db.QueryRowContext(ctx, `SELECT salt, proof FROM bluetick_cluster WHERE id = 1`).Scan(&salt, &stored); err != nil {
		return fmt.Errorf("cluster: read the secret's proof: %w", err)
	}
	want := base64.StdEncoding.EncodeToString(mac(secret, "bluetick cluster secret", salt))
	if !hmac.Equal([]byte(stored), []byte(want)) {
		return fmt.Errorf("%w (the first node of this database set it): this node does not join; give every node the same secret (to change it, stop every node, then DELETE FROM bluetick_cluster)", ErrSecret)
	}
	return nil
}

// nodeProof is the proof of the secret in a node row.
func (n *Node) nodeProof(id, incarnation, url string, capacity int) string {
	return base64.StdEncoding.EncodeToString(mac(n.cfg.Secret, "bluetick node", id, incarnation, url, strconv.Itoa(capacity)))
}

// trusted reports whether a node row carries the proof of this node's
// secret; one that does not is no member: nothing is placed on it, no
// request is sent to it. The rows refused are logged at Error, once a
// period.
func (n *Node) trusted(id, incarnation, url string, capacity int, proof string) bool {
	if hmac.Equal([]byte(proof), []byte(n.nodeProof(id, incarnation, url, capacity))) {
		return true
	}
	if c := n.untrustedRows.count(time.Now()); c > 0 {
		n.cfg.Logger.Error("cluster: a node row is not signed with this node's secret (a node with another secret, or a row written without it): it is no member; nothing is placed on it or sent to it",
			"node", n.cfg.NodeID, "row", id, "url", url, "rows_refused", c)
	}
	return false
}

// sign signs req, forwarded to node to with body, and returns the
// signature, which the answer's seal must cover.
func (n *Node) sign(req *http.Request, to string, body []byte) string {
	at := strconv.FormatInt(time.Now().UnixMilli(), 10)
	nonce := rand.Text()
	sig := base64.StdEncoding.EncodeToString(n.requestMAC(req.Method, req.URL.RequestURI(), n.cfg.NodeID, to, at, nonce, req.Header, body))
	req.Header.Set(HeaderNode, n.cfg.NodeID)
	req.Header.Set(HeaderTime, at)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, sig)
	return sig
}

// requestMAC is the signature of a forwarded request.
func (n *Node) requestMAC(method, uri, from, to, at, nonce string, h http.Header, body []byte) []byte {
	return mac(n.cfg.Secret, "bluetick request", method, uri, from, to, at, nonce,
		strings.Join(h.Values("Authorization"), "\n"), strings.Join(h.Values("X-Api-Key"), "\n"),
		strings.Join(h.Values("Content-Type"), "\n"), sum(body))
}

// verify checks a forwarded request for this node: its signature, its
// time and its nonce, which it then remembers. It returns the signature.
func (n *Node) verify(r *http.Request, body []byte) (string, error) {
	if len(n.cfg.Secret) == 0 {
		return "", errors.New("a forwarded request, and this node has no cluster secret")
	}
	at := r.Header.Get(HeaderTime)
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return "", errors.New("a forwarded request without a valid " + HeaderTime)
	}
	now := time.Now()
	if d := now.Sub(time.UnixMilli(ms)); d > maxSkew || d < -maxSkew {
		return "", fmt.Errorf("a forwarded request %v away from this node's clock (at most %v)", d.Round(time.Second), maxSkew)
	}
	nonce := r.Header.Get(HeaderNonce)
	sig := r.Header.Get(HeaderSignature)
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, n.requestMAC(r.Method, requestURI(r), r.Header.Get(HeaderNode), n.cfg.NodeID, at, nonce, r.Header, body)) {
		return "", errors.New("a forwarded request with a bad signature (another secret, not for this node, or changed on the way)")
	}
	if err := n.nonces.add(nonce, now); err != nil {
		return "", err
	}
	return sig, nil
}

// nonces remembers the nonces of the forwarded requests a node accepted,
// for at least 2 × maxSkew each (a request is good for maxSkew after its
// time, which may be maxSkew ahead of ours): two generations, the older
// dropped each 2 × maxSkew.
type nonces struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	rotated   time.Time
}

func (s *nonces) add(nonce string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch age := now.Sub(s.rotated); {
	case s.cur == nil || age >= 4*maxSkew:
		s.cur, s.prev, s.rotated = make(map[string]struct{}), nil, now
	case age >= 2*maxSkew:
		s.cur, s.prev, s.rotated = make(map[string]struct{}), s.cur, now
	}
	if nonce == "" || len(nonce) > 64 {
		return errors.New("a forwarded request without a valid " + HeaderNonce)
	}
	_, again := s.cur[nonce]
	if _, before := s.prev[nonce]; again || before {
		return errors.New("a forwarded request played again (its nonce was used)")
	}
	if len(s.cur) >= maxNonces {
		return fmt.Errorf("more than %d forwarded requests within %v: refused until the period ends", maxNonces, 2*maxSkew)
	}
	s.cur[nonce] = struct{}{}
	return nil
}

// receivedKey marks the context of a forwarded request that [Node.Wrap]
// verified; its value is the request's signature.
type receivedKey struct{}

// Wrap returns next behind the node's checks of the requests other nodes
// forward to it: serve the handler through it. A request that says it was
// forwarded (it carries [HeaderNode]) is served only if it is signed with
// the cluster secret, for this node, within 30 s of its time, and has
// not been served before; otherwise it is answered 503
// session_not_connected with a Retry-After (the client may retry: another
// node, or this one once fixed, can serve it), and the refusal is logged
// at Error, once a period with the count. The answer to one that is
// served carries a seal ([HeaderSeal]) under the secret, which the
// forwarding node checks before its client sees a byte of it. Other
// requests pass untouched.
//
// writeError writes the answers Wrap gives itself — 413 for a forwarded
// body over its limit, 503 for a refused request, 500 for an answer too
// large to seal — from an error wrapping the session package's sentinels:
// pass seenhandler.WriteError, so that they read as the handler's own
// (the one place that maps errors to HTTP answers; the cluster does not
// import the handler above it).
func (n *Node) Wrap(next http.Handler, writeError func(http.ResponseWriter, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderNode) == "" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForwardedBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, err)
				return
			}
			n.refuse(w, r, writeError, fmt.Errorf("a forwarded request whose body could not be read: %w", err))
			return
		}
		sig, err := n.verify(r, body)
		if err != nil {
			n.refuse(w, r, writeError, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), receivedKey{}, sig))
		r.Body = io.NopCloser(bytes.NewReader(body))
		s := &sealer{w: w, head: r.Method == http.MethodHead}
		next.ServeHTTP(s, r)
		s.finish(n, sig, writeError)
	})
}

// refuse answers a forwarded request that failed its check: 503 with a
// Retry-After, logged at Error once a period.
func (n *Node) refuse(w http.ResponseWriter, r *http.Request, writeError func(http.ResponseWriter, error), err error) {
	if c := n.refusedRequests.count(time.Now()); c > 0 {
		n.cfg.Logger.Error("cluster: a forwarded request was refused: it is not signed with this node's secret for this node, or it is late or played again",
			"node", n.cfg.NodeID, "from", r.Header.Get(HeaderNode), "remote", r.RemoteAddr, "error", err, "refused", c)
	}
	writeError(w, session.RetryLater(
		fmt.Errorf("%w: %v", session.ErrNotConnected, err), n.cfg.Renew+n.cfg.ConnectEstimate))
}

// sealer holds the answer to a forwarded request until it is complete,
// then writes it with its seal.
type sealer struct {
	w      http.ResponseWriter
	head   bool
	status int
	body   bytes.Buffer
	over   bool // the answer outgrew maxAnswer: it cannot be sealed
}

func (s *sealer) Header() http.Header { return s.w.Header() }

func (s *sealer) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
}

func (s *sealer) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.over || s.body.Len()+len(p) > maxAnswer {
		s.over = true
		return len(p), nil
	}
	return s.body.Write(p)
}

// finish writes the answer, sealed for the request signed sig, or with
// writeError a 500 when it is too large to seal.
func (s *sealer) finish(n *Node, sig string, writeError func(http.ResponseWriter, error)) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.over {
		n.cfg.Logger.Error("cluster: the answer to a forwarded request is too large to be sealed", "node", n.cfg.NodeID, "limit", maxAnswer)
		writeError(s.w, errors.New("an answer too large to seal"))
		return
	}
	body := s.body.Bytes()
	if s.w.Header().Get("Content-Type") == "" && len(body) > 0 {
		// Set now, under the seal: net/http would sniff it after.
		s.w.Header().Set("Content-Type", http.DetectContentType(body))
	}
	sealed := body
	if s.head {
		sealed = nil // the forwarding node reads no body
	}
	s.w.Header().Set(HeaderSeal, n.seal(sig, s.status, s.w.Header(), sealed))
	s.w.WriteHeader(s.status)
	_, _ = s.w.Write(body)
}

// seal is the seal of an answer to the request signed sig.
func (n *Node) seal(sig string, status int, h http.Header, body []byte) string {
	parts := []string{"bluetick answer", sig, strconv.Itoa(status)}
	for _, k := range sealedHeaders {
		parts = append(parts, k, strings.Join(h.Values(k), "\n"))
	}
	return base64.StdEncoding.EncodeToString(mac(n.cfg.Secret, append(parts, sum(body))...))
}

// sealed reports whether resp, with body, is the owner's answer to the
// request signed sig.
func (n *Node) sealed(sig string, resp *http.Response, body []byte) bool {
	got, err := base64.StdEncoding.DecodeString(resp.Header.Get(HeaderSeal))
	want, _ := base64.StdEncoding.DecodeString(n.seal(sig, resp.StatusCode, resp.Header, body))
	return err == nil && hmac.Equal(got, want)
}

// logCounter counts events and says when one log line is due for them:
// at the first, then at most once a logEvery, with the count since.
type logCounter struct {
	mu     sync.Mutex
	last   time.Time
	events int
}

// logEvery is how often at most a refusal that repeats is logged.
const logEvery = time.Minute

func (c *logCounter) count(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if !c.last.IsZero() && now.Sub(c.last) < logEvery {
		return 0
	}
	events := c.events
	c.last, c.events = now, 0
	return events
}
