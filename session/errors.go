package session

import (
	"errors"
	"time"
)

// Sentinel errors returned (possibly wrapped) by a [Registry], a [Session], a
// [Resolver] or a queue of package seenhandler. Package seenhandler maps each
// to the HTTP status named in its comment; any other error becomes 500.
var (
	// ErrSessionNotFound: no session has the requested name. HTTP 404.
	ErrSessionNotFound = errors.New("session not found")
	// ErrNotConnected: the session exists but its connection to WhatsApp is
	// down; retrying later may succeed. HTTP 503 with Retry-After: the
	// error's own ([RetryAfter]) when it knows, else the handler's.
	ErrNotConnected = errors.New("session not connected")
	// ErrNotReady: the session is connected and logged in, but cannot send
	// this receipt yet: it waits for WhatsApp to answer something the
	// receipt depends on — after each (re)connection, the account's
	// read-receipt privacy setting, without which a read receipt could show
	// blue ticks the account has turned off. Nothing was sent; retrying
	// shortly may succeed. It wraps [ErrNotConnected], so that what retries
	// a session that is down (an asynchronous queue) retries it too. HTTP
	// 503 session_not_connected with Retry-After (the error's own, when it
	// knows, else the handler's), with a message that says the session is
	// connected and waits for WhatsApp.
	ErrNotReady error = notReadyError{}
	// ErrNotLoggedIn: the session's device is not paired or was logged out;
	// it needs a new login before it can send. HTTP 503, with Retry-After
	// when the error knows when to retry ([RetryAfter]: e.g. a pairing
	// waiting to reach WhatsApp again).
	ErrNotLoggedIn = errors.New("session not logged in")
	// ErrMessageNotFound: the session does not know the message. HTTP 404
	// when a Session returns it; a Resolver returns it to mean "unknown,
	// decide from the request".
	ErrMessageNotFound = errors.New("message not found")
	// ErrInvalidReceipt: the backend cannot send this receipt as asked (no
	// message ids, no chat, an id the chat's kind cannot take). Nothing was
	// sent. HTTP 400.
	ErrInvalidReceipt = errors.New("invalid receipt")
	// ErrInFlight: the caller's context ended while its receipt was being
	// sent in a call it shares with other callers (the coalescing of [Decorate]):
	// that call goes on without it, so the receipt may have gone out, or
	// may yet, or may fail — the caller cannot know. Sending it again may
	// send it twice. An error wrapping ErrInFlight also wraps the context's
	// error. HTTP 202, the receipt listed as in flight (package seenhandler:
	// Response.InFlight), so that clients do not send it again as they
	// would after a 504.
	ErrInFlight = errors.New("receipt in flight")
	// ErrStorageFull: the storage the request needs is full (its disk, or
	// the database's quota): nothing of the request was stored. Transient
	// for the client, retrying later may succeed once the operator has made
	// room. HTTP 503 with Retry-After.
	ErrStorageFull = errors.New("storage full")
)

// notReadyError is [ErrNotReady]: an error of its own that unwraps to
// ErrNotConnected.
type notReadyError struct{}

func (notReadyError) Error() string { return "session not ready: waiting for WhatsApp" }
func (notReadyError) Unwrap() error { return ErrNotConnected }

// RetryLater returns err annotated with how long the caller should wait
// before trying again: [RetryAfter] reports d, errors.Is and errors.As see
// err, and the text is err's. Package seenhandler sends d (rounded up to
// whole seconds) as the Retry-After of the 503 that err maps to, in place
// of its own default (seenhandler.WithRetryAfter). A d of 0 or less returns
// err unchanged.
func RetryLater(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &retryAfterError{err: err, after: d}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

// RetryAfter reports how long to wait before retrying what failed with err,
// when err or an error it wraps knows: one with a method
// RetryAfter() time.Duration returning a positive duration, such as those of
// [RetryLater].
func RetryAfter(err error) (time.Duration, bool) {
	var r interface{ RetryAfter() time.Duration }
	if !errors.As(err, &r) {
		return 0, false
	}
	d := r.RetryAfter()
	return d, d > 0
}
