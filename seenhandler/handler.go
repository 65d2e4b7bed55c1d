package seenhandler

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluetick/bluetick/seenhandler/internal/floodlog"
	"github.com/bluetick/bluetick/session"
)

// Handler serves the "mark as seen" endpoint (ServeHTTP, an http.Handler
// that any router can mount) and the session status endpoint
// (see [Routes]); [Mount] registers them all. It is safe for
// concurrent use.
type Handler struct {
	reg     session.Registry
	cfg     config
	single  string // the one session of a session.SingleRegistry, else ""
	closing atomic.Bool
	// full counts the requests a full storage failed, for one Error line
	// a period rather than one per request; autoRefused the arrivals
	// ReadLater refused, by code, for one line a period each: a flood of
	// arrivals must not become a flood of log lines.
	full        floodlog.Counter
	autoRefused sync.Map // code → *floodlog.Counter
}

// New returns a [Handler] that finds sessions in reg. An authenticator is
// required: pass [WithAuth], or [WithNoAuth] to accept every request.
// Configuration errors are returned here, never at request time.
func New(reg session.Registry, opts ...Option) (*Handler, error) {
	cfg, err := newConfig(reg, opts)
	if err != nil {
		return nil, err
	}
	return &Handler{reg: reg, cfg: cfg, single: singleSession(reg)}, nil
}

// exchange is one request's state, for the answer, the log and the
// [Observer].
type exchange struct {
	// ctx is the request's context: with its timeout, and once the client
	// is authenticated, the [Authenticator]'s.
	ctx      context.Context
	endpoint Endpoint
	dialect  string
	start    time.Time
	// asked is the session the request names, for the log; session is set
	// once the client is authenticated and the registry found it, and only
	// then reaches the [Observer] (clients must not mint metric labels).
	asked, session string
	chat           string
	// op is the backend operation under way, so that a panic in it is
	// reported as that operation's failure.
	op       Op
	sent     []sentReceipt
	skipped  int
	status   int  // of a successful answer: 200, or 202 when queued; 201 on WAHA's seen path
	answered bool // the answer has been (or is being) written
	// token is the API token that authenticated the request, "" when none
	// did; see tokenID for what identifies it elsewhere.
	token, tokenDigest string
	// header holds the values of a successful answer's headers (see
	// writeJSON), made with the exchange rather than on their own.
	header [2]string
	// room is a "mark as seen" request's (see seenRoom), made with the
	// exchange; nil for the other endpoints.
	room *seenRoom
}

// newExchange returns an empty exchange for a request to ep: for speed, a
// "mark as seen" request's comes with its room in the same allocation.
func newExchange(ep Endpoint) *exchange {
	if ep != EndpointSeen {
		return new(exchange)
	}
	xr := new(struct {
		x    exchange
		room seenRoom
	})
	xr.x.room = &xr.room
	return &xr.x
}

// tokenID identifies the API token that authenticated the request (a
// digest: see the function tokenID), "" when none did. It is worked out
// when a limiter key or a queued job first asks for it: most requests need
// none, and a digest costs a SHA-256 and a string.
func (x *exchange) tokenID() string {
	if x.tokenDigest == "" && x.token != "" {
		x.tokenDigest = tokenID(x.token)
	}
	return x.tokenDigest
}

// ServeHTTP answers one "mark as seen" request; see the package
// documentation. A success is a 200 (202 when queued), and on WAHA's path
// ([PathWAHA]) a 201, queued or not, as WAHA's OpenAPI document says.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handle(w, r, EndpointSeen, h.serveSeen)
}

// endpoint returns the http.Handler of one of h's other endpoints, for
// [Routes]: serve answers its requests within [Handler]'s common frame
// (timeout, recovery, observation).
func (h *Handler) endpoint(ep Endpoint, serve endpointFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.handle(w, r, ep, serve) })
}

// endpointFunc serves one endpoint's request: it returns the answer (a
// *response, a *statusResponse, …) or the error to answer with.
type endpointFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange) (any, error)

