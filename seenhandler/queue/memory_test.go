package queue_test

import (
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/queuetest"
)

func TestMemory(t *testing.T) {
	queuetest.Run(t, func(*testing.T) queue.Queue { return queue.NewMemory() })
}

// Total sums the sessions' counts and keeps the earliest pending receipt's
// acceptance, ignoring sessions with none pending.
func TestTotal(t *testing.T) {
	early, late := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	got := queue.Total([]queue.SessionStats{
		{Session: "a", Sent: 3, Failed: 1, Pending: 2, OldestPending: late},
		{Session: "b", Sent: 5},
		{Session: "c", Pending: 1, OldestPending: early},
	})
	if want := (queue.SessionStats{Sent: 8, Failed: 1, Pending: 3, OldestPending: early}); got != want {
		t.Errorf("Total = %+v, want %+v", got, want)
	}
	if got := queue.Total(nil); got != (queue.SessionStats{}) {
		t.Errorf("Total(nil) = %+v", got)
	}
}
