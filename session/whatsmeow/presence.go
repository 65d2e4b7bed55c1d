package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
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
	// PresenceReading, the default, is what mautrix-whatsapp does and what
	// a person's phone looks like: "unavailable" with the push name after
	// each connection (and when the push name arrives after pairing), so
	// that contacts see the name, not "-", without the account showing
	// online; "available" just before a receipt or a typing indicator when
	// the account is not online already, and "unavailable" once nothing
	// went out for the idle time — online while reading, as a person who
	// opens the app, reads and puts the phone down. Delivery receipts
	// outside those moments stay inactive (no grey ticks for the sender
	// until the account reads), and the phone keeps notifying its owner.
	PresenceReading PresenceMode = "reading"
	// PresenceOnline sends presence "available" after each connection (and
	// when the push name arrives after pairing): delivery receipts are
	// rendered (two grey ticks) and the name is known. The trade-off: the
	// account shows "online" to its contacts for as long as the session is
	// connected, and the phone does not notify its owner while WhatsApp
	// thinks a linked device is in use (Baileys documents
	// markOnlineOnConnect: false for exactly this).
	PresenceOnline PresenceMode = "online"
	// PresenceOff sends no presence at all: whatsmeow's raw behaviour.
	// Delivery receipts are inactive; contacts the account has not talked
	// to see "-" as its name until another device of the account sends
	// presence; receipts go out whatever the account looks like.
	PresenceOff PresenceMode = "off"
)

// defaultPresenceIdle is how long after its last receipt a [Session] in
// [PresenceReading] goes "unavailable".
const defaultPresenceIdle = 30 * time.Second

// presenceTimeout bounds sending one presence node in the background.
const presenceTimeout = 10 * time.Second

// WithPresence sets the [Session]'s presence policy: mode, and for
// [PresenceReading] the idle time after the last receipt before it goes
// "unavailable" (0: defaultPresenceIdle, 30 s; ignored by the other
// modes). In every mode but [PresenceOff], a receipt or typing indicator
// goes out only while the account is "available", as WhatsApp Web's
// sendSeen waits for it: when "available" cannot be sent the receipt is
// refused — session.ErrNotReady before the phone has shared the push name
// after pairing, session.ErrNotConnected when the connection fails (HTTP
// 503 with Retry-After either way) — and nothing is sent.
// An unknown mode or a negative idle time is an error. Default: for a
// [Manager]'s sessions [PresenceReading], 30 s; for a [Session] made by
// [New] [PresenceOff], which sends no presence: the program runs its
// client, and its presence is the program's.
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
			idle = defaultPresenceIdle
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
	// inactive are the incoming messages whatsmeow acknowledged with an
	// inactive delivery receipt (the account was not available), oldest
	// first, at most maxInactiveReceipts: their plain delivery receipt
	// goes out once the account is available.
	inactive     []deliveryReceipt
	inactiveFull bool // "too many" was logged
}

// maxInactiveReceipts bounds the messages whose plain delivery receipt
// waits for the account to go available; beyond it the oldest wait no
// more (their senders see grey ticks with the read receipt instead).
const maxInactiveReceipts = 512

// deliveryReceipt addresses a message's delivery receipt as whatsmeow's
// own: to its from, naming its participant in groups and status.
type deliveryReceipt struct {
	id              types.MessageID
	to, participant types.JID
}

// noteInactive remembers e, just arrived, if whatsmeow is about to
// acknowledge it with an inactive delivery receipt: it does (after the
// event handlers ran) while the account has not gone available. In
// [PresenceOff] nothing is remembered: the account never goes available.
func (s *Session) noteInactive(e *events.Message) {
	if s.opts.presence == PresenceOff || e.Info.IsFromMe {
		return
	}
	r := deliveryReceipt{id: e.Info.ID, to: e.Info.Sender}
	if e.Info.IsGroup || e.Info.Chat.Server == types.BroadcastServer {
		r.to, r.participant = e.Info.Chat, e.Info.Sender
	}
	p := &s.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.available {
		return
	}
	if len(p.inactive) >= maxInactiveReceipts {
		if !p.inactiveFull {
			p.inactiveFull = true
			s.opts.logger.Info("many messages arrived while the account was not available; the oldest get no delivery receipt of their own", "waiting", len(p.inactive))
		}
		p.inactive = slices.Delete(p.inactive, 0, 1)
	}
	p.inactive = append(p.inactive, r)
}

// sendDeliveryReceipts sends, once the account has gone available, the
// plain delivery receipts of the messages acknowledged as inactive before
// (WhatsApp Web's sendDeliveryReceiptsAfterPresence): their senders see two
// grey ticks — before the read receipt that may follow. whatsmeow sends
// delivery receipts only as a message arrives: the node is built as its
// sendMessageReceipt builds it, without a type. A failure is logged.
func (s *Session) sendDeliveryReceipts(ctx context.Context) {
	p := &s.presence
	p.mu.Lock()
	pending := p.inactive
	p.inactive, p.inactiveFull = nil, false
	p.mu.Unlock()
	for _, r := range pending {
		attrs := waBinary.Attrs{"id": r.id, "to": r.to}
		if !r.participant.IsEmpty() {
			attrs["participant"] = r.participant
		}
		err := guard("SendNode", func() error {
			return s.client.DangerousInternals().SendNode(ctx, waBinary.Node{Tag: "receipt", Attrs: attrs})
		})
		if err != nil {
			if s.ctx.Err() == nil {
				s.opts.logger.Warn("sending delivery receipts after going available failed", "receipts", len(pending), "error", err)
			}
			return
		}
	}
}

