package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/bluetick/bluetick/validate"
)

// PairEventKind says what a [PairEvent] is.
type PairEventKind string

// Kinds of [PairEvent].
const (
	// PairQRCode: show Code as a QR code; it is valid for Timeout.
	PairQRCode PairEventKind = "qr"
	// PairSucceeded: the device is paired as JID; the session connects and
	// is ready once connected.
	PairSucceeded PairEventKind = "success"
	// PairTimedOut: no phone scanned the codes in time; the session is gone.
	PairTimedOut PairEventKind = "timeout"
	// PairFailed: pairing failed with Err; the session is gone.
	PairFailed PairEventKind = "error"
	// PairRetrying: WhatsApp could not be reached (Err); Pair tries
	// again after Timeout. The session stays registered.
	PairRetrying PairEventKind = "retrying"
	// PairPhoneCode: type Code into WhatsApp on the phone (Linked devices ›
	// Link with phone number); Pair with a phone number.
	PairPhoneCode PairEventKind = "phone-code"
)

// PairEvent is one step of pairing a new session.
type PairEvent struct {
	// Kind is PairQRCode, PairPhoneCode, PairRetrying, PairSucceeded,
	// PairTimedOut or PairFailed.
	Kind PairEventKind
	// Code is the QR code's content (PairQRCode) or the pair code
	// (PairPhoneCode).
	Code string
	// Timeout is how long Code is valid (PairQRCode), or the wait before
	// the next attempt (PairRetrying).
	Timeout time.Duration
	// JID is the paired account's phone-number JID (PairSucceeded).
	JID string
	// Err says why pairing failed (PairFailed) or why the attempt did
	// (PairRetrying).
	Err error
}

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("session name %q: use 1 to 64 letters, digits, _, . and -, starting with a letter or digit", name)
	}
	return nil
}

// ownPairing counts a pairing goroutine about to start, for Close to wait
// for; errClosed once Close has begun (it waits for those counted before).
func (m *Manager) ownPairing() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.pairing.Add(1)
	return nil
}

// Pair starts pairing a new session called name: by QR code (scan each
// [PairQRCode] event's Code with WhatsApp on the phone: Linked devices)
// or, when phone is not empty, by pair code (type the [PairPhoneCode]
// event's Code into WhatsApp on the phone with that number: Linked devices
// › Link with phone number; it comes after the first QR code, which may be
// ignored). It returns at once, without waiting for WhatsApp: the session
// is in the registry from now on, answering session.ErrNotLoggedIn — and,
// while the [Manager] waits to try again, with the wait before the next
// attempt as its session.RetryAfter. Connecting is retried in the
// background after each failure (a PairRetrying event, whose Err says
// why), waiting [WithPairRetry]'s first duration, then twice as long each
// time, up to its max: to give up instead, end ctx. The channel ends with
// PairSucceeded, after which the name is stored with the device, or with
// PairTimedOut or PairFailed, after which the session is gone.
//
// The [Manager] owns the pairing: Close stops it (the session is gone) and
// waits for it, whether or not the channel is read. When ctx ends first,
// the pairing stops and the session is gone; events after that are
// dropped. Read the channel until it is closed.
func (m *Manager) Pair(ctx context.Context, name, phone string) (<-chan PairEvent, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var user string
	if phone != "" {
		jid, err := validate.NormalizeParticipant(phone)
		if err != nil || jid.Server != validate.ServerUser {
			return nil, fmt.Errorf("pair phone: %q is not a phone number in international format", phone)
		}
		user = jid.User
	}
	dev := m.container.NewDevice()
	ms, err := m.add(name, dev)
	if err != nil {
		return nil, err
	}
	ms.client.InitialAutoReconnect = false // the retrying is Pair's
	pctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.life, cancel)
	qr, err := ms.client.GetQRChannel(pctx)
	if err == nil {
		err = m.ownPairing()
	}
	if err != nil {
		stop()
		cancel()
		m.drop(ms)
		return nil, fmt.Errorf("pair %q: %w", name, err)
	}
	out := make(chan PairEvent, 1)
	go func() {
		defer close(out) // last: stop returns once the pairing has ended
		defer m.pairing.Done()
		defer cancel()
		defer stop()
		p := &pairing{m: m, ms: ms, dev: dev, ctx: pctx, out: out, user: user}
		if !p.connect() || !p.forward(qr) {
			m.drop(ms)
		}
	}()
	return out, nil
}

