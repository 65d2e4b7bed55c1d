package whatsmeow

import (
	"context"

	"golang.org/x/time/rate"
)

// GroupModeTTL is how long a Session trusts GetGroupInfo's answer.
const GroupModeTTL = groupModeTTL

// GroupModeFailureTTL is how long a Session remembers that GetGroupInfo
// failed.
const GroupModeFailureTTL = groupModeFailureTTL

// The defaults the tests time and count against.
const (
	DefaultChatReadWindow = defaultChatReadWindow
	DefaultPairRetry      = defaultPairRetry
	DefaultMaxPairRetry   = defaultMaxPairRetry
	DefaultFDReserve      = defaultFDReserve
	DefaultDBMaxOpen      = defaultDBMaxOpen
	DefaultPresenceIdle   = defaultPresenceIdle
)

// AsManaged gives a Session made by New the defaults of a Manager's
// sessions — presence PresenceReading, chats marked unread marked read,
// the privacy settings fetched after each connection — which the tests
// written for them expect. Options after it override it.
func AsManaged() Option {
	return func(o *options) error {
		d := managerDefaults()
		o.presence, o.markChatRead, o.warmPrivacy = d.presence, d.markChatRead, d.warmPrivacy
		return nil
	}
}

// WithChatReadBudget shares l, as a Manager does its WithChatReadRate, with
// the Session.
func WithChatReadBudget(l *rate.Limiter) Option {
	return func(o *options) error { o.chatReadBudget = l; return nil }
}

// WithAutoReadRand is WithAutoRead(a) with f drawing the random part of
// each delay.
func WithAutoReadRand(a AutoRead, f func() float64) Option {
	a.rand = f
	return WithAutoRead(a)
}

// FlushIndex waits until the index writes of s queued so far are in the
// store (a Manager's session); for a Session made by New it does nothing.
func FlushIndex(ctx context.Context, s *Session) error {
	if s.index.store == nil {
		return nil
	}
	return s.index.store.flush(ctx)
}

// Quiesce waits for the Session's work for the current connection (the
// privacy warm-up, the presence announcement) to end.
func (s *Session) Quiesce() { s.quiesce() }

// The spread workload's receipts without HTTP, and what the handler asks
// of a session for each (see BenchmarkSessionReceiptAlone).
var (
	SpreadReceipts = spreadReceipts
	SendUnknown    = sendUnknown
)
