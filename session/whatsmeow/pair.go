package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/bluetick/bluetick/validate"
)

// Kinds of PairEvent.
const (
	// PairQRCode: show Code as a QR code; it is valid for Timeout.
	PairQRCode = "qr"
	// PairSucceeded: the device is paired as JID; the session connects and
	// is ready once connected.
	PairSucceeded = "success"
	// PairTimedOut: no phone scanned the codes in time; the session is gone.
	PairTimedOut = "timeout"
	// PairFailed: pairing failed with Err; the session is gone.
	PairFailed = "error"
)

// PairEvent is one step of pairing a new session.
type PairEvent struct {
	// Kind is PairQRCode, PairSucceeded, PairTimedOut or PairFailed.
	Kind string
	// Code is the QR code's content (PairQRCode).
	Code string
	// Timeout is how long Code is valid (PairQRCode).
	Timeout time.Duration
	// JID is the paired account's phone-number JID (PairSucceeded).
	JID string
	// Err says why pairing failed (PairFailed).
	Err error
}

// PairQR starts pairing a new session called name by QR code: scan each
// PairQRCode event's Code with WhatsApp on the phone (Linked devices). The
// session is in the registry from now on (answering
// session.ErrNotLoggedIn); the channel ends with PairSucceeded, after which
// the name is stored with the device, or with PairTimedOut or PairFailed,
// after which the session is gone. Read the channel until it is closed.
// ctx bounds the whole pairing.
func (m *Manager) PairQR(ctx context.Context, name string) (<-chan PairEvent, error) {
	_, events, err := m.startPairing(ctx, name)
	return events, err
}

// PairPhone starts pairing a new session called name by pair code: it
// returns the 8-character code to type into WhatsApp on the phone with the
// number phone (Linked devices › Link with phone number), and the events
// as PairQR does (its PairQRCode events may be ignored).
func (m *Manager) PairPhone(ctx context.Context, name, phone string) (string, <-chan PairEvent, error) {
	jid, err := validate.NormalizeParticipant(phone)
	if err != nil || jid.Server != validate.ServerUser {
		return "", nil, fmt.Errorf("pair phone: %q is not a phone number in international format", phone)
	}
	ms, events, err := m.startPairing(ctx, name)
	if err != nil {
		return "", nil, err
	}
	// The pair code can be asked for once the server is ready to pair,
	// which the first QR code tells.
	var first PairEvent
	select {
	case first = <-events:
	case <-ctx.Done():
		m.drop(ms)
		return "", nil, ctx.Err()
	}
	if first.Kind != PairQRCode {
		m.drop(ms)
		return "", nil, fmt.Errorf("pair phone: %s before the pair code: %w", first.Kind, first.Err)
	}
	code, err := ms.client.PairPhone(ctx, jid.User, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		m.drop(ms)
		return "", nil, fmt.Errorf("pair phone: %w", err)
	}
	return code, events, nil
}

func (m *Manager) startPairing(ctx context.Context, name string) (*managed, <-chan PairEvent, error) {
	if !namePattern.MatchString(name) {
		return nil, nil, fmt.Errorf("session name %q: use 1 to 64 letters, digits, _, . and -, starting with a letter or digit", name)
	}
	dev := m.container.NewDevice()
	ms, err := m.add(name, dev)
	if err != nil {
		return nil, nil, err
	}
	// A pairing must fail fast when WhatsApp cannot be reached, not retry.
	ms.client.InitialAutoReconnect = false
	qr, err := ms.client.GetQRChannel(ctx)
	if err == nil {
		err = ms.client.ConnectContext(ctx)
	}
	if err != nil {
		m.drop(ms)
		return nil, nil, fmt.Errorf("pair %q: %w", name, err)
	}
	out := make(chan PairEvent, 1)
	go func() {
		defer close(out)
		for item := range qr {
			ev := pairEvent(item)
			switch ev.Kind {
			case PairSucceeded:
				if dev.ID != nil {
					ev.JID = dev.ID.ToNonAD().String()
				}
			case PairTimedOut, PairFailed:
				m.drop(ms)
			}
			out <- ev
		}
	}()
	return ms, out, nil
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
