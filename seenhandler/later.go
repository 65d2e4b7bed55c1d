package seenhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/bluetick/bluetick/seenhandler/internal/floodlog"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// EndpointAutoRead is the [RequestInfo] endpoint of an arrival auto-read
// deferred (or refused): one per message offered to [Handler.ReadLater].
const EndpointAutoRead Endpoint = "auto_read"

// Deferred is receipts whose sending is put off: an asynchronous request's
// ("async": true, answered 202 once a [Later] has them) or an arrival's
// that auto-read reads ([Handler.ReadLater]). The Later keeps it until it
// is due, then hands it to [Handler.SendDeferred].
type Deferred struct {
	// Session is the name of the session to send through: looked up again
	// when the receipts are due (perhaps by another process, after a
	// restart).
	Session string
	// Chat is the request's chat, to mark it read once receipts went out.
	Chat string
	// Receipts are the receipts to send, one per sender; at least one.
	Receipts []session.Receipt
	// Times holds when the messages were sent, by id, as far as the
	// session knew: the chat is marked read up to the newest.
	Times map[string]time.Time
	// Typing: once receipts went out, show the account typing in the chat
	// (the request's "typing"; see session.Typist).
	Typing bool
	// Token identifies the API token whose request deferred the receipts,
	// so that one token's can be bounded: a digest, never the token
	// itself; "" when no token was checked (auto-read, [WithNoAuth]).
	Token string
	// Auto: auto-read's, not a request's. When due, the whole chat is read
	// as WhatsApp Web reads a chat it opens: every message still unread
	// then, those that arrived meanwhile included.
	Auto bool
	// Due is when to send them: auto-read's arrivals come with theirs;
	// zero for a request's, whose delay the Later draws.
	Due time.Time
}

// Later keeps the receipts of asynchronous requests and sends them when
// due, through [Handler.SendDeferred]; package seenhandler/queue's Worker
// is one. Install it with [WithLater]. Its methods are called on the
// requests' goroutines and must be safe for concurrent use.
type Later interface {
	// Defer keeps d, to send later. It returns once d is as durable as the
	// Later makes it (the request's 202 is answered after), and until when
	// receipts whose session is down are retried (the 202's
	// queued.retryUntil). An error means nothing of d was kept: one
	// wrapping [ErrQueueFull] is answered 503 queue_full, an error wrapping
	// session.ErrStorageFull 503 storage_full, any other 500 internal (503
	// shutting_down once [Handler.Shutdown] began).
	Defer(ctx context.Context, d Deferred) (retryUntil time.Time, err error)
	// QueueStatus returns the counts of session name's deferred receipts,
	// for the status answer's "queue" object (zero for a session that
	// never had any). An error leaves "queue" out of the answer (logged).
	QueueStatus(ctx context.Context, name string) (QueueStatus, error)
}

// Errors a [Later] refuses receipts with when a bound of the receipts it
// keeps would be passed: answered 503 queue_full, nothing of the request
// kept, the answer's message naming the bound. ErrSessionQueueFull
// (the session's bound) and ErrTokenQueueFull (the API token's) wrap
// ErrQueueFull, the whole queue's.
var (
	ErrQueueFull        = errors.New("the asynchronous queue is full")
	ErrSessionQueueFull = fmt.Errorf("%w for this session", ErrQueueFull)
	ErrTokenQueueFull   = fmt.Errorf("%w for this token", ErrQueueFull)
)

// Attempt is what became of a [Deferred]'s receipts in one
// [Handler.SendDeferred].
type Attempt struct {
	// Sent counts the receipts handed to the session, and those not sent
	// because the account had read all their messages meanwhile (nothing
	// was left to send); Failed those given up, Reason the error code of
	// the last one (e.g. "session_not_found").
	Sent, Failed int
	Reason       Code
	// Retry are the receipts to send again later: their session is down,
	// their send timed out, or ctx ended first. RetryReason is the error
	// code of why (e.g. "session_not_connected"); Typing says whether the
	// typing indicator is still owed with them.
	Retry       []session.Receipt
	RetryReason Code
	Typing      bool
}