// handle runs serve within the request's timeout and answers. It is the
// one place that recovers a panic on the request's goroutine: before the
// answer is written the client gets 500; after, the panic is logged and the
// answer stands.
func (h *Handler) handle(w http.ResponseWriter, r *http.Request, ep Endpoint, serve endpointFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.timeout)
	defer cancel()
	x := newExchange(ep)
	x.ctx, x.endpoint, x.start, x.status = ctx, ep, time.Now(), http.StatusOK
	defer func() {
		v := recover()
		switch {
		case v == nil:
			return
		case v == http.ErrAbortHandler:
			panic(v)
		case x.answered:
			h.cfg.logger.LogAttrs(ctx, slog.LevelError, "panic after the answer was written",
				slog.String("endpoint", string(ep)), slog.String("session", x.asked),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			return
		}
		err := fmt.Errorf("%w: %v", errPanic, v)
		h.cfg.logger.LogAttrs(ctx, slog.LevelError, "panic serving a request",
			slog.String("endpoint", string(ep)), slog.String("session", x.asked),
			slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		if x.op != "" {
			err = backendErr(x.op, err)
		}
		h.fail(x.ctx, w, x, err)
	}()
	resp, err := serve(ctx, w, r, x)
	ctx = x.ctx
	if err != nil {
		h.fail(ctx, w, x, err)
		return
	}
	if _, ok := resp.(forwarded); ok {
		h.observeDone(ctx, x, x.status, "") // answered by the session's owner
		return
	}
	x.answered = true
	writeJSON(w, x.status, resp, &x.header)
	if h.cfg.logger.Enabled(ctx, slog.LevelDebug) {
		h.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "request done",
			slog.String("endpoint", string(ep)), slog.String("dialect", x.dialect),
			slog.String("session", x.asked), slog.String("chat", x.chat),
			slog.Int("status", x.status), slog.Int("receipts", len(x.sent)),
			slog.Int("skipped", x.skipped), slog.Duration("took", time.Since(x.start)))
	}
	h.observeDone(ctx, x, x.status, "")
}

// fail answers err and reports it.
func (h *Handler) fail(ctx context.Context, w http.ResponseWriter, x *exchange, err error) {
	x.answered = true
	p := writeError(w, err, x.sent, h.cfg.retryAfter)
	level := levelFor(p)
	if p.code == CodeStorageFull {
		// Every request fails so until someone makes room: each at
		// Debug, the condition at Error once a floodlog.Every (the
		// Observer counts each).
		level = slog.LevelDebug
		if n := h.full.Count(time.Now()); n > 0 {
			h.cfg.logger.LogAttrs(ctx, slog.LevelError, "the storage is full: requests fail with 503 storage_full until there is room",
				slog.Int("failed", n), slog.String("error", err.Error()))
		}
	}
	h.cfg.logger.LogAttrs(ctx, level, "request failed",
		slog.String("endpoint", string(x.endpoint)), slog.String("dialect", x.dialect),
		slog.String("session", x.asked), slog.String("chat", x.chat),
		slog.Int("status", p.status), slog.String("code", string(p.code)), slog.Int("receipts_sent", len(x.sent)),
		slog.String("error", err.Error()), slog.Duration("took", time.Since(x.start)))
	h.cfg.observeBackend(ctx, x.session, err)
	h.observeDone(ctx, x, p.status, p.code)
}

func (h *Handler) observeDone(ctx context.Context, x *exchange, status int, code Code) {
	if h.cfg.observer.RequestDone == nil {
		return
	}
	info := RequestInfo{
		Endpoint: x.endpoint, Session: x.session, Dialect: x.dialect,
		Status: status, Code: code, Latency: time.Since(x.start),
		Receipts: len(x.sent), Skipped: x.skipped,
	}
	for _, rc := range x.sent {
		info.Messages += len(rc.MessageIDs)
	}
	h.cfg.observer.RequestDone(ctx, info)
}

// admit authenticates the request and takes it from the token's rate
// limit. It returns the context to serve the request in (the
// Authenticator's) and the token's reservation, to give back if a later
// check refuses the request. pre is what preauth already accepted: the
// Authenticator is not asked twice about the same credentials.
func (h *Handler) admit(ctx context.Context, r *http.Request, x *exchange, bodyToken string, pre preauthed) (context.Context, *Reservation, error) {
	if h.cfg.noAuth {
		return ctx, nil, nil // no token was checked: none is limited
	}
	token := pre.token(r, bodyToken)
	cred := Credentials{Token: token, Session: x.asked}
	actx := pre.ctx
	if !pre.ok || pre.cred != cred {
		checked, err := h.ask(ctx, cred, pre)
		if err != nil {
			return ctx, nil, err
		}
		actx = checked.ctx
	}
	if actx != nil {
		ctx = actx
		x.ctx = ctx
	}
	x.token = token
	if h.cfg.tokenLimiter == nil || token == "" {
		return ctx, nil, nil
	}
	key := "token:" + x.tokenID()
	if x.endpoint != EndpointSeen {
		// Status and session lists have a budget of their own: a dashboard
		// polling them must not spend the receipts'.
		key = "status:" + key
	}
	res, err := h.cfg.reserve(ctx, h.cfg.tokenLimiter, "token", key)
	return ctx, res, err
}

