package seenhandler

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// plan is a validated, normalised request: what to send where. It is
// built in one pass over the request (buildPlan) and not changed after.
type plan struct {
	session string
	chat    validate.JID
	chatID  string // chat.String(), once
	typ     session.ReceiptType
	ids     []planID
	// participant is the request-level sender for group messages; zero
	// when the request names none.
	participant validate.JID
	// unread: the request named a chat and no ids (messageId and
	// messageIds absent or null), asking for the chat's unread messages
	// (possible only with a session.UnreadLister).
	unread   bool
	idsField string // the ids' field name, for errors about them
	// async: the receipts are to be queued (see [WithLater]).
	async bool
	// typing: show the account typing in the chat after the receipts.
	typing bool
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
	if req.MessageIDs == nil && (req.MessageID.ok || dialect == dialectWasend) {
		n.ids = "messageId"
	}
	return n
}

// sessionSources are where a request names its session, for sessionName.
type sessionSources struct {
	// path is the session in the URL (see WithPathSession), or "".
	path string
	// header is Wawp's X-Instance-ID header, or "".
	header string
	// session and instance are the request's session and instance_id
	// (from the body, or the status endpoint's query); field is the name
	// the client used for them.
	session, instance, field string
	// fallback names the session when nothing else does: "default" on
	// WAHA's path, as WAHA's SendSeenRequest defaults it; "" elsewhere,
	// where the session is required.
	fallback string
	// single is the one session of a session.SingleRegistry, or "": it
	// is the session, whatever the other sources say.
	single string
}

// headerInstanceID is the header Wawp's SDK names the instance in (its
// token goes in Authorization: Bearer).
const headerInstanceID = "X-Instance-ID"

// sessionName picks the session from src: a single registry's one session
// (the other sources unread), else the URL's, else the request's session,
// instance_id or X-Instance-ID header, which must agree, else the
// fallback. A disagreement is a field error with rule "conflict" on the
// field the client sent (as session against instance_id, or the body
// against the URL). It returns the name to authenticate with and the
// field errors to report once the client is authenticated.
func sessionName(src sessionSources) (string, validate.Errors) {
	if src.single != "" {
		return src.single, nil
	}
	var errs validate.Errors
	sess, instance := src.session, src.instance
	if sess != "" && instance != "" && sess != instance {
		errs = append(errs, validate.FieldError{Field: "instance_id", Rule: "conflict",
			Message: "differs from session; send one of them"})
	}
	given, field := cmp.Or(sess, instance), src.field
	if h := src.header; h != "" {
		switch {
		case instance != "" && instance != h:
			errs = append(errs, validate.FieldError{Field: "instance_id", Rule: "conflict",
				Message: "differs from the " + headerInstanceID + " header; send one of them"})
		case instance == "" && sess != "" && sess != h:
			errs = append(errs, validate.FieldError{Field: "session", Rule: "conflict",
				Message: "differs from the " + headerInstanceID + " header; send one of them"})
		}
		if given == "" {
			given, field = h, headerInstanceID
		}
	}
	switch {
	case src.path != "" && given != "" && src.path != given:
		errs = append(errs, validate.FieldError{Field: field, Rule: "conflict",
			Message: "differs from the session in the URL"})
		return src.path, errs
	case src.path != "":
		return src.path, errs
	case given == "" && src.fallback != "":
		return src.fallback, errs
	case given == "":
		errs = append(errs, validate.FieldError{Field: src.field, Rule: "required", Message: "is required"})
	}
	header := "" // checked only when it names the session: else it agrees, or conflicts
	if field == headerInstanceID {
		header = src.header
	}
	for _, f := range []struct{ field, value string }{{"session", sess}, {"instance_id", instance}, {headerInstanceID, header}} {
		if f.value != "" {
			if err := validate.SessionName(f.value); err != nil {
				errs = append(errs, validate.Field(f.field, validate.TagSession, err))
			}
		}
	}
	return given, errs
}

