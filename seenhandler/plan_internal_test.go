package seenhandler

import (
	"testing"

	"github.com/bluetick/bluetick/session"
)

// A chat named in its normal form is planned as the client wrote it,
// without making its string again; others are normalised as before.
func TestBuildPlanChatAsGiven(t *testing.T) {
	h, err := New(session.NewMemoryRegistry(), WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		chat, want string
		allocs     float64
	}{
		{"15551234567@s.whatsapp.net", "15551234567@s.whatsapp.net", 0},
		{"120363025246125486@g.us", "120363025246125486@g.us", 0},
		{"15551234567@c.us", "15551234567@s.whatsapp.net", 1},
	} {
		req := seenRequest{Session: "demo", ChatID: tc.chat, MessageIDs: []optString{{s: "3EB0C767D26A1D98A4", ok: true}}}
		names := namesFor(&req, dialectWasend)
		var (
			p    plan
			room [1]planID
		)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := h.buildPlan(&p, room[:0], &req, "demo", names, nil); err != nil {
				t.Fatal(err)
			}
		})
		if p.chatID != tc.want {
			t.Errorf("chat %q: planned %q, want %q", tc.chat, p.chatID, tc.want)
		}
		if allocs != tc.allocs {
			t.Errorf("chat %q: %v allocations, want %v", tc.chat, allocs, tc.allocs)
		}
	}
}