// pairing is one run of Pair, in its goroutine.
type pairing struct {
	m    *Manager
	ms   *managed
	dev  *store.Device
	ctx  context.Context
	out  chan<- PairEvent
	user string // the phone number's user part, for a pair code
}

// send hands ev to the reader unless the pairing has ended.
func (p *pairing) send(ev PairEvent) bool {
	select {
	case p.out <- ev:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// connect connects the client, trying again after each failure with a
// capped exponential backoff. It reports whether it connected. The
// connection lives under the session's own context (ms.conn, which
// stopping the session ends), not the pairing's: the end of the pairing
// disconnects through the QR channel, and a socket closed by both at once
// is a data race inside whatsmeow (FrameSocket.Close against its
// readPump, which -race reported when Close stopped a pairing).
func (p *pairing) connect() bool {
	wait := p.m.opts.pairFirst
	for {
		err := p.ms.client.ConnectContext(p.ms.conn)
		if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			return true
		}
		if p.ctx.Err() != nil {
			return false
		}
		p.ms.session.setNextPairing(time.Now().Add(wait))
		p.m.opts.logger.Warn("pairing: WhatsApp is unreachable; trying again", "session", p.ms.name, "in", wait, "error", err)
		if !p.send(PairEvent{Kind: PairRetrying, Err: err, Timeout: wait}) {
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return false
		}
		p.ms.session.setNextPairing(time.Time{})
		wait = min(2*wait, p.m.opts.pairMax)
	}
}

// forward passes the QR channel's items on as events, asking for the pair
// code after the first QR code when pairing by phone. It reports whether
// the session may stay: false when pairing failed, timed out or was
// stopped.
func (p *pairing) forward(qr <-chan whatsmeow.QRChannelItem) bool {
	asked := p.user == ""
	for {
		var item whatsmeow.QRChannelItem
		var ok bool
		select {
		case item, ok = <-qr:
		case <-p.ctx.Done():
			return false
		}
		if !ok {
			return p.dev.ID != nil
		}
		ev := pairEvent(item)
		switch ev.Kind {
		case PairSucceeded:
			if p.dev.ID != nil {
				ev.JID = p.dev.ID.ToNonAD().String()
			}
		case PairQRCode:
			if !asked {
				asked = true
				code, err := p.ms.client.PairPhone(p.ctx, p.user, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
				if err != nil {
					p.send(PairEvent{Kind: PairFailed, Err: fmt.Errorf("asking for the pair code: %w", err)})
					return false
				}
				ev = PairEvent{Kind: PairPhoneCode, Code: code}
			}
		}
		if !p.send(ev) {
			return false
		}
		if ev.Kind == PairTimedOut || ev.Kind == PairFailed {
			return false
		}
	}
}

func pairEvent(item whatsmeow.QRChannelItem) PairEvent {
	switch item.Event {
	case whatsmeow.QRChannelEventCode:
		return PairEvent{Kind: PairQRCode, Code: item.Code, Timeout: item.Timeout}
	case whatsmeow.QRChannelSuccess.Event:
		return PairEvent{Kind: PairSucceeded}
	case whatsmeow.QRChannelTimeout.Event:
		return PairEvent{Kind: PairTimedOut}
	}
	err := item.Error
	if err == nil {
		err = errors.New(item.Event)
	}
	return PairEvent{Kind: PairFailed, Err: err}
}