// WithLater makes the handler accept asynchronous requests ("async": true)
// and keep their receipts in l, which sends them later (see
// seenhandler/queue). Default: none; a request that asks for "async": true
// then gets 400 validation_failed (field async, rule disabled), so that no
// client defers receipts the operator did not agree to.
func WithLater(l Later) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("seenhandler: WithLater: nil Later")
		}
		c.later = l
		return nil
	}
}

// WithAsyncByDefault makes every request asynchronous unless it says
// "async": false. It needs [WithLater]. Default: a request is synchronous
// unless it says "async": true.
func WithAsyncByDefault() Option {
	return func(c *config) error {
		c.asyncByDefault = true
		return nil
	}
}

// errShuttingDown: the handler is shutting down.
var errShuttingDown = errors.New("the handler is shutting down")

// sendLater is the asynchronous counterpart of the sending loop of
// serveSeen: it hands the receipts to the [Later] and returns at once. It
// returns why they wait beyond their delay, when the session says it is
// down.
func (h *Handler) sendLater(ctx context.Context, x *exchange, sess session.Session, p *plan, receipts []session.Receipt, known messageTimes) (*queuedInfo, error) {
	until, err := h.deferReceipts(ctx, Deferred{Session: p.session, Chat: p.chatID, Receipts: receipts, Times: known,
		Typing: p.typing, Token: x.tokenID()})
	if err != nil {
		return nil, err
	}
	return h.queuedBecause(ctx, sess, until), nil
}

// deferReceipts gives d to the Later. A refusal other than a full queue's
// or storage's is the handler's shutting down, once it is.
func (h *Handler) deferReceipts(ctx context.Context, d Deferred) (time.Time, error) {
	until, err := h.cfg.later.Defer(ctx, d)
	switch {
	case err == nil, errors.Is(err, ErrQueueFull), errors.Is(err, session.ErrStorageFull):
	case h.closing.Load():
		return until, fmt.Errorf("%w: deferring: %w", errShuttingDown, err)
	default:
		return until, fmt.Errorf("deferring: %w", err)
	}
	return until, err
}

// queuedBecause says why receipts retried until until wait for more than
// their delay: the session reports it is down.
func (h *Handler) queuedBecause(ctx context.Context, sess session.Session, until time.Time) *queuedInfo {
	reporter, ok := session.As[session.StatusReporter](sess)
	if !ok {
		return nil
	}
	st := reporter.Status(ctx)
	q := &queuedInfo{RetryUntil: until.UTC()}
	switch {
	case !st.LoggedIn || !st.Paired:
		q.Reason = CodeSessionNotLoggedIn
		q.Message = "the session is not logged in to WhatsApp; the receipts are sent once it is, tried until retryUntil"
	case !st.Connected:
		q.Reason = CodeSessionNotConnected
		q.Message = "the session is not connected to WhatsApp; the receipts are sent once it is back, tried until retryUntil"
	default:
		return nil
	}
	return q
}

