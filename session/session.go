package session

import (
	"context"
	"time"
)

// ReceiptType is the kind of receipt a [Receipt] asks for, or the kind a
// backend reports it actually sent.
type ReceiptType string

// Receipt types. Callers ask for [ReceiptRead] or [ReceiptPlayed]; a backend
// may report a different type as sent, e.g. [ReceiptReadSelf] or
// [ReceiptPlayedSelf] outside groups when the account's read-receipt privacy
// setting is "nobody" (WhatsApp always sends read and played in groups), or
// [ReceiptView] for a channel.
const (
	// ReceiptRead marks messages as read: the sender sees blue ticks.
	ReceiptRead ReceiptType = "read"
	// ReceiptReadSelf marks messages as read on the account's own devices
	// only; the sender sees no blue ticks.
	ReceiptReadSelf ReceiptType = "read-self"
	// ReceiptPlayed marks voice notes and view-once media as played.
	ReceiptPlayed ReceiptType = "played"
	// ReceiptPlayedSelf marks voice notes and view-once media as played on
	// the account's own devices only; the sender does not see them played.
	ReceiptPlayedSelf ReceiptType = "played-self"
	// ReceiptView is the receipt WhatsApp channels use for "seen".
	ReceiptView ReceiptType = "view"
)

// MaxReceiptIDs is the most message ids one receipt stanza carries:
// WhatsApp Web caps an aggregate receipt at 256 ids. A backend sends a
// [Receipt] with more ids as several stanzas; the coalescing of [Decorate] never batches more.
const MaxReceiptIDs = 256

// Receipt is one read receipt: one or more messages, all in the same chat and
// all from the same sender.
type Receipt struct {
	// Chat is the normalised JID of the chat, e.g. "123456789@s.whatsapp.net",
	// "120363012345678901@g.us", "123@lid" or "120363@newsletter" (see
	// package validate).
	Chat string
	// Sender is the normalised JID of the author of the messages. It is set
	// for group chats and empty for direct chats and channels.
	Sender string
	// MessageIDs are the WhatsApp message ids, at least one, unique.
	MessageIDs []string
	// Type is ReceiptRead or ReceiptPlayed.
	Type ReceiptType
	// Timestamp is when the messages were seen.
	Timestamp time.Time
}

// Result is what a backend reports it actually sent for a [Receipt].
type Result struct {
	// Type is the receipt type as sent, which may differ from the one asked
	// for (e.g. ReceiptReadSelf instead of ReceiptRead, ReceiptView for a
	// channel).
	Type ReceiptType
	// Chat and Sender are the chat and sender JIDs the receipt went out
	// to when they differ from the Receipt's, e.g. the LID a message
	// arrived from where the Receipt named the phone number, or the sender
	// a backend knows the message by; empty when as asked. When the ids
	// went out to several addresses, these are the first's.
	Chat, Sender string
	// Duplicates are ids of the receipt that were not sent because they
	// had been sent recently (see Dedup); the others were. When every id is
	// a duplicate nothing was sent and Type is the type asked for.
	Duplicates []string
}

// ContextBound is implemented by a Session that says whether its SendReceipt
// returns soon after its context ends, whatever it was doing then: a
// backend that passes the context down to every wait (its queries, its
// writes) and starts nothing that outlives the call unless that goes on by
// itself. Group commit ([Decorate]) uses it to make its cost proportional to
// its use: a batch that holds one receipt alone when it goes out is sent
// from its caller's goroutine with the caller's context when the Session it
// wraps is bound, and from a goroutine of its own otherwise, so that the
// caller can still return at its deadline from a backend that does not
// stop. Wrappers must not forward it from the Session they wrap unless
// they too return when their context ends; [As] does not look for it.
type ContextBound interface {
	Session
	// BoundByContext reports whether SendReceipt returns soon after its
	// context ends.
	BoundByContext() bool
}

// boundByContext reports whether s itself says it is [ContextBound].
func boundByContext(s Session) bool {
	b, ok := s.(ContextBound)
	return ok && b.BoundByContext()
}

// wrapper is implemented by Session decorators (those of [Decorate], and
// any of an app's own): Unwrap returns the Session they decorate.
type wrapper interface {
	Unwrap() Session
}

// As finds the first Session in s's chain of decorators, s included, that
// implements T. A decorator is a Session with a method Unwrap() Session
// returning the Session it decorates: the optional interfaces
// ([Resolver], [UnreadLister], [ChatReadMarker], [StatusReporter], …) are
// found through it, so a decorator need not forward them.
func As[T any](s Session) (T, bool) {
	for s != nil {
		if t, ok := s.(T); ok {
			return t, true
		}
		w, ok := s.(wrapper)
		if !ok {
			break
		}
		s = w.Unwrap()
	}
	var zero T
	return zero, false
}

