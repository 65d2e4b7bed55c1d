package fakewa

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
)

// errNoNetwork is what the media client of NewClient's clients answers.
var errNoNetwork = errors.New("fakewa: media transfers are not faked and tests do not dial out")

// ConnectTimeout bounds how long Connect waits for the client to log in.
const ConnectTimeout = 10 * time.Second

// NewClient returns a whatsmeow client for dev that dials s, not yet
// connected, so that a test can add event handlers first. dev must be paired
// (have an ID, as NewDevice's have): the fake logs devices in but cannot pair
// them. The client's automatic reconnection is off (EnableAutoReconnect
// false), its media HTTP client refuses to dial, its log is kept in memory
// and printed only if the test fails, and t's cleanup disconnects it.
func (s *Server) NewClient(t testing.TB, dev *store.Device) *whatsmeow.Client {
	t.Helper()
	if dev.ID == nil {
		t.Fatalf("fakewa: device has no ID; the fake only logs in paired devices")
	}
	cli := whatsmeow.NewClient(dev, s.log.logger("Client"))
	cli.EnableAutoReconnect = false
	cli.SetWebsocketHTTPClient(s.HTTPClient())
	cli.SetPreLoginHTTPClient(s.HTTPClient())
	cli.SetMediaHTTPClient(&http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errNoNetwork
		},
	}})
	t.Cleanup(cli.Disconnect)
	return cli
}

// Connect returns a client for dev (see NewClient) that has connected to s,
// completed the handshake and logged in: it has emitted events.Connected, so
// IsConnected and IsLoggedIn report true. It fails the test if that takes
// longer than ConnectTimeout.
func (s *Server) Connect(t testing.TB, dev *store.Device) *whatsmeow.Client {
	t.Helper()
	cli := s.NewClient(t, dev)
	connected := make(chan struct{}, 1)
	handler := cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer cli.RemoveEventHandler(handler)
	if err := cli.Connect(); err != nil {
		t.Fatalf("fakewa: connect: %v", err)
	}
	select {
	case <-connected:
	case <-time.After(ConnectTimeout):
		t.Fatalf("fakewa: client not logged in within %v", ConnectTimeout)
	}
	return cli
}
