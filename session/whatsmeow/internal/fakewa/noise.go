package fakewa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"go.mau.fi/whatsmeow/socket"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// handshake is the responder side of Noise_XX_25519_AESGCM_SHA256 as
// whatsmeow speaks it (socket/noisehandshake.go): the same hash, salt and
// counter rules, driven from the other end.
type handshake struct {
	hash    []byte
	salt    []byte
	key     cipher.AEAD
	counter uint32
}

// newHandshake starts a handshake whose prologue is header, the bytes the
// client sent before its first frame.
func newHandshake(header []byte) (*handshake, error) {
	h := &handshake{hash: []byte(socket.NoiseStartPattern)}
	if len(h.hash) != 32 {
		sum := sha256.Sum256(h.hash)
		h.hash = sum[:]
	}
	h.salt = h.hash
	var err error
	if h.key, err = newGCM(h.hash); err != nil {
		return nil, err
	}
	h.authenticate(header)
	return h, nil
}

func (h *handshake) authenticate(data []byte) {
	sum := sha256.Sum256(append(h.hash, data...))
	h.hash = sum[:]
}

func (h *handshake) encrypt(plaintext []byte) []byte {
	ciphertext := h.key.Seal(nil, iv(h.counter), plaintext, h.hash)
	h.counter++
	h.authenticate(ciphertext)
	return ciphertext
}

func (h *handshake) decrypt(ciphertext []byte) ([]byte, error) {
	plaintext, err := h.key.Open(nil, iv(h.counter), ciphertext, h.hash)
	h.counter++
	if err != nil {
		return nil, err
	}
	h.authenticate(ciphertext)
	return plaintext, nil
}

// mix mixes the X25519 shared secret of priv and pub into the key.
func (h *handshake) mix(priv, pub *[32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return fmt.Errorf("x25519: %w", err)
	}
	write, read, err := expand(h.salt, secret)
	if err != nil {
		return err
	}
	h.counter = 0
	h.salt = write
	h.key, err = newGCM(read)
	return err
}

// finish derives the transport keys. The client writes with the first key
// and reads with the second, so the server does the opposite.
func (h *handshake) finish() (*transport, error) {
	clientWrite, clientRead, err := expand(h.salt, nil)
	if err != nil {
		return nil, err
	}
	t := &transport{}
	if t.read, err = newGCM(clientWrite); err != nil {
		return nil, err
	}
	if t.write, err = newGCM(clientRead); err != nil {
		return nil, err
	}
	return t, nil
}

// transport encrypts and decrypts the frames that follow the handshake:
// AES-GCM without additional data, one counter per direction.
type transport struct {
	read, write cipher.AEAD

	readCounter uint32 // only touched by the connection's read loop

	writeMu      sync.Mutex
	writeCounter uint32
}

func (t *transport) open(ciphertext []byte) ([]byte, error) {
	plaintext, err := t.read.Open(nil, iv(t.readCounter), ciphertext, nil)
	t.readCounter++
	return plaintext, err
}

// seal encrypts plaintext with the next write counter and hands the result to
// send while still holding the write lock, so frames leave in counter order.
func (t *transport) seal(plaintext []byte, send func([]byte) error) error {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	ciphertext := t.write.Seal(nil, iv(t.writeCounter), plaintext, nil)
	t.writeCounter++
	return send(ciphertext)
}

func iv(counter uint32) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b[8:], counter)
	return b
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

func expand(salt, secret []byte) (write, read []byte, err error) {
	r := hkdf.New(sha256.New, secret, salt, nil)
	write = make([]byte, 32)
	read = make([]byte, 32)
	if _, err = io.ReadFull(r, write); err != nil {
		return nil, nil, fmt.Errorf("hkdf: %w", err)
	}
	if _, err = io.ReadFull(r, read); err != nil {
		return nil, nil, fmt.Errorf("hkdf: %w", err)
	}
	return write, read, nil
}