// Session sends receipts through one WhatsApp account.
//
// SendReceipt must be safe for concurrent use. It returns once the receipt
// has been handed to WhatsApp (or has failed), honouring ctx's deadline and
// cancellation. Errors that describe the session's state wrap the sentinel
// errors of this package ([ErrNotConnected], [ErrNotLoggedIn], …) so callers
// can test them with errors.Is; any other error is treated as an internal
// failure. A Session must not send anything for an invalid receipt (no
// message ids, no chat) and returns an error wrapping [ErrInvalidReceipt].
//
// What each backend of this module returns:
//   - the whatsmeow backend (package session/whatsmeow): ctx's error;
//     [ErrInvalidReceipt] (no ids, a type other than read or played, a chat
//     that is no JID, a group or status receipt with no sender for an id
//     whose sender it does not know, a channel id that is neither a numeric
//     server id nor a message it saw); [ErrNotLoggedIn] (the device is not
//     paired, with a [RetryAfter] while pairing waits to reach WhatsApp);
//     [ErrNotConnected] (the connection is down, not yet authenticated, or
//     the account could not go online); [ErrNotReady] (connected, waiting
//     for WhatsApp: the account's read-receipt setting, or the push name
//     after pairing); context.DeadlineExceeded when WhatsApp does not
//     answer a query in time; anything else (its message store failing,
//     whatsmeow failing) as an internal error. Never [ErrMessageNotFound]:
//     an id it never saw goes out as asked.
//   - sessiontest.Fake: the same checks for [ErrInvalidReceipt], ctx's
//     error, and whatever error a test injects (a Fault); nothing else.
//   - the decorators of [Decorate] pass their Session's errors on;
//     coalescing adds [ErrInFlight].
type Session interface {
	SendReceipt(ctx context.Context, r Receipt) (Result, error)
}

// SessionFunc adapts a function to the [Session] interface.
type SessionFunc func(ctx context.Context, r Receipt) (Result, error)

// SendReceipt calls f(ctx, r).
func (f SessionFunc) SendReceipt(ctx context.Context, r Receipt) (Result, error) {
	return f(ctx, r)
}

// Message is what a [Resolver] knows about a message the session has seen.
type Message struct {
	// Chat is the normalised chat JID.
	Chat string
	// ID is the message id.
	ID string
	// Sender is the normalised JID of the author.
	Sender string
	// FromMe reports whether the session's own account sent the message.
	FromMe bool
	// Read reports whether the account has read the message: a read or
	// played receipt for it went out, through this session or from another
	// of the account's devices (the phone, WhatsApp Web). WhatsApp Web
	// never sends a read receipt twice: the HTTP handler sends none for
	// it. It says nothing of a voice note being played: a played receipt
	// for a message read but not played still goes out.
	Read bool
	// Timestamp is when the message was sent; zero when unknown.
	Timestamp time.Time
}

// Resolver is implemented by sessions that remember the messages they have
// seen. When the session returned by a [Registry] implements Resolver, the
// HTTP handler asks it about each message id to fill in a group message's
// sender when the request does not name one, to skip the account's own
// messages, and to skip read receipts for messages the account has already
// read (Message.Read) — also when a queued receipt is due, since the
// account may have read them meanwhile.
//
// ResolveMessage must be safe for concurrent use. It returns an error
// wrapping [ErrMessageNotFound] when the message is unknown; the handler then
// relies on the request alone. Any other error fails the request.
type Resolver interface {
	ResolveMessage(ctx context.Context, chat, id string) (Message, error)
}

// UnreadLister is implemented by sessions that know which incoming messages
// of a chat are still unread. When a request names a chat but no message
// ids, the HTTP handler marks those messages as read; without an
// UnreadLister such a request is refused.
//
// UnreadMessages must be safe for concurrent use. It returns at most limit
// messages, the newest ones, oldest first; none of them FromMe or Read.
type UnreadLister interface {
	UnreadMessages(ctx context.Context, chat string, limit int) ([]Message, error)
}

// ChatRead says which chat to mark as read on the account's other devices,
// and up to which message.
type ChatRead struct {
	// Chat is the normalised chat JID.
	Chat string
	// LastMessageID is the newest message read, and LastSender its sender
	// (empty in direct chats). Empty: up to the newest message of the chat
	// the session knows (a request that found nothing unread).
	LastMessageID string
	LastSender    string
	// Timestamp is the LastMessageID's time, or when it was read.
	Timestamp time.Time
}

// ChatReadState is what became of a request to clear a chat's unread badge
// on the account's other devices.
type ChatReadState string

// Chat read states, as [ChatReadMarker] returns them and the HTTP handler
// reports them in chatRead.
const (
	// ChatReadDone: the badge was cleared before the call returned.
	ChatReadDone ChatReadState = "done"
	// ChatReadScheduled: the chat needs more than its read receipts (it
	// was marked unread) and the session will clear the badge in the
	// background, shortly, up to the chat's newest message read by then; a
	// failure then is logged, not reported.
	ChatReadScheduled ChatReadState = "scheduled"
	// ChatReadUnavailable: nothing was or will be sent for this call: the
	// session cannot clear badges now (a WhatsApp session, until the phone
	// has shared its app-state keys after pairing), or trying failed.
	ChatReadUnavailable ChatReadState = "unavailable"
)

