package floodlog

import (
	"testing"
	"time"
)

// The first event is logged at once; those within Every after a line are
// counted into the next line, due once Every has passed, which counts
// itself too.
func TestCounter(t *testing.T) {
	var c Counter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, step := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {time.Second, 0}, {30 * time.Second, 0}, {Every, 3}, {Every + time.Second, 0}, {3 * Every, 2}} {
		if got := c.Count(t0.Add(step.at)); got != step.want {
			t.Errorf("event %d at %v: Count = %d, want %d", i, step.at, got, step.want)
		}
	}
}
