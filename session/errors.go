package session

import "errors"

// Sentinel errors returned (possibly wrapped) by a [Registry], a [Session] or
// a [Resolver]. Package seenhandler maps each to the HTTP status named in its
// comment; any other error becomes 500.
var (
	// ErrSessionNotFound: no session has the requested name. HTTP 404.
	ErrSessionNotFound = errors.New("session not found")
	// ErrNotConnected: the session exists but its connection to WhatsApp is
	// down; retrying later may succeed. HTTP 503 with Retry-After.
	ErrNotConnected = errors.New("session not connected")
	// ErrNotLoggedIn: the session's device is not paired or was logged out;
	// it needs a new login before it can send. HTTP 503.
	ErrNotLoggedIn = errors.New("session not logged in")
	// ErrMessageNotFound: the session does not know the message. HTTP 404
	// when a Session returns it; a Resolver returns it to mean "unknown,
	// decide from the request".
	ErrMessageNotFound = errors.New("message not found")
	// ErrInvalidReceipt: the backend cannot send this receipt as asked (no
	// message ids, no chat, an id the chat's kind cannot take). Nothing was
	// sent. HTTP 400.
	ErrInvalidReceipt = errors.New("invalid receipt")
)