// ChatReadMarker is implemented by sessions that can mark a chat read on the
// account's other devices (WhatsApp Web, Desktop, the phone) beyond the read
// receipts: WhatsApp Web marks a chat read there with the read receipts
// alone (those devices clear the badge themselves), and sends a "mark chat
// read" app-state patch only for a chat its owner marked unread. The HTTP
// handler calls MarkChatRead once per request, best-effort, after all of the
// request's read receipts were sent, and reports the state it returns as
// chatRead (and, for done and unavailable, as chatMarkedRead true or false).
//
// MarkChatRead must be safe for concurrent use; ctx bounds only the call,
// never work it leaves to the background, and the call should not wait for
// the network when it can help it (the request waits for it). It returns:
//   - [ChatReadDone] when it cleared the badge before returning;
//   - [ChatReadScheduled] when it will, in the background;
//   - [ChatReadUnavailable] with a nil error when it cannot now;
//   - "" with a nil error when the receipts suffice (nothing more to send;
//     the handler reports nothing);
//   - an error when it could not decide or failed (the session not
//     connected, a store failing): the handler reports unavailable;
//   - an error wrapping errors.ErrUnsupported when the session is
//     configured not to clear badges or the chat has none (channels): the
//     handler reports nothing;
//   - given no LastMessageID, an error wrapping [ErrMessageNotFound] when it
//     knows no message of the chat, having sent nothing: the handler then
//     reports the chat unknown.
type ChatReadMarker interface {
	MarkChatRead(ctx context.Context, c ChatRead) (ChatReadState, error)
}

// Status is a session's state, as a StatusReporter tells it.
type Status struct {
	// Connected: the session's connection to WhatsApp is up.
	Connected bool
	// LoggedIn: the session is paired and authenticated; with Connected,
	// it can send.
	LoggedIn bool
	// Paired: the session has a paired device. A session that is not paired
	// waits for a QR code scan or a pair code.
	Paired bool
	// JID is the account's phone-number JID, e.g.
	// "15551234567@s.whatsapp.net"; empty until paired.
	JID string
	// Node is the id of the process that serves the session when several
	// processes share the sessions (a cluster), or "" while none does;
	// always "" in a single process.
	Node string
	// Replaced: another connection of the same device took over, and
	// WhatsApp closed this one (a stream error, conflict "replaced"): the
	// device is connected elsewhere — another process or tool — and the
	// session does not reconnect by itself, to avoid a kick-war.
	Replaced bool
	// Activity is when the session last acted for the account: a receipt
	// or a typing indicator went out through it. Zero when none has since
	// the session started, or when the session cannot tell.
	Activity time.Time
}

// StatusReporter is implemented by sessions that can tell their state.
// Status must be safe for concurrent use and must not block on the network.
type StatusReporter interface {
	Status(ctx context.Context) Status
}

// Typist is implemented by sessions that can show the account typing in a
// chat ("typing…", or "composing" in WhatsApp's terms), as a person who has
// read a message and starts to answer. The HTTP handler calls Typing after
// a request's receipts went out when the request asks for it ("typing":
// true, or Meta's "typing_indicator": {"type": "text"}).
//
// Typing must be safe for concurrent use. It returns once "typing" was
// handed to WhatsApp (or failed), keeps it shown (WhatsApp Web renews it
// every 10 s) and clears it by itself d later, in the background (a later
// call for the same chat extends it); a session that
// closes first need not clear it (WhatsApp's apps stop showing it after a
// while). It returns an error wrapping errors.ErrUnsupported for chats
// where nobody sees typing (channels, status updates), and errors wrapping
// the sentinels of this package for the session's state.
type Typist interface {
	Typing(ctx context.Context, chat string, d time.Duration) error
}

// Arrival is an incoming message a session offers to be marked read
// automatically (auto-read), with when a person would have read it.
type Arrival struct {
	// Chat is the normalised chat JID, in the form the message arrived in.
	Chat string
	// Sender is the normalised JID of the author; the handler names it in
	// group receipts.
	Sender string
	// ID is the message id.
	ID string
	// Timestamp is when the message was sent (WhatsApp's time).
	Timestamp time.Time
	// Due is when to mark it read: after a human-like delay.
	Due time.Time
}

// ArrivalSource is implemented by what offers incoming messages for
// auto-read: a whatsmeow Manager for its sessions. The HTTP handler
// subscribes to one (seenhandler/queue's Options.Arrivals) and sends each arrival
// through the path of a request: the session's rate limit, the
// asynchronous queue (due at Arrival.Due), the Observer.
//
// SubscribeArrivals must be safe for concurrent use. It calls f for each
// arrival, with the name of the session it arrived in, until stop is
// called; f must not block (the handler hands the arrival to a goroutine
// of its own). stop may be called more than once.
type ArrivalSource interface {
	SubscribeArrivals(f func(session string, a Arrival)) (stop func())
}
