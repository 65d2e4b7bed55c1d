package whatsmeow

// Added by bluetick's session/whatsmeow/internal/peers/build.sh (go build
// -overlay) to a whatsmeow that dials its websocket with a gorilla
// websocket.Dialer; the patched client.go of the same overlay asks
// bluetickFakeDialer first. With $BLUETICK_FAKEWA unset it does nothing and
// bluetickFakeDialer returns nil. Set (JSON: addr, tls_name, root_key hex,
// cert_der base64), it points this process at bluetick's fake WhatsApp
// server: WACertPubKey becomes the fake's root key and the websocket goes
// to addr, TLS checked against the fake's certificate under tls_name.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/gorilla/websocket"
)

var bluetickFake *websocket.Dialer

func init() {
	raw := os.Getenv("BLUETICK_FAKEWA")
	if raw == "" {
		return
	}
	var cfg struct {
		Addr    string `json:"addr"`
		TLSName string `json:"tls_name"`
		RootKey string `json:"root_key"`
		CertDER string `json:"cert_der"`
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		panic(fmt.Sprintf("$BLUETICK_FAKEWA: %v", err))
	}
	key, err := hex.DecodeString(cfg.RootKey)
	if err != nil || len(key) != len(WACertPubKey) {
		panic(fmt.Sprintf("$BLUETICK_FAKEWA: root key %q: want %d bytes of hex", cfg.RootKey, len(WACertPubKey)))
	}
	der, err := base64.StdEncoding.DecodeString(cfg.CertDER)
	if err != nil {
		panic(fmt.Sprintf("$BLUETICK_FAKEWA: cert_der: %v", err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("$BLUETICK_FAKEWA: cert_der: %v", err))
	}
	WACertPubKey = [32]byte(key)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	bluetickFake = &websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", cfg.Addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: cfg.TLSName},
	}
}

// bluetickFakeDialer returns the dialer to the fake, or nil without
// $BLUETICK_FAKEWA.
func bluetickFakeDialer() *websocket.Dialer { return bluetickFake }
