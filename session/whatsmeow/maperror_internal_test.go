package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/socket"

	"github.com/bluetick/bluetick/session"
)

// Each form in which whatsmeow and its websocket report a connection that
// closed under a call is session.ErrNotConnected; the caller's own context
// ending is not, nor is an error that says nothing of the connection.
func TestMapErrorConnectionLost(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	write := &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"use of closed network connection", live, fmt.Errorf("failed to write msg: failed to write frame: %w", net.ErrClosed), true},
		{"write tcp: broken pipe", live, fmt.Errorf("failed to write msg: %w", write), true},
		{"socket closed", live, socket.ErrSocketClosed, true},
		{"info query disconnected", live, whatsmeow.ErrIQDisconnected, true},
		{"request disconnected", live, &whatsmeow.DisconnectedError{Action: "message send"}, true},
		{"websocket closed", live, fmt.Errorf("failed to read: %w", websocket.CloseError{Code: websocket.StatusGoingAway}), true},
		{"EOF", live, fmt.Errorf("failed to get reader: %w", io.EOF), true},
		{"the socket's context ended", live, fmt.Errorf("failed to write msg: failed to write frame: %w", context.Canceled), true},
		{"the caller's context ended", gone, fmt.Errorf("failed to write msg: %w", context.Canceled), false},
		{"another error", live, errors.New("server returned error 406"), false},
	} {
		err := mapError(tc.ctx, tc.err)
		if got := errors.Is(err, session.ErrNotConnected); got != tc.want {
			t.Errorf("%s: mapError(%v) = %v; ErrNotConnected %v, want %v", tc.name, tc.err, err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: mapError lost the error it maps: %v", tc.name, err)
		}
	}
	if err := mapError(live, nil); err != nil {
		t.Errorf("mapError(nil) = %v", err)
	}
}
