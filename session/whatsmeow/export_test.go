package whatsmeow

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// GroupModeTTL is how long a Session trusts GetGroupInfo's answer.
const GroupModeTTL = groupModeTTL

// GroupModeFailureTTL is how long a Session remembers that GetGroupInfo
// failed.
const GroupModeFailureTTL = groupModeFailureTTL

// WithChatReadTicks makes each value received from c end a window of
// MarkChatRead instead of a timer.
func WithChatReadTicks(c <-chan time.Time) Option {
	return func(o *options) error { o.chatReadTicks = c; return nil }
}

// WithPresenceTicks makes each value received from c end the idle wait of
// PresenceReading instead of a timer.
func WithPresenceTicks(c <-chan time.Time) Option {
	return func(o *options) error { o.presenceTicks = c; return nil }
}

// WithChatReadBudget shares l, as a Manager does its WithChatReadRate, with
// the Session.
func WithChatReadBudget(l *rate.Limiter) Option { return withChatReadBudget(l) }

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
