package whatsmeow

// Added by bluetick's session/whatsmeow/internal/peers/build.sh (go build
// -overlay) to a whatsmeow that dials its websocket with an *http.Client
// cloned from http.DefaultTransport in NewClient. With $BLUETICK_FAKEWA
// unset it does nothing. Set (see fakewa_target.go), it points this
// process at bluetick's fake WhatsApp server: WACertPubKey becomes the
// fake's root key, and connections to web.whatsapp.com:443 made through
// clones of http.DefaultTransport go to the fake's address, TLS checked
// against its certificate under its TLS name. Every other host is dialled
// and checked as before.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
)

func init() {
	fakeAddr, tlsName, fakeRoots, ok := bluetickFakeTarget()
	if !ok {
		return
	}

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
			addr = fakeAddr
		}
		return dial(ctx, network, addr)
	}
	// The usual verification, except that web.whatsapp.com is the fake.
	t.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			if cs.ServerName == waHost {
				opts.DNSName, opts.Roots = tlsName, fakeRoots
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}
