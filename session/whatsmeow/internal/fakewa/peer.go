package fakewa

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// deliveryWait bounds how long SendMessage waits for the client to have
// handled a message.
const deliveryWait = 10 * time.Second

// peer is another WhatsApp device that sends messages to a client: a Signal
// session from its own store (a device of a fresh in-memory store) to the
// client's device, built from the client's published keys, as WhatsApp's
// servers would hand them out.
type peer struct {
	store   *store.Device
	builder *session.Builder
	cipher  *session.Cipher
}

type peerKey struct {
	to   types.JID // the client's device
	from string    // the signal address the client decrypts with
}

// SendMessage sends msg to the client of device to, as WhatsApp delivers a
// message from another user: a <message> node with attrs (from, id, t,
// participant, addressing_mode, sender_lid, participant_pn, … verbatim;
// type defaults to "text") carrying msg in an <enc type="pkmsg" v="2">,
// encrypted with the Signal protocol by a peer device whose address is
// encFrom — the sender's JID the client decrypts with: the participant in a
// group, the sender in a direct chat, or its LID when the client knows one.
// The client decrypts it and dispatches events.Message through its own
// event dispatch. SendMessage returns once the client has acknowledged the
// message (its delivery receipt), so every event handler has run; it fails
// the test if the client cannot decrypt it.
func (s *Server) SendMessage(t testing.TB, to *store.Device, encFrom types.JID, attrs waBinary.Attrs, msg *waE2E.Message) {
	t.Helper()
	ctx := context.Background()
	p := s.peer(t, to, encFrom)
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		t.Fatalf("fakewa: marshal message: %v", err)
	}
	ciphertext, err := p.cipher.Encrypt(ctx, pad(plaintext))
	if err != nil {
		t.Fatalf("fakewa: encrypt: %v", err)
	}
	encType := "msg"
	if ciphertext.Type() == protocol.PREKEY_TYPE {
		encType = "pkmsg"
	}
	node := waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"type": "text"}}
	for k, v := range attrs {
		node.Attrs[k] = v
	}
	node.Content = []waBinary.Node{{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: ciphertext.Serialize()}}
	id := node.Attrs["id"]
	s.Send(t, node)
	got := s.WaitNode(t, deliveryWait, func(n waBinary.Node) bool {
		return (n.Tag == "receipt" || n.Tag == "ack") && n.Attrs["id"] == id
	})
	if got.Attrs["type"] == "retry" {
		t.Fatalf("fakewa: the client could not decrypt message %v: %s", id, XML(got))
	}
}

// peer returns the peer that sends to device to as encFrom, building its
// Signal session on first use.
func (s *Server) peer(t testing.TB, to *store.Device, encFrom types.JID) *peer {
	t.Helper()
	key := peerKey{to: *to.ID, from: encFrom.SignalAddress().String()}
	s.mu.Lock()
	p := s.peers[key]
	s.mu.Unlock()
	if p != nil {
		return p
	}
	ctx := context.Background()
	own, _ := NewDevice(t)
	id := encFrom
	own.ID = &id
	preKey, err := to.PreKeys.GenOnePreKey(ctx)
	if err != nil {
		t.Fatalf("fakewa: prekey of the client: %v", err)
	}
	bundle := prekey.NewBundle(to.RegistrationID, uint32(to.ID.Device),
		optional.NewOptionalUint32(preKey.KeyID), to.SignedPreKey.KeyID,
		ecc.NewDjbECPublicKey(*preKey.Pub), ecc.NewDjbECPublicKey(*to.SignedPreKey.Pub), *to.SignedPreKey.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*to.IdentityKey.Pub)))
	addr := to.ID.SignalAddress()
	p = &peer{store: own, builder: session.NewBuilderFromSignal(own, addr, store.SignalProtobufSerializer)}
	if err := p.builder.ProcessBundle(ctx, bundle); err != nil {
		t.Fatalf("fakewa: process the client's prekey bundle: %v", err)
	}
	p.cipher = session.NewCipher(p.builder, addr)
	s.mu.Lock()
	s.peers[key] = p
	s.mu.Unlock()
	return p
}

// pad adds WhatsApp's message padding (what whatsmeow's unpadMessage
// strips): n bytes of value n, here always 4.
func pad(b []byte) []byte {
	return append(b, bytes.Repeat([]byte{4}, 4)...)
}