// SendDeferred sends d's receipts now, through the path of a synchronous
// request: the session is looked up, an auto-read's whole chat is read
// (see [Deferred].Auto), ids the account has read meanwhile are left out,
// the receipts go out, the [Observer] sees them, the chat is marked read
// and typing shown. A failure whose session is down or whose send timed
// out comes back in Attempt.Retry while before retryUntil (zero: this is
// the last attempt, everything unsent fails); so does every failure once
// ctx has ended (the caller is stopping; with a zero retryUntil those fail,
// as shutting_down). Failures given up are logged and observed. The
// [Later] calls it when d is due; the handler's own request timeout bounds
// each call to the session.
func (h *Handler) SendDeferred(ctx context.Context, d Deferred, retryUntil time.Time) Attempt {
	var (
		a         Attempt
		delivered []session.Receipt
		retryErr  error
	)
	if len(d.Receipts) == 0 {
		return a
	}
	p := &plan{session: d.Session, chatID: d.Chat, typ: d.Receipts[0].Type}
	lctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	sess, lookupErr := h.reg.Lookup(lctx, d.Session)
	cancel()
	if lookupErr == nil && sess == nil {
		lookupErr = fmt.Errorf("%w: the registry returned a nil session for %q", session.ErrSessionNotFound, d.Session)
	}
	if d.Auto && lookupErr == nil {
		if receipts, ok := h.readChat(ctx, sess, &d); ok {
			if len(receipts) == 0 { // read meanwhile: nothing is left to send
				a.Sent = len(d.Receipts)
			}
			d.Receipts = receipts
		}
	}
	for _, rc := range d.Receipts {
		var err error
		if lookupErr != nil {
			err = backendErr(OpLookup, lookupErr)
		} else {
			sctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
			if rc = h.stillUnread(sctx, d, sess, rc); len(rc.MessageIDs) == 0 {
				cancel()
				a.Sent++ // read meanwhile: nothing is left to send
				continue
			}
			out, _, serr := h.sendOne(sctx, sess, p, rc)
			cancel()
			if serr == nil {
				a.Sent++ // handed to the backend, which may have found them all duplicates
				if len(out.MessageIDs) > 0 {
					delivered = append(delivered, out)
					h.cfg.observeViews(ctx, d.Session, out, d.Times, d.Auto)
				}
				continue
			}
			err = backendErr(OpSend, serr)
		}
		transient := ctx.Err() != nil || errors.Is(err, session.ErrNotConnected) || errors.Is(err, session.ErrNotLoggedIn) ||
			errors.Is(err, context.DeadlineExceeded)
		switch {
		case transient && !retryUntil.IsZero() && (ctx.Err() != nil || time.Now().Before(retryUntil)):
			a.Retry = append(a.Retry, rc)
			retryErr = err
			continue
		case ctx.Err() != nil:
			a.Reason = CodeShuttingDown
			h.logDeferredFailed(d, rc, err, a.Reason)
		case transient && !retryUntil.IsZero():
			a.Reason = classify(err).code
			h.logDeferredFailed(d, rc, err, a.Reason+" until the retry deadline")
		default:
			a.Reason = classify(err).code
			h.logDeferredFailed(d, rc, err, a.Reason)
		}
		a.Failed++
	}
	if len(delivered) > 0 {
		mctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
		h.markChatRead(mctx, nil, sess, p, delivered, d.Times)
		cancel()
	}
	if d.Typing && a.Sent > 0 {
		tctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
		chat := d.Chat
		if len(delivered) > 0 {
			chat = delivered[0].Chat
		}
		h.startTyping(tctx, nil, sess, p, chat)
		cancel()
	}
	if len(a.Retry) > 0 {
		a.Typing = d.Typing && a.Sent == 0
		a.RetryReason = classify(retryErr).code
	}
	return a
}

// logDeferredFailed logs and observes a deferred receipt given up.
func (h *Handler) logDeferredFailed(d Deferred, rc session.Receipt, err error, reason Code) {
	h.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "async receipt failed",
		slog.String("session", d.Session), slog.String("chat", rc.Chat), slog.Any("message_ids", rc.MessageIDs),
		slog.String("reason", string(reason)), slog.String("error", err.Error()))
	h.cfg.observeBackend(context.Background(), d.Session, err)
}

