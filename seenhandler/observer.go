package seenhandler

import (
	"context"
	"errors"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Observer is told what the handler does, for metrics: a set of optional
// functions, as net/http/httptrace's ClientTrace; a nil one is not
// called, and the zero Observer (the default) observes nothing. No metrics
// library is linked by this package (seenhandler/promobserver has one).
// The functions are called on the request's goroutine (or an asynchronous
// job's): they must be quick and safe for concurrent use; a panic in them
// is logged and does not change the answer.
type Observer struct {
	// RequestDone is called once per request, after its answer is written.
	RequestDone func(ctx context.Context, r RequestInfo)
	// BackendError is called when the registry, a session or its resolver
	// fails a request on the server's side (a 5xx: not connected, not
	// logged in, timeout, internal), and when marking a chat read fails
	// or showing typing fails (neither fails the request). Answers such as
	// an unknown session or message are the client's business and are only
	// in RequestDone.
	BackendError func(ctx context.Context, e BackendErrorInfo)
	// MessageViewed is called with the time to view: for each message
	// marked read whose time the session knows (a session.Resolver's or
	// session.UnreadLister's Timestamp), how long after it arrived. It is
	// called once per message, after its receipt went out.
	MessageViewed func(ctx context.Context, v ViewInfo)
}

// RequestInfo describes one finished request.
type RequestInfo struct {
	// Endpoint is [EndpointSeen], EndpointStatus, EndpointSessions, or
	// EndpointAutoRead for an arrival auto-read queued (202), skipped (200,
	// the account's own) or refused (rate_limited, queue_full, …).
	Endpoint Endpoint
	// Session is the session used: set only once the client was
	// authenticated and the registry found the session, so that clients
	// cannot mint label values; "" otherwise.
	Session string
	// Dialect is "wasend", "wawp" or "waha" (by path, else by fields), or
	// "" when the request was refused before its body was read.
	Dialect string
	// Status is the HTTP status answered, Code the error code ("" for 200).
	Status int
	Code   Code
	// Latency is the time from the request's arrival to its answer.
	Latency time.Duration
	// Receipts is how many receipts (backend calls) went out, Messages how
	// many message ids they carried, Skipped how many ids were skipped.
	Receipts, Messages, Skipped int
}

// ViewInfo is one message marked read, for [Observer].MessageViewed.
type ViewInfo struct {
	// Session is the session that sent the receipt.
	Session string
	// Type is the receipt type asked for: read or played.
	Type session.ReceiptType
	// TimeToView is the time from the message's timestamp (when WhatsApp
	// took it from its sender) to the receipt's (when it was marked read);
	// never negative.
	TimeToView time.Duration
	// Auto: the receipt was sent by auto-read (see [Handler.ReadLater]), not
	// asked for by a request.
	Auto bool
}

// BackendErrorInfo describes one backend failure.
type BackendErrorInfo struct {
	// Session is the session concerned.
	Session string
	// Op is what failed.
	Op Op
	// Code is the error code the failure maps to (CodeSessionNotConnected,
	// CodeInternal, …).
	Code Code
	// Err is the backend's error, for logs; never send its text to clients.
	Err error
}

// Endpoint names an endpoint of the handler, in [RequestInfo].
type Endpoint string

// Endpoints of [RequestInfo].
const (
	EndpointSeen   Endpoint = "seen"   // ServeHTTP
	EndpointStatus Endpoint = "status" // PathWawpStatus, PathWAHAStatus
	// EndpointSessions is the session list, PathWAHASessions.
	EndpointSessions Endpoint = "sessions"
)

// Op names a backend operation, in [BackendErrorInfo].
type Op string

// Backend operations of [BackendErrorInfo].
const (
	OpLookup       Op = "lookup"         // session.Registry.Lookup
	OpResolve      Op = "resolve"        // session.Resolver.ResolveMessage
	OpUnread       Op = "unread"         // session.UnreadLister.UnreadMessages
	OpSend         Op = "send"           // session.Session.SendReceipt
	OpMarkChatRead Op = "mark_chat_read" // session.ChatReadMarker.MarkChatRead
	OpStatus       Op = "status"         // session.StatusReporter.Status
	OpTyping       Op = "typing"         // session.Typist.Typing
)

// WithObserver sets the [Observer] of the handler. Default: the zero
// Observer, which observes nothing.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		c.observer = o
		return nil
	}
}

// observeViews tells the [Observer]'s MessageViewed the time to view of each message of
// rc (as sent) whose time is in known.
func (c *config) observeViews(ctx context.Context, name string, rc session.Receipt, known map[string]time.Time, auto bool) {
	if c.observer.MessageViewed == nil || len(known) == 0 {
		return
	}
	for _, id := range rc.MessageIDs {
		t, ok := known[id]
		if !ok {
			continue
		}
		c.observer.MessageViewed(ctx, ViewInfo{Session: name, Type: rc.Type, TimeToView: max(rc.Timestamp.Sub(t), 0), Auto: auto})
	}
}

// backendError marks an error as the backend's, with the operation that
// failed; classify sees through it.
type backendError struct {
	op  Op
	err error
}

func (e *backendError) Error() string { return string(e.op) + ": " + e.err.Error() }
func (e *backendError) Unwrap() error { return e.err }

func backendErr(op Op, err error) error {
	if err == nil {
		return nil
	}
	return &backendError{op: op, err: err}
}

// observeBackend reports err to the observer if it is the backend's.
func (c *config) observeBackend(ctx context.Context, session string, err error) {
	var be *backendError
	if c.observer.BackendError == nil || !errors.As(err, &be) {
		return
	}
	p := classify(err)
	if p.status < 500 && be.op != OpMarkChatRead && be.op != OpTyping {
		return
	}
	c.observer.BackendError(ctx, BackendErrorInfo{Session: session, Op: be.op, Code: p.code, Err: be.err})
}
