package whatsmeow_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// A fence in the context (a cluster's lease) is checked right before each
// write: a call whose fence fails writes nothing, the fence's error its
// answer; one whose fence fails half-way (a receipt of more ids than one
// stanza takes) stops there, the stanzas already written staying sent.
func TestWireFence(t *testing.T) {
	lost := fmt.Errorf("%w: the lease may be lost", session.ErrNotConnected)
	ids := make([]string, session.MaxReceiptIDs+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("3EB0F%04d", i)
	}
	for _, tc := range []struct {
		name    string
		receipt session.Receipt
		passes  int32 // the checks that pass before the fence fails
		frames  int
	}{
		{"direct chat", rcpt(dm, "", session.ReceiptRead, "3EB0F1"), 0, 0},
		{"channel", rcpt(channel, "", session.ReceiptRead, "101"), 0, 0},
		{"lost half-way", rcpt(dm, "", session.ReceiptRead, ids...), 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No presence to send first: the checks are the stanzas'.
			w := newWireWith(t, []bwm.Option{bwm.WithPresence(bwm.PresenceOff, 0)})
			var checks atomic.Int32
			ctx := session.WithFence(context.Background(), func() error {
				if checks.Add(1) > tc.passes {
					return lost
				}
				return nil
			})
			if _, err := w.session.SendReceipt(ctx, tc.receipt); !errors.Is(err, lost) {
				t.Errorf("err = %v, want the fence's", err)
			}
			if n := len(w.sent(t)); n != tc.frames {
				t.Errorf("the server got %d receipts, want %d", n, tc.frames)
			}
		})
	}
	t.Run("presence first", func(t *testing.T) {
		w := newWire(t) // reading like a person: "available" before the receipt
		ctx := session.WithFence(context.Background(), func() error { return lost })
		if _, err := w.session.SendReceipt(ctx, rcpt(dm, "", session.ReceiptRead, "3EB0F2")); !errors.Is(err, lost) {
			t.Errorf("err = %v, want the fence's", err)
		}
		w.sent(t) // a round trip: what was written is in
		for _, n := range w.srv.Nodes() {
			if n.Tag == "presence" && n.Attrs["type"] == "available" {
				t.Errorf("sent %s behind a failing fence", fakewa.XML(n))
			}
		}
	})
	t.Run("passes", func(t *testing.T) {
		w := newWire(t)
		var checks atomic.Int32
		ctx := session.WithFence(context.Background(), func() error { checks.Add(1); return nil })
		if _, err := w.session.SendReceipt(ctx, rcpt(dm, "", session.ReceiptRead, ids...)); err != nil {
			t.Fatal(err)
		}
		if n := len(w.sent(t)); n != 2 || checks.Load() < 2 {
			t.Errorf("%d receipts after %d checks, want 2 receipts, each checked", n, checks.Load())
		}
	})
}
