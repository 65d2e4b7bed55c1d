package session_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bluetick/bluetick/session"
)

func TestRetryAfter(t *testing.T) {
	err := fmt.Errorf("pairing: %w", session.RetryLater(session.ErrNotLoggedIn, 3*time.Second))
	if d, ok := session.RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v; want 3s, true", d, ok)
	}
	if !errors.Is(err, session.ErrNotLoggedIn) || err.Error() != "pairing: session not logged in" {
		t.Errorf("err = %v", err)
	}
	if _, ok := session.RetryAfter(session.ErrNotLoggedIn); ok {
		t.Error("RetryAfter of a bare sentinel is known")
	}
	if err := session.RetryLater(session.ErrNotConnected, 0); err != session.ErrNotConnected {
		t.Errorf("WithRetryAfter(err, 0) = %v, want err itself", err)
	}
}

// ErrNotReady is an ErrNotConnected (what retries a session that is down
// retries it too), and not the other way round.
func TestNotReadyIsNotConnected(t *testing.T) {
	err := fmt.Errorf("%w: the read-receipt setting is unknown", session.ErrNotReady)
	if !errors.Is(err, session.ErrNotReady) || !errors.Is(err, session.ErrNotConnected) {
		t.Errorf("%v: not ErrNotReady and ErrNotConnected", err)
	}
	if errors.Is(session.ErrNotConnected, session.ErrNotReady) {
		t.Error("ErrNotConnected is ErrNotReady")
	}
}
