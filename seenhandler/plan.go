package seenhandler

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// plan is a validated, normalised request: what to send where.
type plan struct {
	session string
	chat    validate.JID
	chatID  string // chat.String(), once
	typ     session.ReceiptType
	ids     []planID
	// participant is the request-level sender for group messages; zero
	// when the request names none.
	participant validate.JID
	// unread: the request named a chat but no ids, asking for the chat's
	// unread messages (possible only with a session.UnreadLister).
	unread   bool
	idsField string // the ids' field name, for errors about them
	// asked is the request's "async", nil when it says nothing.
	asked *bool
	// sentAt holds when the messages the session knows were sent, by id.
	sentAt map[string]time.Time
}

// noteSentAt remembers when message id was sent, if known.
func (p *plan) noteSentAt(id string, t time.Time) {
	if t.IsZero() {
		return
	}
	if p.sentAt == nil {
		p.sentAt = make(map[string]time.Time)
	}
	p.sentAt[id] = t
}

// newest picks, among the receipts sent, the message up to which the chat
// is read: the newest the session knows the time of, else the last one of
// the request.
func (p *plan) newest(sent []session.Receipt) session.ChatRead {
	last := sent[len(sent)-1]
	c := session.ChatRead{Chat: p.chatID, LastMessageID: last.MessageIDs[len(last.MessageIDs)-1],
		LastSender: last.Sender, Timestamp: last.Timestamp}
	var newest time.Time
	for _, rc := range sent {
		for _, id := range rc.MessageIDs {
			if t, ok := p.sentAt[id]; ok && !t.Before(newest) {
				newest = t
				c.LastMessageID, c.LastSender, c.Timestamp = id, rc.Sender, t
			}
		}
	}
	return c
}

// async reports whether p is to be sent asynchronously.
func (p *plan) async(o AsyncOptions) bool {
	if p.asked != nil {
		return *p.asked
	}
	return o.Default
}

// planID is one distinct message id of the request.
type planID struct {
	raw    string // as the client sent it
	index  int    // of messageIds; idMessageID or idUnread for the others
	parsed validate.MessageID
}

// raw returns the id as the client sent it, for the bare id.
func (p *plan) raw(id string) string {
	for _, pid := range p.ids {
		if pid.parsed.ID == id {
			return pid.raw
		}
	}
	return id
}

// planID.index for ids that did not come in messageIds.
const (
	idMessageID = -1 // the messageId field
	idUnread    = -2 // listed by the session's UnreadLister
)

// fieldOf names the field id came in, e.g. "messageIds[1]", for errors.
func (p *plan) fieldOf(id planID) string {
	switch id.index {
	case idMessageID:
		return "messageId"
	case idUnread:
		return p.idsField
	}
	return "messageIds[" + strconv.Itoa(id.index) + "]"
}

// fieldNames says which of the aliases the client used, so that errors name
// the fields it sent.
type fieldNames struct {
	session, chat, ids string
}

func namesFor(req *seenRequest, dialect string) fieldNames {
	n := fieldNames{session: "session", chat: "chatId", ids: "messageIds"}
	if req.InstanceID != "" || (req.Session == "" && dialect == dialectWawp) {
		n.session = "instance_id"
	}
	if req.To != "" || (req.ChatID == "" && dialect == dialectWasend) {
		n.chat = "to"
	}
	if req.MessageIDs == nil && (req.MessageID != "" || dialect == dialectWasend) {
		n.ids = "messageId"
	}
	return n
}

