package fakewa

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ReplacedGrace is how long the server leaves a replaced connection open
// after its stream error, for the client to close it, before closing it
// itself. whatsmeow handles a stream error in its handler queue, apart
// from the socket's read loop: a close right behind the error can reach it
// first, and it then reports events.Disconnected and reconnects (at once,
// on its first attempt) instead of events.StreamReplaced.
const ReplacedGrace = 2 * time.Second

// replacedClose bounds how long the server waits for the replaced client's
// answer to its websocket close.
const replacedClose = 5 * time.Second

// login registers c as a connection of device and, as WhatsApp allows
// one connection per linked device, replaces the device's older
// connections: each gets <stream:error><conflict type="replaced"/>
// </stream:error> and is closed when the client has not closed it within
// ReplacedGrace. whatsmeow answers that with events.StreamReplaced and
// does not reconnect.
func (s *Server) login(ctx context.Context, c *conn, device types.JID) {
	s.mu.Lock()
	c.device = device
	var older []*conn
	n := 0
	for o := range s.conns {
		if o.device == c.device {
			n++ // c included: set before login
			if o != c {
				older = append(older, o)
			}
		}
	}
	if n > s.maxConcurrent[c.device] {
		s.maxConcurrent[c.device] = n
	}
	s.replaced += len(older)
	s.mu.Unlock()
	conflict := waBinary.Node{Tag: "stream:error", Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"}}}}
	for _, o := range older {
		o.log.Infof("replacing the connection of %s with a newer one", c.device)
		if err := o.send(ctx, conflict); err != nil {
			o.log.Warnf("send conflict: %v", err)
		}
		go func() {
			t := time.NewTimer(ReplacedGrace)
			defer t.Stop()
			select {
			case <-o.done:
				return
			case <-t.C:
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = o.ws.Close(websocket.StatusNormalClosure, "")
			}()
			select {
			case <-done:
			case <-time.After(replacedClose):
				_ = o.ws.CloseNow()
			}
		}()
	}
}

// Replaced returns how many connections the server has replaced
// with a newer connection of the same device (see Connect a second client
// for a device): the number of <conflict type="replaced"/> stream errors
// sent.
func (s *Server) Replaced() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replaced
}

// MaxConcurrent returns the most connections of device that were open at
// once at a login (a connection replaced by a newer one counts until it has
// closed, so any replacement makes it 2). For the zero JID it returns the
// most of any device. A device is named by its AD JID, e.g.
// 15550000001:1@s.whatsapp.net.
func (s *Server) MaxConcurrent(device types.JID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if device.IsEmpty() {
		most := 0
		for _, n := range s.maxConcurrent {
			most = max(most, n)
		}
		return most
	}
	return s.maxConcurrent[device]
}

// ConnectedDevices returns the devices of the open connections that are
// logged in or logging in (past the handshake: the server is about to send
// <success>, so a client that has logged in is listed), sorted, a device
// once per connection (twice while a replaced connection is closing).
func (s *Server) ConnectedDevices() []types.JID {
	s.mu.Lock()
	var out []types.JID
	for c := range s.conns {
		if !c.device.IsEmpty() {
			out = append(out, c.device)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b types.JID) int { return cmp.Compare(a.String(), b.String()) })
	return out
}
