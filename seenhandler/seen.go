package seenhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// serveSeen serves one "mark as seen" request (see seen). On WAHA's path
// every success is a 201, the one answer WAHA's OpenAPI document declares
// for POST /api/sendSeen: clients generated from it (ogen, oapi-codegen)
// take no other status as success. The body is the same as elsewhere; a
// queued or in-flight answer says so with "accepted": true, where the
// other paths answer 202.
func (h *Handler) serveSeen(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange) (any, error) {
	resp, err := h.seen(ctx, w, r, x)
	if _, ok := resp.(*response); ok && err == nil && pathDialect(r) == dialectWAHA {
		x.status = http.StatusCreated
	}
	return resp, err
}

// seen serves one "mark as seen" request: decode, authenticate, validate,
// find the session, send.
func (h *Handler) seen(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange) (any, error) {
	if r.Method != http.MethodPost {
		return nil, &methodError{allow: http.MethodPost}
	}
	if h.closing.Load() {
		return nil, errShuttingDown
	}
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	pre, err := h.preauth(ctx, r)
	if err != nil {
		x.dialect = pathDialect(r) // the body, unread, cannot tell
		return nil, err
	}
	var req seenRequest
	body, err := decodeBody(w, r, h.cfg.maxBodyBytes, &req)
	if err != nil {
		return nil, err
	}
	x.dialect = req.dialect(r)
	names := namesFor(&req, x.dialect)
	src := sessionSources{path: h.cfg.pathSession(r), session: req.Session, instance: req.InstanceID, field: names.session, single: h.single}
	switch pathDialect(r) {
	case dialectWAHA:
		src.fallback = "default" // WAHA's SendSeenRequest: "session" defaults to "default"
	case dialectWawp:
		src.header = r.Header.Get(headerInstanceID) // where Wawp's SDK names the instance
	}
	name, nameErrs := sessionName(src)
	x.asked = name
	if len(nameErrs) == 0 && h.cfg.forwarder != nil {
		// Authenticated before it may go to another process: a stranger
		// gets the same 401 at the same point whether the session is
		// served here, elsewhere or nowhere, and reaches no other node.
		if pre, err = h.authenticate(ctx, r, req.AccessToken, name, pre); err != nil {
			putBuffer(body)
			return nil, err
		}
		if done, err := h.forward(ctx, w, r, x, name, *body); done || err != nil {
			putBuffer(body)
			return forwarded{}, err
		}
	}
	putBuffer(body)
	ctx, token, err := h.admit(ctx, r, x, req.AccessToken, pre)
	if err != nil {
		return nil, err
	}
	room := x.room // the plan, answer and slices of one, in x's allocation
	p, err := h.buildPlan(&room.plan, room.ids[:0], &req, name, names, nameErrs)
	if err != nil {
		return nil, err
	}
	x.chat = p.chatID
	sess, err := h.lookup(ctx, x, p.session, token)
	if err != nil {
		return nil, err
	}
	ids, known := p.ids, messageTimes(nil)
	if p.unread {
		if ids, known, err = h.unreadIDs(ctx, x, sess, p); err != nil {
			return nil, err
		}
	}
	// Queued receipts may wait long after the request: not in room, which
	// they would keep alive.
	rcRoom := &room.receipts
	if p.async {
		rcRoom = nil
	}
	receipts, skipped, err := h.group(ctx, x, sess, p, ids, &known, rcRoom)
	if err != nil {
		return nil, err
	}
	x.skipped = len(skipped)
	if len(receipts) > 0 && p.async {
		queued, err := h.sendLater(ctx, x, sess, p, receipts, known)
		if err != nil {
			return nil, err
		}
		x.status = http.StatusAccepted
		planned := make([]sentReceipt, len(receipts))
		for i, rc := range receipts {
			planned[i] = sentReceipt{ChatID: rc.Chat, Sender: rc.Sender, MessageIDs: rc.MessageIDs, Type: string(rc.Type)}
		}
		resp := &room.resp
		*resp = response{Success: true, Accepted: true, Session: p.session, ChatID: p.chatID,
			Receipts: planned, Skipped: skipped, Queued: queued}
		if p.typing {
			resp.Typing = TypingScheduled
		}
		return resp, nil
	}
	x.op = OpSend
	x.sent = room.sent[:0]
	outcomes := h.sendAll(ctx, sess, p, receipts, room.outcomes[:0])
	x.op = ""
	// As sent, duplicates left out; in receipts' array, which sendAll has
	// done with.
	delivered := receipts[:0]
	var inFlight []sentReceipt
	for _, o := range outcomes {
		if errors.Is(o.err, session.ErrInFlight) {
			// The request ended while a call shared with other requests
			// carried the receipt: it goes on without us.
			inFlight = append(inFlight, sentReceipt{ChatID: o.rc.Chat, Sender: o.rc.Sender, MessageIDs: o.rc.MessageIDs, Type: string(o.rc.Type)})
			h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "receipt still being sent when the request ended; answered as in flight",
				slog.String("session", p.session), slog.String("chat", o.rc.Chat), slog.Any("message_ids", o.rc.MessageIDs),
				slog.String("error", o.err.Error()))
			continue
		}
		if o.err != nil {
			return nil, backendErr(OpSend, o.err)
		}
		for _, id := range o.res.Duplicates {
			skipped = append(skipped, skippedID{MessageID: p.raw(id), Reason: SkipDuplicate})
		}
		x.skipped = len(skipped)
		if len(o.rc.MessageIDs) == 0 {
			continue // all sent recently: nothing went out
		}
		delivered = append(delivered, o.rc)
		x.sent = append(x.sent, sentAs(o.rc, o.res))
		h.cfg.observeViews(ctx, p.session, o.rc, known, false)
	}
	sent := x.sent // [], not null, when nothing was sent
	resp := &room.resp
	*resp = response{
		Success:      true,
		Acknowledged: len(sent) > 0,
		Session:      p.session,
		ChatID:       p.chatID,
		Receipts:     sent,
		Skipped:      skipped,
	}
	if len(inFlight) > 0 {
		// 202, not the 504 of a request that ran out of time: the receipts
		// are on their way, and a client that sent them again could send
		// them twice. The request's context has ended: nothing more is
		// asked of the session.
		x.status = http.StatusAccepted
		resp.Accepted, resp.InFlight = true, inFlight
		if p.typing {
			resp.Typing = TypingUnavailable
		}
		return resp, nil
	}
	if p.unread && len(ids) == 0 {
		var state session.ChatReadState
		resp.Reason, state = h.markChatNothingUnread(ctx, x, sess, p)
		resp.setChatRead(state)
	} else {
		resp.setChatRead(h.markChatRead(ctx, x, sess, p, delivered, known))
	}
	if p.typing {
		chat := p.chatID
		if len(x.sent) > 0 {
			chat = x.sent[0].ChatID // as the receipt went out
		}
		resp.Typing = h.startTyping(ctx, x, sess, p, chat)
	}
	return resp, nil
}

