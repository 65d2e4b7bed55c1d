package seenhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// Handler is the "mark as seen" endpoint, an http.Handler that any router
// can mount. It is safe for concurrent use.
type Handler struct {
	reg        session.Registry
	cfg        config
	v          *validator.Validate
	async      *dispatcher
	decorators decorators
	closing    atomic.Bool
}

// New returns a Handler that finds sessions in reg. An authenticator is
// required: pass WithAuth, or WithNoAuth to accept every request.
// Configuration errors are returned here, never at request time.
func New(reg session.Registry, opts ...Option) (*Handler, error) {
	cfg, err := newConfig(reg, opts)
	if err != nil {
		return nil, err
	}
	return &Handler{reg: reg, cfg: cfg, v: validate.New(), async: newDispatcher(cfg.async)}, nil
}

// exchange is one request's state, for the answer and the log.
type exchange struct {
	dialect string
	session string
	chat    string
	sent    []SentReceipt
	skipped int
	status  int // of a successful answer: 200, or 202 when queued
}

// ServeHTTP answers one request; see the package documentation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{status: http.StatusOK}
	defer func() {
		// A bug of ours must not take the server down or leave the client
		// without an answer (nothing has been written before this point).
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.failed(w, r, x, fmt.Errorf("%w: handler: %v", errPanic, v), start)
		}
	}()
	resp, err := h.serve(w, r, x)
	if err != nil {
		h.failed(w, r, x, err, start)
		return
	}
	writeJSON(w, x.status, resp)
	if h.cfg.logger.Enabled(r.Context(), slog.LevelDebug) {
		h.cfg.logger.LogAttrs(r.Context(), slog.LevelDebug, "seen request done",
			slog.String("dialect", x.dialect), slog.String("session", x.session), slog.String("chat", x.chat),
			slog.Int("status", x.status), slog.Int("receipts", len(resp.Receipts)),
			slog.Int("skipped", len(resp.Skipped)), slog.Duration("took", time.Since(start)))
	}
	h.observeDone(r, x, x.status, "", start)
}

func (h *Handler) failed(w http.ResponseWriter, r *http.Request, x *exchange, err error, start time.Time) {
	p := writeError(w, err, x.sent, h.cfg)
	h.cfg.logger.LogAttrs(r.Context(), levelFor(p), "seen request failed",
		slog.String("dialect", x.dialect), slog.String("session", x.session), slog.String("chat", x.chat),
		slog.Int("status", p.status), slog.String("code", p.code), slog.Int("receipts_sent", len(x.sent)),
		slog.String("error", err.Error()), slog.Duration("took", time.Since(start)))
	h.cfg.observeBackend(r.Context(), x.session, err)
	h.observeDone(r, x, p.status, p.code, start)
}

