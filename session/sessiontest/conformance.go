package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Harness is what Run needs from the backend under test.
type Harness struct {
	// Session is the backend under test. Required.
	Session session.Session
	// Sent returns every receipt the backend has really transmitted so far,
	// in order, with Type as transmitted — from a wire capture, a
	// recording, or whatever the backend's test can observe. Required.
	Sent func() []session.Receipt
	// Disconnect, when set, cuts the backend's connection: SendReceipt must
	// then fail with an error wrapping session.ErrNotConnected and send
	// nothing. When nil that test is skipped.
	Disconnect func()
}

// Addresses Run sends to.
const (
	confUser   = "15551234567@s.whatsapp.net"
	confLID    = "123456789012345@lid"
	confGroup  = "120363012345678901@g.us"
	confSender = "15557654321@s.whatsapp.net"
)

// Run checks that a session.Session implementation keeps the Session
// contract. newHarness is called once per subtest and must return a fresh
// backend with nothing sent yet.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	ts := time.Unix(1767225600, 0)
	receipt := func(chat, sender string, typ session.ReceiptType, ids ...string) session.Receipt {
		return session.Receipt{Chat: chat, Sender: sender, MessageIDs: ids, Type: typ, Timestamp: ts}
	}
	sends := []struct {
		name    string
		receipt session.Receipt
		allowed []session.ReceiptType
	}{
		{"DirectRead", receipt(confUser, "", session.ReceiptRead, "3EB0C767D26A1D98A4"),
			[]session.ReceiptType{session.ReceiptRead, session.ReceiptReadSelf}},
		{"DirectManyIDs", receipt(confUser, "", session.ReceiptRead, "3EB0AAAA", "3EB0BBBB", "3EB0CCCC"),
			[]session.ReceiptType{session.ReceiptRead, session.ReceiptReadSelf}},
		{"LIDRead", receipt(confLID, "", session.ReceiptRead, "3EB0DDDD"),
			[]session.ReceiptType{session.ReceiptRead, session.ReceiptReadSelf}},
		{"GroupWithSender", receipt(confGroup, confSender, session.ReceiptRead, "3EB0EEEE", "3EB0FFFF"),
			[]session.ReceiptType{session.ReceiptRead, session.ReceiptReadSelf}},
		{"Played", receipt(confUser, "", session.ReceiptPlayed, "3EB0A0A0"),
			[]session.ReceiptType{session.ReceiptPlayed, session.ReceiptPlayedSelf}},
	}
	for _, tc := range sends {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			res, err := h.Session.SendReceipt(context.Background(), tc.receipt)
			if err != nil {
				t.Fatalf("SendReceipt: %v", err)
			}
			if !slices.Contains(tc.allowed, res.Type) {
				t.Errorf("Result.Type = %q, want one of %q", res.Type, tc.allowed)
			}
			want := tc.receipt
			want.Type = res.Type
			sent := h.Sent()
			if len(sent) != 1 {
				t.Fatalf("sent %d receipts, want 1: %+v", len(sent), sent)
			}
			if err := sameReceipt(sent[0], want); err != nil {
				t.Error(err)
			}
		})
	}

	// Refusals: the backend must fail with the error named and send nothing.
	valid := receipt(confUser, "", session.ReceiptRead, "3EB0C767D26A1D98A4")
	refusals := []struct {
		name       string
		receipt    session.Receipt
		canceled   bool // call with a cancelled context
		disconnect bool // call after Harness.Disconnect
		want       error
	}{
		{name: "InvalidNoIDs", receipt: receipt(confUser, "", session.ReceiptRead), want: session.ErrInvalidReceipt},
		{name: "InvalidNoChat", receipt: receipt("", "", session.ReceiptRead, "3EB0C767D26A1D98A4"), want: session.ErrInvalidReceipt},
		{name: "CanceledContext", receipt: valid, canceled: true, want: context.Canceled},
		{name: "NotConnected", receipt: valid, disconnect: true, want: session.ErrNotConnected},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.disconnect {
				if h.Disconnect == nil {
					t.Skip("the harness has no Disconnect")
				}
				h.Disconnect()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.canceled {
				cancel()
			}
			if _, err := h.Session.SendReceipt(ctx, tc.receipt); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want one wrapping %v", err, tc.want)
			}
			if sent := h.Sent(); len(sent) != 0 {
				t.Errorf("sent %+v, want nothing", sent)
			}
		})
	}

	t.Run("Concurrent", func(t *testing.T) {
		h := newHarness(t)
		const workers, each = 8, 4
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					id := fmt.Sprintf("3EB0%02d%02d", w, i)
					if _, err := h.Session.SendReceipt(context.Background(), receipt(confUser, "", session.ReceiptRead, id)); err != nil {
						errs <- fmt.Errorf("%s: %w", id, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		ids := map[string]int{}
		for _, r := range h.Sent() {
			for _, id := range r.MessageIDs {
				ids[id]++
			}
		}
		if len(ids) != workers*each {
			t.Errorf("sent %d distinct ids, want %d", len(ids), workers*each)
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("id %s sent %d times", id, n)
			}
		}
	})
}

// sameReceipt compares what was sent with what was asked; timestamps to the
// second, as WhatsApp carries them.
func sameReceipt(got, want session.Receipt) error {
	if got.Chat != want.Chat || got.Sender != want.Sender || got.Type != want.Type ||
		!slices.Equal(got.MessageIDs, want.MessageIDs) || got.Timestamp.Unix() != want.Timestamp.Unix() {
		return fmt.Errorf("sent %+v, want %+v", got, want)
	}
	return nil
}