// seenRoom is room for what a "mark as seen" request of one message id and
// one receipt, nearly every request, builds (see seen): for speed, its
// plan, its answer and its slices of one live in the allocation of its
// exchange (see newExchange), where each would be one of its own.
type seenRoom struct {
	plan     plan
	resp     response
	ids      [1]planID
	receipts receiptRoom
	outcomes [1]outcome
	sent     [1]sentReceipt
}

// receiptRoom is room for one receipt of one message id, for group.
type receiptRoom struct {
	receipt [1]session.Receipt
	id      [1]string
}

// startTyping has the session show the account typing in chat, after the
// request's receipts, and returns the state to answer. A failure is logged
// and observed; it does not fail the request.
func (h *Handler) startTyping(ctx context.Context, x *exchange, sess session.Session, p *plan, chat string) Typing {
	typist, ok := session.As[session.Typist](sess)
	if !ok {
		return TypingUnavailable
	}
	if x != nil {
		x.op = OpTyping
	}
	err := typist.Typing(ctx, chat, h.cfg.typingTimeout)
	if x != nil {
		x.op = ""
	}
	switch {
	case err == nil:
		return TypingStarted
	case !errors.Is(err, errors.ErrUnsupported):
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "showing typing failed",
			slog.String("session", p.session), slog.String("chat", chat), slog.String("error", err.Error()))
		h.cfg.observeBackend(ctx, p.session, backendErr(OpTyping, err))
	}
	return TypingUnavailable
}

// messageTimes holds when the messages the session knows were sent, by id.
type messageTimes map[string]time.Time

// note remembers when message id was sent, if known; the map is made on
// first use.
func (m *messageTimes) note(id string, t time.Time) {
	if t.IsZero() {
		return
	}
	if *m == nil {
		*m = make(messageTimes)
	}
	(*m)[id] = t
}

