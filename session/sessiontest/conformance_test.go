package sessiontest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// A backend that breaks the contract in several ways; the suite must fail
// it. It runs in a child process so that its failures do not fail us.
func TestConformanceFailsABrokenBackend(t *testing.T) {
	if os.Getenv("SESSIONTEST_BROKEN_CHILD") == "1" {
		var mu sync.Mutex
		sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
			var sent []session.Receipt
			return sessiontest.Harness{
				Session: session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
					// Sends even empty or cancelled receipts, drops all ids
					// but the first, and reports a type it did not send.
					mu.Lock()
					defer mu.Unlock()
					if len(r.MessageIDs) > 1 {
						r.MessageIDs = r.MessageIDs[:1]
					}
					sent = append(sent, r)
					return session.Result{Type: "delivered"}, nil
				}),
				Sent: func() []session.Receipt {
					mu.Lock()
					defer mu.Unlock()
					return append([]session.Receipt(nil), sent...)
				},
			}
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceFailsABrokenBackend$", "-test.v")
	cmd.Env = append(os.Environ(), "SESSIONTEST_BROKEN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the conformance suite passed a broken backend:\n%s", out)
	}
	for _, want := range []string{
		"--- FAIL: TestConformanceFailsABrokenBackend/DirectRead",
		"--- FAIL: TestConformanceFailsABrokenBackend/DirectManyIDs",
		"--- FAIL: TestConformanceFailsABrokenBackend/InvalidNoIDs",
		"--- FAIL: TestConformanceFailsABrokenBackend/CanceledContext",
		"--- SKIP: TestConformanceFailsABrokenBackend/NotConnected",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}