// sessionName picks the session from the URL, session and instance_id;
// those given must agree. It returns the name to authenticate with and the
// field errors to report once the client is authenticated.
func sessionName(pathName string, req *seenRequest, names fieldNames) (string, validate.Errors) {
	var errs validate.Errors
	if req.Session != "" && req.InstanceID != "" && req.Session != req.InstanceID {
		errs = append(errs, validate.FieldError{Field: "instance_id", Rule: "conflict",
			Message: "differs from session; send one of them"})
	}
	body := req.Session
	if body == "" {
		body = req.InstanceID
	}
	switch {
	case pathName != "" && body != "" && pathName != body:
		errs = append(errs, validate.FieldError{Field: names.session, Rule: "conflict",
			Message: "differs from the session in the URL"})
		return pathName, errs
	case pathName != "":
		return pathName, errs
	case body == "":
		errs = append(errs, validate.FieldError{Field: names.session, Rule: "required", Message: "is required"})
	}
	return body, errs
}

// buildPlan validates and normalises req. Field errors come back as
// validate.Errors, all at once.
func (h *Handler) buildPlan(req *seenRequest, name string, names fieldNames, errs validate.Errors) (*plan, error) {
	// validator/v10 names every broken field; it is only asked when the
	// same rules, checked directly, find one (most requests are valid, and
	// its reflection costs a third of a request).
	if !req.wellFormed() {
		if err := validate.Struct(h.v, req); err != nil {
			var fe validate.Errors
			if !errors.As(err, &fe) {
				return nil, err
			}
			errs = append(errs, fe...)
		}
	}
	var bad map[string]bool
	if len(errs) > 0 {
		bad = make(map[string]bool, len(errs))
		for _, fe := range errs {
			bad[fe.Field] = true
		}
	}
	p := &plan{session: name, typ: session.ReceiptRead, asked: req.Async}
	if req.Type == string(session.ReceiptPlayed) {
		p.typ = session.ReceiptPlayed
	}
	if req.Participant != "" && !bad["participant"] {
		p.participant, _ = validate.NormalizeParticipant(req.Participant)
	}

	// The chat: chatId or to, which must agree when both are given.
	chatField := ""
	for _, c := range []struct{ field, value string }{{"chatId", req.ChatID}, {"to", req.To}} {
		if c.value == "" || bad[c.field] {
			continue
		}
		jid, _ := validate.NormalizeChat(c.value)
		switch {
		case p.chat.IsZero():
			p.chat, chatField = jid, c.field
		case jid != p.chat:
			errs = append(errs, validate.FieldError{Field: c.field, Rule: "conflict",
				Message: "names another chat than " + chatField})
		}
	}
	chatGiven := req.ChatID != "" || req.To != ""

	// The ids: messageId then messageIds, deduplicated in order. Serialized
	// ids carry their chat, which must be the request's.
	var seen map[string]bool // for long lists; short ones are searched
	if len(req.MessageIDs) > 32 {
		seen = make(map[string]bool, len(req.MessageIDs)+1)
	}
	for index := idMessageID; index < len(req.MessageIDs); index++ {
		raw := req.MessageID
		if index >= 0 {
			raw = req.MessageIDs[index]
		}
		if raw == "" {
			continue
		}
		field := planID{index: index}
		if bad != nil && bad[p.fieldOf(field)] {
			continue
		}
		id, err := validate.ParseMessageID(raw)
		if err != nil { // validated above; kept for safety
			errs = append(errs, validate.Field(p.fieldOf(field), validate.TagMessageID, err))
			continue
		}
		if id.Serialized {
			switch {
			case p.chat.IsZero() && !chatGiven:
				p.chat = id.Chat
			case !p.chat.IsZero() && id.Chat != p.chat:
				errs = append(errs, validate.FieldError{Field: p.fieldOf(field), Rule: "same_chat",
					Message: "is a message of chat " + id.Chat.String() + ", not " + p.chat.String()})
				continue
			}
		}
		if seen != nil {
			if seen[id.ID] {
				continue
			}
			seen[id.ID] = true
		} else if slices.ContainsFunc(p.ids, func(x planID) bool { return x.parsed.ID == id.ID }) {
			continue
		}
		p.ids = append(p.ids, planID{raw: raw, index: index, parsed: id})
	}

	switch {
	case p.chat.IsZero() && !chatGiven:
		errs = append(errs, validate.FieldError{Field: names.chat, Rule: "required", Message: "is required"})
	}
	p.idsField = names.ids
	switch {
	case len(p.ids) == 0 && req.MessageID == "" && len(req.MessageIDs) == 0 && chatGiven:
		p.unread = true // the session decides: see unreadIDs
	case len(p.ids) == 0 && req.MessageID == "" && len(req.MessageIDs) == 0:
		errs = append(errs, errIDsRequired(names.ids))
	case len(p.ids) > h.cfg.maxMessageIDs:
		errs = append(errs, validate.FieldError{Field: names.ids, Rule: "max",
			Message: "has " + strconv.Itoa(len(p.ids)) + " distinct message ids; at most " +
				strconv.Itoa(h.cfg.maxMessageIDs) + " are allowed per request"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	p.chatID = p.chat.String()
	return p, nil
}

func errIDsRequired(field string) validate.FieldError {
	return validate.FieldError{Field: field, Rule: "required", Message: "needs at least one message id"}
}

// unreadIDs fills p.ids with the chat's unread messages, for a request that
// named a chat but no ids.
func (h *Handler) unreadIDs(ctx context.Context, sess session.Session, p *plan) error {
	lister, ok := session.As[session.UnreadLister](sess)
	if !ok {
		return validate.Errors{errIDsRequired(p.idsField)}
	}
	msgs, err := safeUnread(ctx, lister, p.chatID, h.cfg.maxMessageIDs)
	if err != nil {
		return backendErr(OpUnread, err)
	}
	for _, m := range msgs {
		if len(p.ids) == h.cfg.maxMessageIDs {
			break // the lister returned more than asked
		}
		id := validate.MessageID{ID: m.ID}
		if jid, err := validate.NormalizeParticipant(m.Sender); err == nil {
			id.Participant = jid
		}
		p.ids = append(p.ids, planID{raw: m.ID, index: idUnread, parsed: id})
		p.noteSentAt(m.ID, m.Timestamp)
	}
	return nil
}

// group resolves each id's sender and groups the ids into receipts, one per
// sender, in request order. Ids the account sent itself are skipped.
func (h *Handler) group(ctx context.Context, sess session.Session, p *plan) ([]session.Receipt, []Skipped, error) {
	resolver, _ := session.As[session.Resolver](sess)
	now := h.cfg.now()
	var (
		receipts []session.Receipt
		skipped  = []Skipped{}
		missing  validate.Errors
	)
	for _, id := range p.ids {
		fromMe := id.parsed.Serialized && id.parsed.FromMe
		sender := id.parsed.Participant
		if sender.IsZero() {
			sender = p.participant
		}
		if resolver != nil && !fromMe {
			m, err := safeResolve(ctx, resolver, p.chatID, id.parsed.ID)
			switch {
			case err == nil:
				fromMe = m.FromMe
				p.noteSentAt(id.parsed.ID, m.Timestamp)
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
			skipped = append(skipped, Skipped{MessageID: id.raw, Reason: SkipFromMe})
			continue
		}
		if !p.chat.IsGroup() && !p.chat.IsStatus() {
			sender = validate.JID{} // only group and status receipts name a sender
		} else if sender.IsZero() {
			missing = append(missing, validate.FieldError{Field: "participant", Rule: "required",
				Message: "is required for group chats: the sender of " + p.fieldOf(id) + " (" + id.parsed.ID + ") is not known"})
			continue
		}
		key := sender.String()
		i := slices.IndexFunc(receipts, func(r session.Receipt) bool { return r.Sender == key })
		if i < 0 {
			i = len(receipts)
			receipts = append(receipts, session.Receipt{
				Chat: p.chatID, Sender: key, Type: p.typ, Timestamp: now,
			})
		}
		receipts[i].MessageIDs = append(receipts[i].MessageIDs, id.parsed.ID)
	}
	if len(missing) > 0 {
		return nil, nil, missing
	}
	return receipts, skipped, nil
}
