package whatsmeow

// Added by bluetick's session/whatsmeow/internal/peers/build.sh (go build
// -overlay), with fakewa_http.go or fakewa_gorilla.go: what both read of
// $BLUETICK_FAKEWA.

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// bluetickFakeTarget reads $BLUETICK_FAKEWA (JSON: addr, tls_name,
// root_key hex, cert_der base64) and, when it is set, makes the fake's
// root key WACertPubKey. It returns the fake's address, the name its
// certificate is checked against and a pool holding that certificate;
// ok is false when the variable is unset. A malformed value panics: the
// process was started to talk to the fake, and must not reach WhatsApp.
func bluetickFakeTarget() (addr, tlsName string, roots *x509.CertPool, ok bool) {
	raw := os.Getenv("BLUETICK_FAKEWA")
	if raw == "" {
		return "", "", nil, false
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
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return cfg.Addr, cfg.TLSName, roots, true
}