// announce tells WhatsApp how the account looks after a connection or the
// push name's arrival, in the background: "available" in [PresenceOnline],
// "unavailable" (which carries the push name too) in [PresenceReading].
func (s *Session) announce() {
	state := types.PresenceAvailable
	switch s.opts.presence {
	case PresenceOff:
		return
	case PresenceReading:
		state = types.PresenceUnavailable
	}
	s.onConnection(func(conn context.Context) {
		ctx, cancel := context.WithTimeout(conn, presenceTimeout)
		defer cancel()
		p := &s.presence
		p.sendMu.Lock() // not after the "available" of a receipt
		defer p.sendMu.Unlock()
		p.mu.Lock()
		available := p.available
		p.mu.Unlock()
		switch {
		case state == types.PresenceAvailable && available:
			return // a receipt went first and said it
		case state == types.PresenceUnavailable && available:
			return // a receipt went first: the idle countdown will say it
		}
		_ = s.sendPresence(ctx, state)
	})
}

// announceNamed announces (see announce) if presence could not be sent
// for want of a push name and the device now has one.
func (s *Session) announceNamed() {
	p := &s.presence
	p.mu.Lock()
	waiting := p.noName
	p.mu.Unlock()
	if waiting && s.device.PushName != "" {
		s.announce()
	}
}

// sendPresence sends state and records it. A missing push name is logged
// once (whatsmeow refuses presence without one; it arrives from the phone
// after pairing, see events.PushNameSetting), other failures each time.
func (s *Session) sendPresence(ctx context.Context, state types.Presence) error {
	err := guard("SendPresence", func() error { return s.client.SendPresence(ctx, state) })
	p := &s.presence
	p.mu.Lock()
	switch {
	case errors.Is(err, whatsmeow.ErrNoPushName):
		if !p.noName {
			p.noName = true
			s.opts.logger.Info("no push name yet: presence is sent once the phone shares it; delivery receipts stay inactive until then")
		}
	case err != nil:
		if ctx.Err() == nil {
			s.opts.logger.Warn("sending presence failed", "presence", string(state), "error", err)
		}
	default:
		p.available = state == types.PresenceAvailable
		p.noName = false
	}
	p.mu.Unlock()
	if err == nil && state == types.PresenceAvailable {
		s.sendDeliveryReceipts(ctx)
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
// every mode but [PresenceOff] it sends "available" first unless the
// account is already, and fails when it cannot: the receipt must not go
// out then (session.ErrNotConnected, or ctx's error). In [PresenceReading]
// it (re)starts the idle countdown.
func (s *Session) active(ctx context.Context) error {
	if s.opts.presence == PresenceOff {
		return nil
	}
	p := &s.presence
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	p.last = time.Now()
	available := p.available
	if available { // nearly always: one hold of p.mu
		s.countIdleLocked()
	}
	p.mu.Unlock()
	if !available {
		if err := session.Fence(ctx); err != nil {
			return err // the receipt must not go out either
		}
		if err := s.sendPresence(ctx, types.PresenceAvailable); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, whatsmeow.ErrNoPushName) {
				return fmt.Errorf("%w: the account cannot go online before the phone shares its push name: %w", session.ErrNotReady, err)
			}
			return fmt.Errorf("%w: the account could not go online: %w", session.ErrNotConnected, mapError(ctx, err))
		}
		p.mu.Lock()
		s.countIdleLocked()
		p.mu.Unlock()
	}
	return nil
}

// countIdleLocked starts, in [PresenceReading], the idle countdown of an
// available account unless it runs. p.mu is held.
func (s *Session) countIdleLocked() {
	p := &s.presence
	if s.opts.presence == PresenceReading && !p.idling && p.available && s.background(s.idle) {
		p.idling = true
	}
}

// idle sends "unavailable" once no activity was seen for the idle time,
// then ends; Close stops it.
func (s *Session) idle() {
	p := &s.presence
	timer := time.NewTimer(s.opts.presenceIdle)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			p.mu.Lock()
			p.idling = false
			p.mu.Unlock()
			return
		case <-timer.C:
		}
		wait := s.goIdle()
		if wait == 0 {
			return
		}
		timer.Reset(wait)
	}
}

// goIdle sends "unavailable" if the idle time has passed since the last
// activity and returns 0; else it returns the time left.
func (s *Session) goIdle() time.Duration {
	p := &s.presence
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	since := time.Since(p.last)
	if since < s.opts.presenceIdle {
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
