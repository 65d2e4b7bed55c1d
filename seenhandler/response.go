package seenhandler

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// response is the body of a successful answer (the OpenAPI document's
// contract with clients): 200, 202 when queued, and
// 201 on WAHA's path (see [Handler.ServeHTTP]).
type response struct {
	// Success is always true.
	Success bool `json:"success"`
	// Acknowledged reports whether at least one receipt was handed to
	// WhatsApp; false when every id was skipped, and in a 202 (queued)
	// answer.
	Acknowledged bool `json:"acknowledged"`
	// Accepted is set in a 202 answer (a 201 on WAHA's path, whose every
	// success is a 201): the receipts are queued, to be sent
	// after a human-like delay (see [WithLater]), and Receipts lists them
	// with the type asked for; or the request ended while some were being
	// sent (InFlight).
	Accepted bool `json:"accepted,omitempty"`
	// Session is the session used.
	Session string `json:"session"`
	// ChatID is the normalised chat JID.
	ChatID string `json:"chatId"`
	// Receipts are the receipts sent, one per sender, in request order.
	Receipts []sentReceipt `json:"receipts"`
	// Skipped are the ids not sent, with the reason; never null.
	Skipped []skippedID `json:"skipped"`
	// ChatRead says what became of clearing the chat's unread badge on
	// the account's other devices (WhatsApp Web, Desktop, the phone) beyond
	// the read receipts, which clear it there by themselves: "done"
	// (cleared before the answer), "scheduled" (a
	// chat the account's owner had marked unread: an app-state patch clears
	// the mark in the background within moments), or "unavailable" (it
	// needed one, and nothing was or will be sent for this request: the
	// phone has not shared its app-state keys yet, or trying failed).
	// Absent when the receipts suffice (the chat was not marked unread),
	// when the session does not do that, when no receipt went out, and for
	// played receipts. See session.ChatReadState.
	ChatRead string `json:"chatRead,omitempty"`
	// ChatMarkedRead is the older, two-valued form of ChatRead, kept for
	// existing clients: true when "done", false when "unavailable", absent
	// otherwise ("scheduled" included: not cleared yet when answered).
	ChatMarkedRead *bool `json:"chatMarkedRead,omitempty"`
	// Typing says what became of a request's "typing": [TypingStarted],
	// TypingScheduled (a 202: after the queued receipts) or
	// TypingUnavailable. Absent when the request did not ask for it.
	Typing Typing `json:"typing,omitempty"`
	// Reason says why a request that named a chat and no message ids sent
	// no receipt: [ReasonNothingUnread] or [ReasonChatUnknown]. Absent
	// otherwise.
	Reason Reason `json:"reason,omitempty"`
	// Queued is set in a 202 answer whose session is down: the receipts
	// wait in the queue for it to come back (see [WithLater]).
	Queued *queuedInfo `json:"queued,omitempty"`
	// InFlight is set in a 202 answer whose request ended (its timeout, or
	// the client gone) while these receipts were being sent in a call
	// shared with other requests (group commit's batch, session.DecorateOptions.Coalesce; see
	// session.ErrInFlight): each goes out, or fails, without this request,
	// within the batch's send timeout. Sending them again may send them
	// twice. Type is the type asked for; Receipts lists those that did go
	// out.
	InFlight []sentReceipt `json:"inFlight,omitempty"`
}

// setChatRead sets ChatRead and ChatMarkedRead from state.
func (r *response) setChatRead(state session.ChatReadState) {
	r.ChatRead = string(state)
	if state == session.ChatReadDone || state == session.ChatReadUnavailable {
		marked := state == session.ChatReadDone
		r.ChatMarkedRead = &marked
	}
}

// queuedInfo says why the receipts of a 202 answer wait for more than their
// delay: their session is down. They are retried until RetryUntil, then
// counted failed.
type queuedInfo struct {
	// Reason is CodeSessionNotConnected or CodeSessionNotLoggedIn.
	Reason Code `json:"reason"`
	// Message is for people.
	Message string `json:"message"`
	// RetryUntil is when the receipts are given up if the session is still
	// down (as the [Later] says: seenhandler/queue's Options.RetryFor after
	// the request), in UTC.
	RetryUntil time.Time `json:"retryUntil"`
}

// sentReceipt is one receipt as the backend reports it sent.
type sentReceipt struct {
	// ChatID is the normalised chat JID the receipt went out to.
	ChatID string `json:"chatId"`
	// Sender is the normalised sender JID the receipt named, for group
	// messages and status updates.
	Sender string `json:"sender,omitempty"`
	// RequestedChatID and RequestedSender are the chat and sender as the
	// request named them, when the backend addressed the receipt otherwise
	// (e.g. to the LID a message arrived from, or to the sender it knows
	// the message by); absent when as requested.
	RequestedChatID string `json:"requestedChatId,omitempty"`
	RequestedSender string `json:"requestedSender,omitempty"`
	// MessageIDs are the bare message ids sent.
	MessageIDs []string `json:"messageIds"`
	// Type is the receipt type as sent: "read", "read-self", "played", …
	Type string `json:"type"`
}

// Typing says what became of a request's "typing": the "typing" of a
// successful answer.
type Typing string

