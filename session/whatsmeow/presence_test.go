package whatsmeow_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// PresenceReading, timed under synctest: "unavailable" at connection;
// "available" before the first receipt and none before the next (still
// online), each receipt restarting the idle countdown; "unavailable" the
// idle time after the last receipt, not a moment before; "available" again
// before the next receipt. Typing is activity too: a second Typing call
// extends the typing (its composings go on) and with them the account's
// time online, "unavailable" coming the idle time after the last composing.
func TestPresenceReadingIdle(t *testing.T) {
	const (
		on  = types.PresenceAvailable
		off = types.PresenceUnavailable
	)
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		s := mustNew(t, fc, newDevice(t, true), bwm.WithPresence(bwm.PresenceReading, 30*time.Second))
		defer s.Close()
		start := time.Now()
		at := func(d time.Duration, want ...types.Presence) {
			t.Helper()
			time.Sleep(time.Until(start.Add(d)))
			synctest.Wait()
			fc.mu.Lock()
			got := slices.Clone(fc.presences)
			fc.mu.Unlock()
			if !slices.Equal(got, want) {
				t.Fatalf("at %v: presences %v, want %v", d, got, want)
			}
		}
		read := func(id string) {
			t.Helper()
			if _, err := s.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, id)); err != nil {
				t.Fatal(err)
			}
		}
		at(0, off) // at connection, with the push name
		read("R1")
		at(0, off, on)
		at(10*time.Second, off, on)
		read("R2") // still online: no presence; the countdown starts again
		at(40*time.Second-time.Millisecond, off, on)
		at(40*time.Second, off, on, off)
		read("R3")
		at(50*time.Second, off, on, off, on)

		// Typing for 25 s at 50 s, extended at 60 s to last until 85 s:
		// composings at 50, 60, 70 and 80 s, paused at 85 s. The last
		// composing, at 80 s, is the last activity: unavailable at 110 s.
		if err := s.Typing(context.Background(), dm, 25*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		if err := s.Typing(context.Background(), dm, 25*time.Second); err != nil {
			t.Fatal(err)
		}
		at(110*time.Second-time.Millisecond, off, on, off, on)
		at(110*time.Second, off, on, off, on, off)
		var states []string
		for _, st := range fc.chatStatesSent() {
			states = append(states, fmt.Sprintf("%s@%v", st.state, st.at.Sub(start)))
		}
		want := []string{"composing@50s", "composing@1m0s", "composing@1m10s", "composing@1m20s", "paused@1m25s"}
		if !slices.Equal(states, want) {
			t.Errorf("chatstates %v, want %v", states, want)
		}
	})
}