// newest picks, among the receipts sent, the message up to which the chat
// is read: the newest the session knows the time of, else the last one of
// the request.
func (m messageTimes) newest(chat string, sent []session.Receipt) session.ChatRead {
	last := sent[len(sent)-1]
	c := session.ChatRead{Chat: chat, LastMessageID: last.MessageIDs[len(last.MessageIDs)-1],
		LastSender: last.Sender, Timestamp: last.Timestamp}
	var newest time.Time
	for _, rc := range sent {
		for _, id := range rc.MessageIDs {
			if t, ok := m[id]; ok && !t.Before(newest) {
				newest = t
				c.LastMessageID, c.LastSender, c.Timestamp = id, rc.Sender, t
			}
		}
	}
	return c
}

// unreadIDs lists the chat's unread messages, for a request that named a
// chat but no ids, with the times of those the session knows.
func (h *Handler) unreadIDs(ctx context.Context, x *exchange, sess session.Session, p *plan) ([]planID, messageTimes, error) {
	lister, ok := session.As[session.UnreadLister](sess)
	if !ok {
		return nil, nil, validate.Errors{errIDsRequired(p.idsField)}
	}
	x.op = OpUnread
	msgs, err := lister.UnreadMessages(ctx, p.chatID, h.cfg.maxMessageIDs)
	x.op = ""
	if err != nil {
		return nil, nil, backendErr(OpUnread, err)
	}
	ids := make([]planID, 0, min(len(msgs), h.cfg.maxMessageIDs))
	var known messageTimes
	for _, m := range msgs {
		if len(ids) == h.cfg.maxMessageIDs {
			break // the lister returned more than asked
		}
		id := validate.MessageID{ID: m.ID}
		if jid, err := validate.NormalizeParticipant(m.Sender); err == nil {
			id.Participant = jid
		}
		ids = append(ids, planID{raw: m.ID, index: idUnread, parsed: id})
		known.note(m.ID, m.Timestamp)
	}
	return ids, known, nil
}

// group resolves each id's sender and groups the ids into receipts, one per
// sender, in request order. Ids the account sent itself are skipped, and,
// for read receipts, ids the account has already read. It notes in known
// the times of the messages the session resolved. A first receipt of one
// id is made in room, unless nil.
func (h *Handler) group(ctx context.Context, x *exchange, sess session.Session, p *plan, ids []planID, known *messageTimes, room *receiptRoom) ([]session.Receipt, []skippedID, error) {
	resolver, _ := session.As[session.Resolver](sess)
	now := time.Now()
	var (
		receipts []session.Receipt
		skipped  = []skippedID{}
		missing  validate.Errors
	)
	if room != nil {
		receipts = room.receipt[:0]
	}
	for _, id := range ids {
		fromMe := id.parsed.Serialized && id.parsed.FromMe
		read := false
		sender := id.parsed.Participant
		if sender.IsZero() {
			sender = p.participant
		}
		if resolver != nil && !fromMe {
			x.op = OpResolve
			m, err := resolver.ResolveMessage(ctx, p.chatID, id.parsed.ID)
			x.op = ""
			switch {
			case err == nil:
				fromMe, read = m.FromMe, m.Read
				known.note(id.parsed.ID, m.Timestamp)
				if sender.IsZero() && m.Sender != "" {
					if jid, err := validate.NormalizeParticipant(m.Sender); err == nil {
						sender = jid
					}
				}
			case !errors.Is(err, session.ErrMessageNotFound):
				return nil, nil, backendErr(OpResolve, err)
			}
		}
		if fromMe {
			skipped = append(skipped, skippedID{MessageID: id.raw, Reason: SkipFromMe})
			continue
		}
		if read && p.typ == session.ReceiptRead {
			skipped = append(skipped, skippedID{MessageID: id.raw, Reason: SkipAlreadyRead})
			continue
		}
		switch {
		case !p.chat.IsGroup() && !p.chat.IsStatus():
			sender = validate.JID{} // only group and status receipts name a sender
		case sender.IsZero():
			kind, whose := "group chats", "the sender"
			if p.chat.IsStatus() {
				kind, whose = "status updates", "the author"
			}
			missing = append(missing, validate.FieldError{Field: "participant", Rule: "required",
				Message: "is required for " + kind + ": " + whose + " of " + p.fieldOf(id) + " (" + id.parsed.ID + ") is not known"})
			continue
		}
		key := sender.String()
		i := slices.IndexFunc(receipts, func(r session.Receipt) bool { return r.Sender == key })
		if i < 0 {
			i = len(receipts)
			receipts = append(receipts, session.Receipt{
				Chat: p.chatID, Sender: key, Type: p.typ, Timestamp: now,
			})
			switch {
			case i > 0:
			case room != nil && len(ids) <= len(room.id):
				receipts[0].MessageIDs = room.id[:0]
			default: // nearly always the only one: room for every id
				receipts[0].MessageIDs = make([]string, 0, len(ids))
			}
		}
		receipts[i].MessageIDs = append(receipts[i].MessageIDs, id.parsed.ID)
	}
	if len(missing) > 0 {
		return nil, nil, missing
	}
	return receipts, skipped, nil
}