func (h *Handler) observeDone(r *http.Request, x *exchange, status int, code string, start time.Time) {
	if h.cfg.observer == nil {
		return
	}
	info := RequestInfo{
		Endpoint: EndpointSeen, Session: x.session, Dialect: x.dialect,
		Status: status, Code: code, Latency: time.Since(start),
		Receipts: len(x.sent), Skipped: x.skipped,
	}
	for _, rc := range x.sent {
		info.Messages += len(rc.MessageIDs)
	}
	h.cfg.observer.RequestDone(r.Context(), info)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, x *exchange) (*Response, error) {
	if r.Method != http.MethodPost {
		return nil, &methodError{allow: http.MethodPost}
	}
	if h.closing.Load() {
		return nil, errShuttingDown
	}
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	req, err := decodeBody(w, r, h.cfg.maxBodyBytes)
	if err != nil {
		return nil, err
	}
	x.dialect = req.dialect(r)
	names := namesFor(req, x.dialect)

	pathName := ""
	if h.cfg.pathSession != nil {
		pathName = h.cfg.pathSession(r)
	}
	name, nameErrs := sessionName(pathName, req, names)
	x.session = name
	token := requestToken(r, req.AccessToken)
	if !h.cfg.noAuth {
		if err := safeAuth(r.Context(), h.cfg.auth, Credentials{Token: token, Session: name}); err != nil {
			return nil, err
		}
	}
	if token != "" && h.cfg.tokenLimiter != nil {
		if err := h.cfg.checkLimit(r.Context(), h.cfg.tokenLimiter, "token", tokenKey(token)); err != nil {
			return nil, err
		}
	}
	p, err := h.buildPlan(req, name, names, nameErrs)
	if err != nil {
		return nil, err
	}
	x.chat = p.chatID
	if err := h.cfg.checkLimit(r.Context(), h.cfg.sessionLimiter, "session", "session:"+p.session); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.timeout)
	defer cancel()
	sess, err := safeLookup(ctx, h.reg, p.session)
	if err != nil {
		return nil, backendErr(OpLookup, err)
	}
	sess = h.decorate(p.session, sess)
	if p.unread {
		if err := h.unreadIDs(ctx, sess, p); err != nil {
			return nil, err
		}
	}
	receipts, skipped, err := h.group(ctx, sess, p)
	if err != nil {
		return nil, err
	}
	x.skipped = len(skipped)
	if len(receipts) > 0 && p.async(h.cfg.async) {
		if err := h.sendLater(ctx, sess, p, receipts); err != nil {
			return nil, err
		}
		x.status = http.StatusAccepted
		planned := make([]SentReceipt, len(receipts))
		for i, rc := range receipts {
			planned[i] = SentReceipt{ChatID: rc.Chat, Sender: rc.Sender, MessageIDs: rc.MessageIDs, Type: string(rc.Type)}
		}
		return &Response{Success: true, Accepted: true, Session: p.session, ChatID: p.chatID,
			Receipts: planned, Skipped: skipped}, nil
	}
	var delivered []session.Receipt // as sent: duplicates left out
	for _, o := range h.sendAll(ctx, sess, p, receipts) {
		out, res, err := o.rc, o.res, o.err
		if err != nil {
			return nil, backendErr(OpSend, err)
		}
		for _, id := range res.Duplicates {
			skipped = append(skipped, Skipped{MessageID: p.raw(id), Reason: SkipDuplicate})
		}
		x.skipped = len(skipped)
		if len(out.MessageIDs) == 0 {
			continue // all sent recently: nothing went out
		}
		delivered = append(delivered, out)
		x.sent = append(x.sent, sentAs(out, res))
	}
	sent := x.sent
	if sent == nil {
		sent = []SentReceipt{}
	}
	return &Response{
		Success:        true,
		Acknowledged:   len(sent) > 0,
		Session:        p.session,
		ChatID:         p.chatID,
		Receipts:       sent,
		Skipped:        skipped,
		ChatMarkedRead: h.markChatRead(ctx, sess, p, delivered),
	}, nil
}

// outcome is what sendOne returned for one receipt.
type outcome struct {
	rc  session.Receipt
	res session.Result
	err error
}

// sendAll sends the receipts of a request, in order. One after another they
// stop at the first failure (the rest are not sent). With coalescing, where
// each receipt may wait a window for its batch, they go at once, so that a
// request waits one window rather than one per sender; the answer then lists
// every receipt that did go out before reporting the first failure.
func (h *Handler) sendAll(ctx context.Context, sess session.Session, p *plan, receipts []session.Receipt) []outcome {
	out := make([]outcome, 0, len(receipts))
	if h.cfg.coalesce == nil || h.cfg.coalesce.Window == 0 || len(receipts) == 1 {
		for _, rc := range receipts {
			o := outcome{}
			o.rc, o.res, o.err = h.sendOne(ctx, sess, p, rc)
			out = append(out, o)
			if o.err != nil {
				break
			}
		}
		return out
	}
	out = out[:len(receipts)]
	var wg sync.WaitGroup
	for i, rc := range receipts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &out[i]
			o.rc, o.res, o.err = h.sendOne(ctx, sess, p, rc)
		}()
	}
	wg.Wait()
	// Successes first, then the first failure: the answer reports both.
	slices.SortStableFunc(out, func(a, b outcome) int {
		switch {
		case a.err == nil && b.err != nil:
			return -1
		case a.err != nil && b.err == nil:
			return 1
		}
		return 0
	})
	return out
}

