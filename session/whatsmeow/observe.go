package whatsmeow

import "errors"

// SessionEventKind says what happened to a session, in a [SessionEvent].
type SessionEventKind string

// Kinds of [SessionEvent].
const (
	// EventConnected: the session's client logged in.
	EventConnected SessionEventKind = "connected"
	// EventDisconnected: the connection dropped; whatsmeow reconnects.
	EventDisconnected SessionEventKind = "disconnected"
	// EventReplaced: another connection of the device (another process or
	// tool) replaced the session's, with WhatsApp's stream error conflict
	// "replaced". The session does not reconnect by itself (no kick-war):
	// its status says so (session.Status.Replaced) until Acquire connects
	// it again.
	EventReplaced SessionEventKind = "replaced"
	// EventLoggedOut: WhatsApp logged the device out; the session left the
	// registry.
	EventLoggedOut SessionEventKind = "logged_out"
	// EventRefused: Acquire refused to connect the session, the process
	// being at its capacity (see [Manager.Capacity]).
	EventRefused SessionEventKind = "refused"
)

// SessionEvent is something that happened to a session of a [Manager], for
// metrics and alerts (see [WithSessionObserver]).
type SessionEvent struct {
	// Session is the session's name.
	Session string
	// Kind is one of the Event constants, e.g. [EventReplaced].
	Kind SessionEventKind
}

// WithSessionObserver calls observe with each [SessionEvent] of the
// [Manager]'s sessions, e.g. to count replaced connections. It is called
// from whatsmeow's event dispatch (or from Acquire, for EventRefused),
// possibly from several goroutines at once: it must be safe for concurrent
// use, return quickly, and not call the Manager. nil is an error. Default:
// none.
func WithSessionObserver(observe func(SessionEvent)) Option {
	return func(o *options) error {
		o.forOpen("WithSessionObserver")
		if observe == nil {
			return errors.New("whatsmeow: WithSessionObserver: nil observer")
		}
		o.observe = observe
		return nil
	}
}

// observe tells the observer, if any, about an event of ms.
func (m *Manager) observe(ms *managed, kind SessionEventKind) {
	if m.opts.observe != nil {
		m.opts.observe(SessionEvent{Session: ms.name, Kind: kind})
	}
}