// Typing states.
const (
	// TypingStarted: the account shows typing in the chat, cleared after
	// the handler's typing timeout (see [WithTypingTimeout]).
	TypingStarted Typing = "started"
	// TypingScheduled: typing starts once the queued receipts went out.
	TypingScheduled Typing = "scheduled"
	// TypingUnavailable: the session cannot show typing (it is not a
	// session.Typist, the chat is a channel or status, or trying failed).
	TypingUnavailable Typing = "unavailable"
)

// skippedID is a message id that was not sent.
type skippedID struct {
	// MessageID is the id as the client sent it.
	MessageID string `json:"messageId"`
	// Reason says why: [SkipFromMe], SkipAlreadyRead or SkipDuplicate.
	Reason Reason `json:"reason"`
}

// Reason says why a message id, or a whole request, sent no receipt: the
// "reason" of a "skipped" entry of a successful answer ([SkipFromMe],
// SkipAlreadyRead, SkipDuplicate), and the answer's own "reason" when a
// request that named a chat and no message ids sent nothing
// ([ReasonNothingUnread], ReasonChatUnknown). One type serves both: each
// is a reason nothing went out.
type Reason string

// Reasons a message id was skipped.
const (
	// SkipFromMe: the account itself sent the message, so there is nothing
	// to mark as read.
	SkipFromMe Reason = "from_me"
	// SkipAlreadyRead: the session knows the account has read the message
	// (session.Message.Read): on another of its devices, or through a
	// receipt sent before. WhatsApp Web never sends a read receipt twice.
	// Read requests only: a played receipt still goes out for a voice
	// note read but not played.
	SkipAlreadyRead Reason = "already_read"
	// SkipDuplicate: a receipt for the message was sent recently (see
	// session.DecorateOptions.Dedup).
	SkipDuplicate Reason = "duplicate"
)

// Reasons a request that named a chat and no message ids sent nothing.
const (
	// ReasonNothingUnread: the session knows the chat, and none of its
	// incoming messages is unread. The chat's unread badge is still
	// cleared on the account's other devices (chatMarkedRead), up to its
	// newest message the session knows.
	ReasonNothingUnread Reason = "nothing_unread"
	// ReasonChatUnknown: the session knows no message of the chat — none
	// arrived since it was paired, or they are older than what it keeps.
	// Nothing was sent; name the message ids to mark them.
	ReasonChatUnknown Reason = "chat_unknown"
)

// errorResponse is the body of every answer that is not a success.
type errorResponse struct {
	// Success is always false.
	Success bool `json:"success"`
	// Message is Error.Message again, at the top level where the WAHA SDKs
	// (and many HTTP clients) look for an error's text.
	Message string `json:"message"`
	// Error says what went wrong.
	Error errorBody `json:"error"`
	// Receipts are the receipts sent before the failure, if any: a request
	// with several senders may fail part way.
	Receipts []sentReceipt `json:"receipts,omitempty"`
}

// errorBody is the error member of an errorResponse.
type errorBody struct {
	// Code is a stable machine-readable code, e.g. "validation_failed".
	Code Code `json:"code"`
	// Message is for people.
	Message string `json:"message"`
	// Fields lists the fields at fault, at most the first 20; never null.
	Fields []validate.FieldError `json:"fields"`
	// FieldsTotal counts the fields at fault when Fields lists only the
	// first 20 of them; absent otherwise.
	FieldsTotal int `json:"fieldsTotal,omitempty"`
}

// buffers recycles the buffers request bodies are read into and answers
// encoded in.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putBuffer gives bp back to buffers, unless it grew too large to keep.
func putBuffer(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		buffers.Put(bp)
	}
}

// writeJSON writes v as the whole response, with HTML characters left as
// they are (the body is JSON, never HTML). A *response, the answer of
// nearly every request, is encoded without reflection (appendJSON): it pays
// for itself end to end, see seenRequest.decode for the numbers. The
// headers' values go in header, one per request, when not nil.
func writeJSON(w http.ResponseWriter, status int, v any, header *[2]string) {
	bp := buffers.Get().(*[]byte)
	body := (*bp)[:0]
	defer func() {
		*bp = body
		putBuffer(bp)
	}()
	if r, ok := v.(*response); ok {
		body = r.appendJSON(body)
	} else {
		buf := bytes.NewBuffer(body)
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			// Our response types always marshal; this is a programming error.
			status = http.StatusInternalServerError
			buf.Reset()
			buf.WriteString(`{"success":false,"message":"internal error","error":{"code":"internal","message":"internal error","fields":[]}}` + "\n")
		}
		body = buf.Bytes()
	}
	h := w.Header()
	if header == nil {
		header = new([2]string) // one allocation for both
	}
	header[0], header[1] = "application/json; charset=utf-8", "nosniff"
	vals := header[:]
	h["Content-Type"] = vals[0:1:1]
	h["X-Content-Type-Options"] = vals[1:2:2]
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// sentAs returns the receipt rc as the backend reports it sent with res.
func sentAs(rc session.Receipt, res session.Result) sentReceipt {
	sr := sentReceipt{ChatID: rc.Chat, Sender: rc.Sender, MessageIDs: rc.MessageIDs, Type: string(res.Type)}
	if res.Chat != "" && res.Chat != rc.Chat {
		sr.ChatID, sr.RequestedChatID = res.Chat, rc.Chat
	}
	if res.Sender != "" && res.Sender != rc.Sender {
		sr.Sender, sr.RequestedSender = res.Sender, rc.Sender
	}
	return sr
}
