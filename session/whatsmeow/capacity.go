package whatsmeow

import (
	"errors"
	"fmt"
	"math"
)

// ErrCapacity is returned by Acquire (and logged by Start) for a session
// beyond [Manager.Capacity]: connecting it would run the process out of
// descriptors, failing other sessions, the store and the HTTP listener
// with "too many open files". Raise the limit (ulimit -n, LimitNOFILE=)
// or place the session on another process.
var ErrCapacity = errors.New("whatsmeow: the process holds as many sessions as its descriptor limit allows")

// defaultFDReserve is the part of the descriptor limit a [Manager] leaves,
// by default, to everything but its sessions' connections besides the
// store's pool: the HTTP server's listener and a modest number of its
// connections, log files, the process's own (see [WithFDReserve]).
const defaultFDReserve = 256

// WithFDReserve sets how many of the process's open descriptors the
// [Manager] leaves to everything but its sessions' connections (each
// connected session holds one socket): the HTTP server's listener and its
// connections (a server that limits them at N needs N more), the store's
// pool, files. n must not be negative. Default: 256
// plus the store's pool (DBPool.MaxOpen, three descriptors per connection
// for SQLite: the file, its WAL and its shared memory).
func WithFDReserve(n int) Option {
	return func(o *options) error {
		o.forOpen("WithFDReserve")
		if n < 0 {
			return errors.New("whatsmeow: WithFDReserve: negative reserve")
		}
		o.fdReserve = &n
		return nil
	}
}

// fdReserve is the reserve the options and the store's dialect set.
func (o *options) reserve(dialect string) int {
	if o.fdReserve != nil {
		return *o.fdReserve
	}
	perConn := 1
	if dialect == "sqlite" {
		perConn = 3
	}
	return defaultFDReserve + perConn*o.pool.withDefaults().MaxOpen
}

// Capacity returns how many sessions this process can hold connected: its
// limit on open descriptors as it is now (RLIMIT_NOFILE's soft limit,
// which [Open] raised to the hard one) minus the reserve of
// [WithFDReserve], at least 0; math.MaxInt where the system sets no limit
// the Manager knows of. Start and Acquire refuse sessions beyond it with
// [ErrCapacity]. Sessions being paired count too. It changes nothing.
func (m *Manager) Capacity() int {
	limit := fdLimit()
	if limit == math.MaxInt {
		return math.MaxInt
	}
	return max(0, limit-m.reserve)
}

// heldLocked counts the sessions that hold, or are about to hold, a
// connection: acquired ones and ones being paired. m.mu must be held.
func (m *Manager) heldLocked() int {
	n := 0
	for _, ms := range m.sessions {
		if ms.acquired.Load() || !ms.session.paired() {
			n++
		}
	}
	return n
}

// refuse reports a session refused for capacity: an error for Acquire, a
// log line at Error and an [EventRefused].
func (m *Manager) refuse(ms *managed, held, capacity int) error {
	m.opts.logger.Error("session refused: the process holds as many sessions as its descriptor limit allows; raise the limit or place it elsewhere",
		"session", ms.name, "held", held, "capacity", capacity, "fd_limit", fdLimit(), "fd_reserve", m.reserve)
	m.observe(ms, EventRefused)
	return fmt.Errorf("%w (%d held, capacity %d: descriptor limit %d minus %d reserved)", ErrCapacity, held, capacity, fdLimit(), m.reserve)
}
