package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// PresenceMode is what a [Session] tells WhatsApp about the account being
// online (see [WithPresence]).
//
// It matters for more than the green "online": whatsmeow sends the
// delivery receipts of incoming messages as type="inactive" — which the
// apps do not render, so the sender does not even see two grey ticks —
// until the client has sent presence "available" once; and WhatsApp shows
// "-" as the account's name to people it has not talked to until one
// presence carrying the push name was sent (whatsmeow presence.go,
// receipt.go).
type PresenceMode string

// Presence modes.
const (
	// PresenceOnline sends presence "available" after each connection (and
	// when the push name arrives after pairing): delivery receipts are
	// rendered (two grey ticks) and the name is known. The trade-off: the
	// account shows "online" to its contacts for as long as the session is
	// connected, and the phone does not get notifications while WhatsApp
	// thinks a linked device is in use.
	PresenceOnline PresenceMode = "online"
	// PresenceReading sends "available" just before a receipt (or a typing
	// indicator) when the account is not online already, and
	// "unavailable" once no receipt went out for the idle time: online
	// while reading, as a person who opens the app, reads and puts the
	// phone down. Delivery receipts outside those moments stay inactive.
	PresenceReading PresenceMode = "reading"
	// PresenceOff sends no presence at all: whatsmeow's own behaviour
	// (inactive delivery receipts; "-" as the name until another device of
	// the account sends presence).
	PresenceOff PresenceMode = "off"
)

// DefaultPresenceIdle is how long after its last receipt a [Session] in
// [PresenceReading] goes "unavailable".
const DefaultPresenceIdle = 30 * time.Second

// presenceTimeout bounds sending one presence node in the background.
const presenceTimeout = 10 * time.Second

// WithPresence sets the [Session]'s presence policy: mode, and for
// [PresenceReading] the idle time after the last receipt before it goes
// "unavailable" (0: [DefaultPresenceIdle], 30 s; ignored by the other
// modes). An unknown mode or a negative idle time is an error. Default:
// [PresenceOnline].
func WithPresence(mode PresenceMode, idle time.Duration) Option {
	return func(o *options) error {
		switch mode {
		case PresenceOnline, PresenceReading, PresenceOff:
		default:
			return fmt.Errorf("whatsmeow: WithPresence: unknown mode %q (want online, reading or off)", mode)
		}
		if idle < 0 {
			return errors.New("whatsmeow: WithPresence: negative idle time")
		}
		if idle == 0 {
			idle = DefaultPresenceIdle
		}
		o.presence, o.presenceIdle = mode, idle
		return nil
	}
}

// presence is the state of a [Session]'s presence policy.
type presence struct {
	// sendMu orders the presence nodes of the idle countdown and of
	// active: an "unavailable" never overtakes the "available" of a
	// receipt that followed it.
	sendMu    sync.Mutex
	mu        sync.Mutex
	available bool      // "available" was sent on this connection and not undone
	last      time.Time // the last activity (PresenceReading)
	idling    bool      // the idle goroutine runs
	noName    bool      // "no push name" was logged
}

// announce sends "available" in the background (PresenceOnline), after a
// connection or the push name's arrival.
func (s *Session) announce() {
	if s.opts.presence != PresenceOnline {
		return
	}
	s.background(func() {
		ctx, cancel := context.WithTimeout(s.ctx, presenceTimeout)
		defer cancel()
		_ = s.sendPresence(ctx, types.PresenceAvailable)
	})
}

// sendPresence sends state and records it. A missing push name is logged
// once (whatsmeow refuses presence without one; it arrives from the phone
// after pairing, see events.PushNameSetting), other failures each time.
func (s *Session) sendPresence(ctx context.Context, state types.Presence) error {
	err := guard("SendPresence", func() error { return s.client.SendPresence(ctx, state) })
	p := &s.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case errors.Is(err, whatsmeow.ErrNoPushName):
		if !p.noName {
			p.noName = true
			s.opts.logger.Info("no push name yet: presence is sent once the phone shares it; delivery receipts stay inactive until then")
		}
	case err != nil:
		if s.ctx.Err() == nil {
			s.opts.logger.Warn("sending presence failed", "presence", string(state), "error", err)
		}
	default:
		p.available = state == types.PresenceAvailable
	}
	return err
}

// connected forgets, on a new connection, that the account was available:
// WhatsApp starts every connection unavailable.
func (s *Session) presenceConnected() {
	p := &s.presence
	p.mu.Lock()
	p.available = false
	p.mu.Unlock()
	s.announce()
}

// active is called before a receipt or typing indicator goes out. In
// [PresenceReading] it sends "available" first unless the account is
// already, and (re)starts the idle countdown; a failure is logged, and the
// receipt still goes out.
func (s *Session) active(ctx context.Context) {
	if s.opts.presence != PresenceReading {
		return
	}
	p := &s.presence
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	p.last = s.opts.now()
	available := p.available
	p.mu.Unlock()
	if !available {
		_ = s.sendPresence(ctx, types.PresenceAvailable)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.idling && p.available && s.background(s.idle) {
		p.idling = true
	}
}

// idle sends "unavailable" once no activity was seen for the idle time,
// then ends; Close stops it. Tests end each wait with presenceTicks.
func (s *Session) idle() {
	p := &s.presence
	wait := s.opts.presenceIdle
	for {
		var fired <-chan time.Time
		timer := time.NewTimer(wait)
		fired = timer.C
		if s.opts.presenceTicks != nil {
			timer.Stop()
			fired = s.opts.presenceTicks
		}
		select {
		case <-s.ctx.Done():
			timer.Stop()
			p.mu.Lock()
			p.idling = false
			p.mu.Unlock()
			return
		case <-fired:
		}
		timer.Stop()
		if wait = s.goIdle(); wait == 0 {
			return
		}
	}
}

// goIdle sends "unavailable" if the idle time has passed since the last
// activity (or a test's tick came) and returns 0; else it returns the time
// left.
func (s *Session) goIdle() time.Duration {
	p := &s.presence
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	since := s.opts.now().Sub(p.last)
	if s.opts.presenceTicks == nil && since < s.opts.presenceIdle {
		p.mu.Unlock()
		return s.opts.presenceIdle - since
	}
	p.idling = false
	available := p.available
	p.mu.Unlock()
	if available {
		ctx, cancel := context.WithTimeout(s.ctx, presenceTimeout)
		_ = s.sendPresence(ctx, types.PresenceUnavailable)
		cancel()
	}
	return 0
}