// outcome is what sendOne returned for one receipt.
type outcome struct {
	rc  session.Receipt
	res session.Result
	err error
}

// sendAll sends the receipts of a request (one per sender) at once, so
// that a request waits for its slowest receipt rather than for the sum
// (with a coalescing session each may wait for its batch). It returns every
// outcome, the successes first: the answer then lists every receipt that
// did go out before reporting the first failure. The outcomes go in
// room's array when it has room for them.
func (h *Handler) sendAll(ctx context.Context, sess session.Session, p *plan, receipts []session.Receipt, room []outcome) []outcome {
	if cap(room) < len(receipts) {
		room = make([]outcome, len(receipts))
	}
	// out is assigned once: the goroutines below capture it, and a
	// variable assigned twice would be captured by reference, on the heap.
	out := room[:len(receipts)]
	if len(receipts) == 1 { // the common case: no goroutine
		o := &out[0]
		o.rc, o.res, o.err = h.sendOne(ctx, sess, p, receipts[0])
		return out
	}
	var wg sync.WaitGroup
	for i, rc := range receipts {
		wg.Go(func() {
			o := &out[i]
			defer func() { // nobody else can recover in this goroutine
				if v := recover(); v != nil {
					o.err = fmt.Errorf("%w: session: %v", errPanic, v)
				}
			}()
			o.rc, o.res, o.err = h.sendOne(ctx, sess, p, rc)
		})
	}
	wg.Wait()
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
	res, err := sess.SendReceipt(ctx, rc)
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

// markChatRead has the session clear, best-effort, the chat's unread badge
// on the account's other devices once read receipts went out, with a
// session.ChatReadMarker. It returns what became of it, or "" when there is nothing to report.
func (h *Handler) markChatRead(ctx context.Context, x *exchange, sess session.Session, p *plan, sent []session.Receipt, known messageTimes) session.ChatReadState {
	if len(sent) == 0 || p.typ != session.ReceiptRead {
		return ""
	}
	state, _ := h.askChatRead(ctx, x, sess, p, known.newest(p.chatID, sent))
	return state
}

// markChatNothingUnread answers a chat-only request for which the session
// listed no unread message: it says why nothing was sent, and still asks
// the session to clear the chat's unread badge on the account's other
// devices (WhatsApp Web, Desktop, the phone), up to the newest message the
// session knows of the chat (a ChatRead without LastMessageID) — the badge
// may count messages the session never saw, or a chat marked unread by
// hand. A session that knows no message of the chat says so with
// session.ErrMessageNotFound: the reason is then [ReasonChatUnknown] and
// nothing is sent.
func (h *Handler) markChatNothingUnread(ctx context.Context, x *exchange, sess session.Session, p *plan) (Reason, session.ChatReadState) {
	if p.typ != session.ReceiptRead {
		return ReasonNothingUnread, ""
	}
	state, err := h.askChatRead(ctx, x, sess, p, session.ChatRead{Chat: p.chatID})
	if errors.Is(err, session.ErrMessageNotFound) {
		return ReasonChatUnknown, ""
	}
	return ReasonNothingUnread, state
}

// askChatRead asks the session to mark c read, best-effort, with a
// session.ChatReadMarker. A failure is logged and observed, and reported as unavailable; "" when the
// session does not do it (errors.ErrUnsupported, or no ChatReadMarker) or
// knows no message of the chat (session.ErrMessageNotFound, returned for
// the caller to tell).
func (h *Handler) askChatRead(ctx context.Context, x *exchange, sess session.Session, p *plan, c session.ChatRead) (session.ChatReadState, error) {
	marker, ok := session.As[session.ChatReadMarker](sess)
	if !ok {
		return "", nil // before x.op is set: a later panic is not this operation's
	}
	if x != nil {
		x.op = OpMarkChatRead
	}
	state, err := marker.MarkChatRead(ctx, c)
	if x != nil {
		x.op = ""
	}
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, session.ErrMessageNotFound) {
		return "", err
	}
	if err != nil {
		state = session.ChatReadUnavailable
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "marking chat read failed",
			slog.String("session", p.session), slog.String("chat", p.chatID), slog.String("error", err.Error()))
		h.cfg.observeBackend(ctx, p.session, backendErr(OpMarkChatRead, err))
	}
	return state, err
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
