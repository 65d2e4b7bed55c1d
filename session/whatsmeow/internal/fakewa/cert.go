package fakewa

import (
	"fmt"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// rootKey is the fake certificate authority of this process. Every Server's
// certificate chain is signed by it, so that several servers can be alive at
// once while whatsmeow.WACertPubKey holds a single key.
var rootKey = sync.OnceValue(keys.NewKeyPair)

// certSwap counts the live servers and remembers the real WhatsApp root key
// while whatsmeow.WACertPubKey is replaced by the fake one.
var certSwap struct {
	mu    sync.Mutex
	users int
	saved [32]byte
}

// installRootKey points whatsmeow.WACertPubKey at the fake root key. Every
// call must be matched by one call of the returned function, which puts the
// real key back once no server needs the fake one.
func installRootKey() (restore func()) {
	certSwap.mu.Lock()
	defer certSwap.mu.Unlock()
	if certSwap.users == 0 {
		certSwap.saved = whatsmeow.WACertPubKey
		whatsmeow.WACertPubKey = *rootKey().Pub
	}
	certSwap.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			certSwap.mu.Lock()
			defer certSwap.mu.Unlock()
			certSwap.users--
			if certSwap.users == 0 {
				whatsmeow.WACertPubKey = certSwap.saved
			}
		})
	}
}

// certChain returns the serialized waCert.CertChain that the server sends,
// encrypted, in its ServerHello: an intermediate certificate signed by the
// fake root key and a leaf certificate for static, signed by the
// intermediate key. It satisfies whatsmeow's verifyServerCert.
func certChain(static *keys.KeyPair) ([]byte, error) {
	const intermediateSerial = 1
	intermediate := keys.NewKeyPair()
	now := time.Now()
	notBefore := uint64(now.Add(-time.Hour).Unix())
	notAfter := uint64(now.Add(24 * time.Hour).Unix())

	intermediateDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(whatsmeow.WACertIssuerSerial),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(notBefore),
		NotAfter:     proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal intermediate certificate: %w", err)
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial + 1),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          static.Pub[:],
		NotBefore:    proto.Uint64(notBefore),
		NotAfter:     proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal leaf certificate: %w", err)
	}
	intermediateSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*rootKey().Priv), intermediateDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*intermediate.Priv), leafDetails)
	chain, err := proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: intermediateDetails, Signature: intermediateSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal certificate chain: %w", err)
	}
	return chain, nil
}