// authenticate checks the request's token (from a header, else
// bodyToken) for session name, unless pre checked those credentials
// already, and returns what it checked, for admit, which then does not
// ask the [Authenticator] again.
func (h *Handler) authenticate(ctx context.Context, r *http.Request, bodyToken, name string, pre preauthed) (preauthed, error) {
	if h.cfg.noAuth {
		return pre, nil
	}
	cred := Credentials{Token: pre.token(r, bodyToken), Session: name}
	if pre.ok && pre.cred == cred {
		return pre, nil
	}
	checked, err := h.ask(ctx, cred, pre)
	if err != nil {
		return pre, err
	}
	return checked, nil
}

// preauthed is what preauth accepted: ok with the credentials checked and
// the Authenticator's context.
type preauthed struct {
	ok   bool
	cred Credentials
	ctx  context.Context
	// match is, when the Authenticator is [NewStaticAuth]'s, where it
	// found cred.Token (see staticAuth.match).
	match int
}

// token returns the request's token, as requestToken(r, bodyToken) does,
// without reading r's headers again when pre checked a token: the token
// of a header, which takes precedence over the body's (preauth checks
// only a header's, and accepts none when there is none).
func (pre preauthed) token(r *http.Request, bodyToken string) string {
	if pre.ok && pre.cred.Token != "" {
		return pre.cred.Token
	}
	return requestToken(r, bodyToken)
}

// ask asks the Authenticator about cred and returns what it accepted. pre
// is what it accepted before for the same request, if anything: asked
// again about the same token, [NewStaticAuth]'s does not hash it again
// (nearly every request's token is asked about twice, see preauth).
func (h *Handler) ask(ctx context.Context, cred Credentials, pre preauthed) (preauthed, error) {
	static, ok := h.cfg.auth.(*staticAuth)
	if !ok || cred.Token == "" {
		actx, err := h.cfg.auth.Authenticate(ctx, cred)
		if err != nil {
			return preauthed{}, err
		}
		return preauthed{ok: true, cred: cred, ctx: actx}, nil
	}
	match := pre.match
	if !pre.ok || pre.cred.Token != cred.Token {
		match = static.match(cred.Token)
	}
	actx, err := static.allow(ctx, cred, match)
	if err != nil {
		return preauthed{}, err
	}
	return preauthed{ok: true, cred: cred, ctx: actx, match: match}, nil
}

// preauth refuses, before the body is read, a request whose token (in a
// header) the [Authenticator] does not know, so that strangers cannot make
// the server read and decode bodies. The session is the URL's, if any, else
// "": the token alone is checked, and admit checks it again with the
// request's session once the body is decoded, unless that is what preauth
// checked. A request with no token in a header (its token may be in the
// body) passes.
func (h *Handler) preauth(ctx context.Context, r *http.Request) (preauthed, error) {
	if h.cfg.noAuth {
		return preauthed{}, nil
	}
	token := requestToken(r, "")
	if token == "" {
		return preauthed{}, nil
	}
	cred := Credentials{Token: token, Session: cmp.Or(h.single, h.cfg.pathSession(r))}
	return h.ask(ctx, cred, preauthed{})
}

// lookup finds the session named name and takes the request from the
// session's rate limit, unless it asks for the session's status (which
// sends nothing to WhatsApp: polling it must not spend the receipts'
// budget); a refusal gives the token's reservation back.
func (h *Handler) lookup(ctx context.Context, x *exchange, name string, token *Reservation) (session.Session, error) {
	x.op = OpLookup
	sess, err := h.reg.Lookup(ctx, name)
	if err == nil && sess == nil {
		err = fmt.Errorf("%w: the registry returned a nil session for %q", session.ErrSessionNotFound, name)
	}
	x.op = ""
	if err != nil {
		return nil, backendErr(OpLookup, err)
	}
	x.session = name
	if h.cfg.sessionLimiter != nil && x.endpoint != EndpointStatus {
		key := "session:" + name
		if x.endpoint == EndpointAutoRead { // a budget of its own: strangers' messages spend no request's
			key = "auto:" + name
		}
		if _, err := h.cfg.reserve(ctx, h.cfg.sessionLimiter, "session", key); err != nil {
			token.cancel()
			return nil, err
		}
	}
	return sess, nil
}
