package whatsmeow

// Added by bluetick's session/whatsmeow/internal/peers/build.sh (go build
// -overlay) to a whatsmeow that dials its websocket with an *http.Client
// cloned from http.DefaultTransport in NewClient. With $BLUETICK_FAKEWA
// unset it does nothing. Set (JSON: addr, tls_name, root_key hex,
// cert_der base64), it points this process at bluetick's fake WhatsApp
// server: WACertPubKey becomes the fake's root key, and connections to
// web.whatsapp.com:443 made through clones of http.DefaultTransport go to
// addr, TLS checked against the fake's certificate under tls_name. Every
// other host is dialled and checked as before.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
)

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
	fakeRoots := x509.NewCertPool()
	fakeRoots.AddCert(cert)

	const waHost = "web.whatsapp.com"
	t := http.DefaultTransport.(*http.Transport)
	proxy, dial := t.Proxy, t.DialContext
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == waHost || proxy == nil {
			return nil, nil
		}
		return proxy(r)
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == waHost+":443" {
			addr = cfg.Addr
		}
		return dial(ctx, network, addr)
	}
	// The usual verification, except that web.whatsapp.com is the fake.
	t.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			if cs.ServerName == waHost {
				opts.DNSName, opts.Roots = cfg.TLSName, fakeRoots
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}
