// Package floodlog keeps a failure that repeats from becoming a flood of
// log lines: a Counter says when one line is due, and how many events it
// stands for.
package floodlog

import (
	"sync"
	"time"
)

// Every is how often at most a Counter's events are logged.
const Every = time.Minute

// Counter counts events and says when one log line is due for them: at
// the first, then at most once an Every, with the count since. The zero
// value is ready; it is safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	last   time.Time // the last line
	events int       // since
}

// Count counts one event at now and returns how many to log now (those
// since the last line), or 0 when a line was logged within Every.
func (c *Counter) Count(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if !c.last.IsZero() && now.Sub(c.last) < Every {
		return 0
	}
	n := c.events
	c.last, c.events = now, 0
	return n
}