// buildPlan validates and normalises req in one pass: each chat,
// participant and id is parsed once, and a value that does not parse
// becomes a field error built from that parse (the rules are the ones
// package validate registers as validator/v10 tags). Field errors come back
// as validate.Errors, all at once, after errs (the session's). The plan is
// built in p, its ids in room's array when it has room for them.
func (h *Handler) buildPlan(p *plan, room []planID, req *seenRequest, name string, names fieldNames, errs validate.Errors) (*plan, error) {
	*p = plan{session: name, typ: session.ReceiptRead, idsField: names.ids}
	// The chat: chatId or to, which must agree when both are given.
	chatField, chatGivenAs := "", ""
	for _, c := range []struct{ field, value string }{{"chatId", req.ChatID}, {"to", req.To}} {
		if c.value == "" {
			continue
		}
		jid, err := validate.NormalizeChat(c.value)
		switch {
		case err != nil:
			errs = append(errs, validate.Field(c.field, validate.TagChat, err))
		case p.chat.IsZero():
			p.chat, chatField, chatGivenAs = jid, c.field, c.value
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
	n := len(req.MessageIDs)
	if req.MessageID.ok {
		n++
	}
	switch {
	case n == 0:
	case n <= cap(room):
		p.ids = room[:0]
	default:
		p.ids = make([]planID, 0, min(n, h.cfg.maxMessageIDs+1)) // a list of bad ids costs no more than before
	}
	for index := idMessageID; index < len(req.MessageIDs); index++ {
		given := req.MessageID
		if index >= 0 {
			given = req.MessageIDs[index]
		}
		switch {
		case !given.ok && index == idMessageID:
			continue // absent or null: only messageIds, or the whole chat
		case !given.ok:
			errs = append(errs, validate.FieldError{Field: p.fieldOf(planID{index: index}), Rule: validate.TagMessageID,
				Message: "is null, not a message id"})
			continue
		}
		raw := given.s // "" is a bad id, not an absent one
		id, err := validate.ParseMessageID(raw)
		if err != nil {
			errs = append(errs, validate.Field(p.fieldOf(planID{index: index}), validate.TagMessageID, err))
			continue
		}
		if id.Serialized {
			switch {
			case p.chat.IsZero() && !chatGiven:
				p.chat = id.Chat
			case !p.chat.IsZero() && id.Chat != p.chat:
				errs = append(errs, validate.FieldError{Field: p.fieldOf(planID{index: index}), Rule: "same_chat",
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

	if req.Participant != "" {
		jid, err := validate.NormalizeParticipant(req.Participant)
		if err != nil {
			errs = append(errs, validate.Field("participant", validate.TagParticipant, err))
		}
		p.participant = jid
	}
	switch req.Type {
	case "", string(session.ReceiptRead):
	case string(session.ReceiptPlayed):
		p.typ = session.ReceiptPlayed
	default:
		errs = append(errs, validate.FieldError{Field: "type", Rule: "oneof", Message: "must be one of: read played"})
	}
	switch {
	case req.Async == nil:
		p.async = h.cfg.asyncByDefault
	case *req.Async && h.cfg.later == nil:
		errs = append(errs, validate.FieldError{Field: "async", Rule: "disabled",
			Message: "asynchronous requests are not enabled on this server; leave async out"})
	default:
		p.async = *req.Async
	}
	if ti := req.TypingIndicator; ti != nil {
		switch {
		case !ti.Type.ok:
			errs = append(errs, validate.FieldError{Field: "typing_indicator.type", Rule: "required", Message: "is required; the one type is text"})
		case ti.Type.s != "text":
			errs = append(errs, validate.FieldError{Field: "typing_indicator.type", Rule: "oneof", Message: "must be one of: text"})
		case req.Typing != nil && !*req.Typing:
			errs = append(errs, validate.FieldError{Field: "typing", Rule: "conflict", Message: "is false while typing_indicator asks for typing; send one of them"})
		}
	}
	p.typing = (req.Typing != nil && *req.Typing) || req.TypingIndicator != nil
	if p.chat.IsZero() && !chatGiven {
		errs = append(errs, validate.FieldError{Field: names.chat, Rule: "required", Message: "is required"})
	}
	switch {
	case req.MessageIDs != nil && len(req.MessageIDs) == 0:
		// [] is a list of no ids, not the absent list that asks for the
		// whole chat: a client whose list came out empty must not mark
		// every unread message of the chat read.
		errs = append(errs, validate.FieldError{Field: "messageIds", Rule: "min",
			Message: "is an empty list; send at least one message id, or leave messageIds out (or null) to read the chat's unread messages"})
	case len(p.ids) == 0 && !req.MessageID.ok && req.MessageIDs == nil && chatGiven:
		p.unread = true // the session decides: see unreadIDs
	case len(p.ids) == 0 && !req.MessageID.ok && req.MessageIDs == nil:
		errs = append(errs, errIDsRequired(names.ids))
	case len(p.ids) > h.cfg.maxMessageIDs:
		errs = append(errs, validate.FieldError{Field: names.ids, Rule: "max",
			Message: "has " + strconv.Itoa(len(p.ids)) + " distinct message ids; at most " +
				strconv.Itoa(h.cfg.maxMessageIDs) + " are allowed per request"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	p.chatID = jidString(p.chat, chatGivenAs)
	return p, nil
}

// jidString returns j.String(): given itself when that is how the client
// wrote it (a chat named in its normal form, as most are), rather than the
// same string made again.
func jidString(j validate.JID, given string) string {
	u := len(j.User)
	if len(given) == u+1+len(j.Server) && given[:u] == j.User && given[u] == '@' && given[u+1:] == j.Server {
		return given
	}
	return j.String()
}

func errIDsRequired(field string) validate.FieldError {
	return validate.FieldError{Field: field, Rule: "required", Message: "needs at least one message id"}
}