// sendOne sends rc and returns it as it went out (without the ids the
// backend reported as duplicates) with the backend's result (Type set).
// It logs what was sent.
func (h *Handler) sendOne(ctx context.Context, sess session.Session, p *plan, rc session.Receipt) (session.Receipt, session.Result, error) {
	res, err := safeSend(ctx, sess, rc)
	if err != nil {
		return rc, res, err
	}
	if res.Type == "" {
		res.Type = rc.Type
	}
	if len(res.Duplicates) > 0 {
		rc.MessageIDs = slices.DeleteFunc(slices.Clone(rc.MessageIDs), func(id string) bool {
			return slices.Contains(res.Duplicates, id)
		})
	}
	if len(rc.MessageIDs) > 0 {
		h.logSent(ctx, p.session, rc, res)
	}
	return rc, res, nil
}

// markChatRead asks a session.ChatMarker, best-effort, to clear the chat's
// unread badge on the account's other devices once read receipts went out.
// It returns nil when there is nothing to report.
func (h *Handler) markChatRead(ctx context.Context, sess session.Session, p *plan, sent []session.Receipt) *bool {
	marker, ok := session.As[session.ChatMarker](sess)
	if !ok || len(sent) == 0 || p.typ != session.ReceiptRead {
		return nil
	}
	err := safeMarkChat(ctx, marker, p.newest(sent))
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	marked := err == nil
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "marking chat read failed",
			slog.String("session", p.session), slog.String("chat", p.chatID), slog.String("error", err.Error()))
		h.cfg.observeBackend(ctx, p.session, backendErr(OpMarkChatRead, err))
	}
	return &marked
}

// logSent logs one receipt sent, at Info, as "receipt sent".
func (h *Handler) logSent(ctx context.Context, name string, rc session.Receipt, res session.Result) {
	if !h.cfg.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{slog.String("session", name), slog.String("chat", rc.Chat)}
	if rc.Sender != "" {
		attrs = append(attrs, slog.String("sender", rc.Sender))
	}
	attrs = append(attrs, slog.Any("message_ids", rc.MessageIDs), slog.String("type", string(res.Type)),
		slog.String("requested_type", string(rc.Type)))
	h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "receipt sent", attrs...)
}

// The backend and the authenticator are other people's code: a panic there
// becomes errPanic (500) and the server keeps serving.

func safeAuth(ctx context.Context, a Authenticator, c Credentials) (err error) {
	defer recoverInto(&err, "authenticator")
	return a.Authenticate(ctx, c)
}

func safeLookup(ctx context.Context, reg session.Registry, name string) (s session.Session, err error) {
	defer recoverInto(&err, "registry")
	s, err = reg.Lookup(ctx, name)
	if err == nil && s == nil {
		err = fmt.Errorf("%w: registry returned a nil session for %q", session.ErrSessionNotFound, name)
	}
	return s, err
}

func safeResolve(ctx context.Context, r session.Resolver, chat, id string) (m session.Message, err error) {
	defer recoverInto(&err, "resolver")
	return r.ResolveMessage(ctx, chat, id)
}

func safeUnread(ctx context.Context, l session.UnreadLister, chat string, limit int) (m []session.Message, err error) {
	defer recoverInto(&err, "unread lister")
	return l.UnreadMessages(ctx, chat, limit)
}

func safeMarkChat(ctx context.Context, m session.ChatMarker, c session.ChatRead) (err error) {
	defer recoverInto(&err, "chat marker")
	return m.MarkChatRead(ctx, c)
}

func safeSend(ctx context.Context, s session.Session, rc session.Receipt) (res session.Result, err error) {
	defer recoverInto(&err, "session")
	return s.SendReceipt(ctx, rc)
}

// safeCall runs call, turning a panic into errPanic.
func safeCall(who string, call func() error) (err error) {
	defer recoverInto(&err, who)
	return call()
}

func recoverInto(err *error, who string) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("%w: %s: %v", errPanic, who, v)
	}
}
