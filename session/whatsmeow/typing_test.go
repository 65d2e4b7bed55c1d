package whatsmeow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// A Session types like WhatsApp Web: <composing/> at once and again every
// 10 s while the typing time lasts, then <paused/>. A later call for the same
// chat extends the time without a composing of its own; a call after the
// paused starts again. Closing the Session stops it without a paused. Under
// synctest the times are exact.
func TestTypingResendsComposingEvery10s(t *testing.T) {
	const (
		c = types.ChatPresenceComposing
		p = types.ChatPresencePaused
	)
	type sent struct {
		state types.ChatPresence
		at    time.Duration // after the first call
	}
	tests := []struct {
		name  string
		calls []time.Duration // when Typing(25 s) is called, after the first
		d     time.Duration
		close time.Duration // when the Session is closed; 0: after the paused
		want  []sent
	}{
		{"25 s", []time.Duration{0}, 25 * time.Second, 0,
			[]sent{{c, 0}, {c, 10 * time.Second}, {c, 20 * time.Second}, {p, 25 * time.Second}}},
		{"shorter than 10 s", []time.Duration{0}, 4 * time.Second, 0,
			[]sent{{c, 0}, {p, 4 * time.Second}}},
		{"exactly 10 s: paused, not composing", []time.Duration{0}, 10 * time.Second, 0,
			[]sent{{c, 0}, {p, 10 * time.Second}}},
		{"extended 5 s in", []time.Duration{0, 5 * time.Second}, 25 * time.Second, 0,
			[]sent{{c, 0}, {c, 10 * time.Second}, {c, 20 * time.Second}, {p, 30 * time.Second}}},
		{"extended twice", []time.Duration{0, 15 * time.Second, 33 * time.Second}, 25 * time.Second, 0,
			[]sent{{c, 0}, {c, 10 * time.Second}, {c, 20 * time.Second}, {c, 30 * time.Second}, {c, 40 * time.Second}, {c, 50 * time.Second}, {p, 58 * time.Second}}},
		{"again after the paused", []time.Duration{0, 40 * time.Second}, 25 * time.Second, 0,
			[]sent{{c, 0}, {c, 10 * time.Second}, {c, 20 * time.Second}, {p, 25 * time.Second},
				{c, 40 * time.Second}, {c, 50 * time.Second}, {c, 60 * time.Second}, {p, 65 * time.Second}}},
		{"closed while typing", []time.Duration{0}, 25 * time.Second, 12 * time.Second,
			[]sent{{c, 0}, {c, 10 * time.Second}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeClient()
			dev := newDevice(t, true)
			synctest.Test(t, func(t *testing.T) {
				s := mustNew(t, fc, dev)
				defer s.Close()
				start := time.Now()
				for _, at := range tc.calls {
					time.Sleep(time.Until(start.Add(at)))
					if err := s.Typing(context.Background(), dm, tc.d); err != nil {
						t.Fatal(err)
					}
				}
				if tc.close > 0 {
					time.Sleep(time.Until(start.Add(tc.close)))
					s.Close()
				}
				time.Sleep(2 * time.Minute) // long past the end
				var got, want []string
				for _, st := range fc.chatStatesSent() {
					got = append(got, fmt.Sprintf("%s %s at %v", st.chat, st.state, st.at.Sub(start)))
				}
				for _, st := range tc.want {
					want = append(want, fmt.Sprintf("%s %s at %v", dm, st.state, st.at))
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("chatstates\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
				}
			})
		})
	}
}
