package fakewa

import (
	"testing"
	"testing/synctest"
	"time"
)

// WaitConnections wakes when a client connects, WithCountOnly too, where
// no recorded node wakes it.
func TestWaitConnectionsWakesOnConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Server{conns: make(map[*conn]struct{}), changed: make(chan struct{}), cfg: config{countOnly: true}}
		go func() {
			synctest.Wait() // WaitConnections waits
			s.track(&conn{})
		}()
		s.WaitConnections(t, time.Minute, 1)
	})
}