// readChat plans auto-read's d, now due, as WhatsApp Web reads a chat when
// it is opened: every message of the chat still unread — those that
// arrived after the one that deferred d included — one receipt per sender,
// ids in arrival order, sent now (t is the send time). It adds the
// messages' times to d.Times. ok is false when the session cannot list the
// chat's unread messages, or listing fails: d's own receipts go out then,
// as deferred.
func (h *Handler) readChat(ctx context.Context, sess session.Session, d *Deferred) (receipts []session.Receipt, ok bool) {
	chat, err := validate.NormalizeChat(d.Chat)
	if err != nil {
		return nil, false
	}
	p := &plan{session: d.Session, chat: chat, chatID: d.Chat, typ: session.ReceiptRead, idsField: "messageIds", unread: true}
	x := &exchange{ctx: ctx}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	ids, known, err := h.unreadIDs(ctx, x, sess, p)
	if err == nil {
		receipts, _, err = h.group(ctx, x, sess, p, ids, &known, nil)
	}
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "auto-read: listing the chat's unread messages failed; sending the job's own",
			slog.String("session", d.Session), slog.String("chat", d.Chat), slog.String("error", err.Error()))
		return nil, false
	}
	// d's own messages go too, first (they arrived first), should the
	// session not list them: they were unread when deferred, and
	// stillUnread drops those read since.
	for i := len(d.Receipts) - 1; i >= 0; i-- {
		rc := d.Receipts[i]
		missing := slices.DeleteFunc(slices.Clone(rc.MessageIDs), func(id string) bool {
			return slices.ContainsFunc(receipts, func(r session.Receipt) bool { return slices.Contains(r.MessageIDs, id) })
		})
		if len(missing) == 0 {
			continue
		}
		k := slices.IndexFunc(receipts, func(r session.Receipt) bool { return r.Sender == rc.Sender })
		if k < 0 {
			receipts = slices.Insert(receipts, 0, session.Receipt{Chat: rc.Chat, Sender: rc.Sender, Type: rc.Type})
			k = 0
		}
		receipts[k].MessageIDs = append(missing, receipts[k].MessageIDs...)
	}
	now := time.Now() // when the chat is read, as the job's other times
	for i := range receipts {
		receipts[i].Timestamp = now
	}
	if len(known) > 0 {
		times := make(map[string]time.Time, len(d.Times)+len(known))
		maps.Copy(times, d.Times)
		maps.Copy(times, known)
		d.Times = times
	}
	return receipts, true
}

// stillUnread returns rc, a receipt of d now due, without the ids the
// account has read since d was deferred (on another of its devices, or
// through another request): WhatsApp Web never sends a read receipt twice.
// Only read receipts are checked (played goes out for a voice note read but
// not played), and only with a session.Resolver. An id the session cannot
// tell about stays: it was checked when deferred, and a store failing now
// must not lose its receipt.
func (h *Handler) stillUnread(ctx context.Context, d Deferred, sess session.Session, rc session.Receipt) session.Receipt {
	resolver, ok := session.As[session.Resolver](sess)
	if !ok || rc.Type != session.ReceiptRead {
		return rc
	}
	var read []string
	for _, id := range rc.MessageIDs {
		if m, err := resolver.ResolveMessage(ctx, rc.Chat, id); err == nil && m.Read {
			read = append(read, id)
		}
	}
	if len(read) == 0 {
		return rc
	}
	h.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "queued receipt: the account has read these messages meanwhile; not sending them",
		slog.String("session", d.Session), slog.String("chat", rc.Chat), slog.Any("message_ids", read))
	rc.MessageIDs = slices.DeleteFunc(slices.Clone(rc.MessageIDs), func(id string) bool { return slices.Contains(read, id) })
	return rc
}

