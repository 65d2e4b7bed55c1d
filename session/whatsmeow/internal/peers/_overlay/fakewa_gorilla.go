package whatsmeow

// Added by bluetick's session/whatsmeow/internal/peers/build.sh (go build
// -overlay) to a whatsmeow that dials its websocket with a gorilla
// websocket.Dialer; the patched client.go of the same overlay asks
// bluetickFakeDialer first. With $BLUETICK_FAKEWA unset it does nothing and
// bluetickFakeDialer returns nil. Set (see fakewa_target.go), it points
// this process at bluetick's fake WhatsApp server: WACertPubKey becomes the
// fake's root key and the websocket goes to the fake's address, TLS
// checked against its certificate under its TLS name.

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/gorilla/websocket"
)

var bluetickFake *websocket.Dialer

func init() {
	addr, tlsName, roots, ok := bluetickFakeTarget()
	if !ok {
		return
	}
	bluetickFake = &websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: tlsName},
	}
}

// bluetickFakeDialer returns the dialer to the fake, or nil without
// $BLUETICK_FAKEWA.
func bluetickFakeDialer() *websocket.Dialer { return bluetickFake }