// ReadLater defers the read receipt of an arrival (an incoming message a
// session offers to mark read by itself, see session.ArrivalSource), due
// at a.Due, through the path of an asynchronous request: the session's
// rate limit — a budget of auto-read's own, as large as the requests' but
// apart (key "auto:" and the session's name), so that strangers messaging
// the account cannot spend its API's budget; an arrival over it is
// dropped — the account's own messages and those it has read skipped,
// the [Later], and the [Observer] (RequestDone with [EndpointAutoRead]:
// 202 deferred, 200 skipped, or the refusal's status). A refusal is
// logged, at most once a minute per reason; it is returned too. It needs
// [WithLater]; package seenhandler/queue's Worker calls it for each
// arrival of its Options.Arrivals.
func (h *Handler) ReadLater(ctx context.Context, name string, a session.Arrival) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	x := &exchange{ctx: ctx, endpoint: EndpointAutoRead, start: time.Now(), status: http.StatusAccepted, asked: name, chat: a.Chat}
	err := h.readLater(ctx, x, name, a)
	if err == nil {
		h.observeDone(ctx, x, x.status, "")
		return nil
	}
	p := classify(err)
	c, _ := h.autoRefused.LoadOrStore(p.code, new(floodlog.Counter))
	if n := c.(*floodlog.Counter).Count(time.Now()); n > 0 {
		h.cfg.logger.LogAttrs(ctx, levelFor(p), "auto-read not queued",
			slog.Int("arrivals", n), slog.String("session", name), slog.String("chat", a.Chat), slog.String("message_id", a.ID),
			slog.String("code", string(p.code)), slog.String("error", err.Error()))
	}
	h.cfg.observeBackend(ctx, x.session, err)
	h.observeDone(ctx, x, p.status, p.code)
	return err
}

// readLater checks a as a request's plan would be, and defers its
// receipt, due at a.Due.
func (h *Handler) readLater(ctx context.Context, x *exchange, name string, a session.Arrival) error {
	if h.closing.Load() {
		return errShuttingDown
	}
	if h.cfg.later == nil {
		return errors.New("seenhandler: ReadLater needs WithLater")
	}
	chat, err := validate.NormalizeChat(a.Chat)
	if err != nil {
		return validate.Errors{validate.Field("chatId", validate.TagChat, err)}
	}
	id := validate.MessageID{ID: a.ID}
	if sender, err := validate.NormalizeParticipant(a.Sender); err == nil {
		id.Participant = sender
	}
	p := &plan{session: name, chat: chat, chatID: chat.String(), typ: session.ReceiptRead, idsField: "messageIds", async: true}
	sess, err := h.lookup(ctx, x, name, nil)
	if err != nil {
		return err
	}
	var known messageTimes
	known.note(a.ID, a.Timestamp)
	receipts, skipped, err := h.group(ctx, x, sess, p, []planID{{raw: a.ID, index: idUnread, parsed: id}}, &known, nil)
	if err != nil {
		return err
	}
	x.skipped = len(skipped)
	if len(receipts) == 0 {
		x.status = http.StatusOK // nothing to mark: the account's own, or read already
		return nil
	}
	for i := range receipts {
		receipts[i].Timestamp = a.Due // read then, as a person would have
	}
	if _, err := h.deferReceipts(ctx, Deferred{Session: name, Chat: p.chatID, Receipts: receipts, Times: known,
		Auto: true, Due: a.Due}); err != nil {
		return fmt.Errorf("auto-read: %w", err)
	}
	return nil
}

// Shutdown stops the handler taking requests: from now on each gets 503
// shutting_down (an arrival given to [Handler.ReadLater] too). It returns
// at once; the requests under way finish as they would. Stop in this
// order, each step with the same ctx: http.Server.Shutdown (no new
// connections, the requests under way answered), Handler.Shutdown, then
// the [Later]'s own (seenhandler/queue's Worker.Shutdown: auto-read ends,
// the queue is sent or kept), then the registry's Close (see
// session.Decorate) and the queue's database.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.closing.Store(true)
	h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "seen handler shut down: new requests get 503 shutting_down")
	return nil
}

// queueStatus reads session name's deferred receipts' counts; nil without
// [WithLater] or when the Later cannot answer.
func (h *Handler) queueStatus(ctx context.Context, name string) *QueueStatus {
	if h.cfg.later == nil {
		return nil
	}
	qs, err := h.cfg.later.QueueStatus(ctx, name)
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "reading the queue's counts failed",
			slog.String("session", name), slog.String("error", err.Error()))
		return nil
	}
	return &qs
}
