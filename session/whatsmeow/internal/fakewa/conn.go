package fakewa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
)

// conn is one client connection: the framing of socket/framesocket.go, the
// Noise handshake, then a loop that records and answers nodes.
type conn struct {
	srv *Server
	ws  *websocket.Conn
	log waLog.Logger

	header []byte // the bytes the client sent before its first frame
	buf    []byte // received bytes not yet split into frames
	noise  *transport

	loggedIn atomic.Bool   // <success> was sent
	done     chan struct{} // closed when serve returns
	device   types.JID     // the device logging in, once known; guarded by srv.mu
	quiet    bool          // WithCountOnly: no node is logged
}

func (c *conn) serve(ctx context.Context) {
	defer close(c.done)
	defer func() { _ = c.ws.CloseNow() }()
	c.ws.SetReadLimit(int64(socket.FrameMaxSize + socket.FrameLengthSize + len(socket.WAConnHeader)))

	payload, err := c.handshake(ctx)
	if err != nil {
		c.log.Warnf("handshake: %v", err)
		return
	}
	if payload.Username == nil {
		// A device without an ID registers (pairs) instead of logging
		// in: it is offered QR codes, which no phone scans here.
		c.log.Infof("registration of a new device: offering QR codes")
		if err := c.send(ctx, pairDeviceQuery()); err != nil {
			c.log.Warnf("send pair-device: %v", err)
			return
		}
	} else {
		c.log.Infof("login of %d:%d", payload.GetUsername(), payload.GetDevice())
		c.srv.login(ctx, c, types.JID{User: strconv.FormatUint(payload.GetUsername(), 10), Device: uint16(payload.GetDevice()), Server: types.DefaultUserServer})
		err = c.send(ctx, waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
			"t":        strconv.FormatInt(time.Now().Unix(), 10),
			"location": "fakewa",
		}})
		if err != nil {
			c.log.Warnf("send success: %v", err)
			return
		}
		c.loggedIn.Store(true)
	}

	for {
		frame, err := c.readFrame(ctx)
		if err != nil {
			c.log.Debugf("connection ends: %v", err)
			return
		}
		node, err := c.decode(frame)
		if err != nil {
			c.log.Errorf("%v", err)
			return
		}
		if !c.quiet {
			c.log.Debugf("recv %s", node.String())
		}
		c.srv.record(*node)
		if err := c.answer(ctx, *node); err != nil {
			c.log.Debugf("answer: %v", err)
			return
		}
	}
}

// pairDeviceQuery is the query that offers a registering device its QR codes,
// as WhatsApp sends it: six refs, which whatsmeow turns into codes (the
// first valid 60 s, the others 20 s each).
func pairDeviceQuery() waBinary.Node {
	refs := make([]waBinary.Node, 6)
	for i := range refs {
		refs[i] = waBinary.Node{Tag: "ref", Content: []byte("fakewa-ref-" + strconv.Itoa(i+1))}
	}
	return waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": "fakewa-pair-1", "type": "set", "from": types.ServerJID},
		Content: []waBinary.Node{{Tag: "pair-device", Content: refs}}}
}

// handshake runs the responder side of Noise XX and returns the client's
// login payload.
func (c *conn) handshake(ctx context.Context) (*waWa6.ClientPayload, error) {
	frame, err := c.readFrame(ctx)
	if err != nil {
		return nil, fmt.Errorf("read client hello: %w", err)
	}
	var hello waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &hello); err != nil {
		return nil, fmt.Errorf("unmarshal client hello: %w", err)
	}
	clientEphemeral, ok := key32(hello.GetClientHello().GetEphemeral())
	if !ok {
		return nil, errors.New("client hello without a 32-byte ephemeral key")
	}

	h, err := newHandshake(c.header)
	if err != nil {
		return nil, err
	}
	h.authenticate(clientEphemeral[:])
	ephemeral := keys.NewKeyPair()
	h.authenticate(ephemeral.Pub[:])
	if err := h.mix(ephemeral.Priv, clientEphemeral); err != nil {
		return nil, err
	}
	static := h.encrypt(c.srv.static.Pub[:])
	if err := h.mix(c.srv.static.Priv, clientEphemeral); err != nil {
		return nil, err
	}
	certificate := h.encrypt(c.srv.chain)
	serverHello, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: ephemeral.Pub[:],
		Static:    static,
		Payload:   certificate,
	}})
	if err != nil {
		return nil, fmt.Errorf("marshal server hello: %w", err)
	}
	if err := c.writeFrame(ctx, serverHello); err != nil {
		return nil, fmt.Errorf("send server hello: %w", err)
	}

	if frame, err = c.readFrame(ctx); err != nil {
		return nil, fmt.Errorf("read client finish: %w", err)
	}
	var finish waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &finish); err != nil {
		return nil, fmt.Errorf("unmarshal client finish: %w", err)
	}
	clientStaticRaw, err := h.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil {
		return nil, fmt.Errorf("decrypt client static key: %w", err)
	}
	clientStatic, ok := key32(clientStaticRaw)
	if !ok {
		return nil, errors.New("client static key is not 32 bytes")
	}
	if err := h.mix(ephemeral.Priv, clientStatic); err != nil {
		return nil, err
	}
	payloadRaw, err := h.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("decrypt client payload: %w", err)
	}
	var payload waWa6.ClientPayload
	if err := proto.Unmarshal(payloadRaw, &payload); err != nil {
		return nil, fmt.Errorf("unmarshal client payload: %w", err)
	}
	if c.noise, err = h.finish(); err != nil {
		return nil, err
	}
	return &payload, nil
}

// readFrame returns the next frame from the client: after the connection
// header on the first message, each frame is a 3-byte big-endian length and
// that many bytes, and a websocket message may hold any part of them.
func (c *conn) readFrame(ctx context.Context) ([]byte, error) {
	for {
		if c.header == nil && len(c.buf) >= len(socket.WAConnHeader) {
			c.header = bytes.Clone(c.buf[:len(socket.WAConnHeader)])
			c.buf = c.buf[len(socket.WAConnHeader):]
			if !bytes.HasPrefix(c.header, []byte("WA")) {
				return nil, fmt.Errorf("connection header %x does not start with WA", c.header)
			}
		}
		if c.header != nil && len(c.buf) >= socket.FrameLengthSize {
			n := int(c.buf[0])<<16 | int(c.buf[1])<<8 | int(c.buf[2])
			if len(c.buf) >= socket.FrameLengthSize+n {
				frame := bytes.Clone(c.buf[socket.FrameLengthSize : socket.FrameLengthSize+n])
				c.buf = c.buf[socket.FrameLengthSize+n:]
				return frame, nil
			}
		}
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		c.buf = append(c.buf, data...)
	}
}

// writeFrame sends one frame, length-prefixed, as one websocket message. The
// server sends no connection header.
func (c *conn) writeFrame(ctx context.Context, data []byte) error {
	if len(data) >= socket.FrameMaxSize {
		return socket.ErrFrameTooLarge
	}
	msg := make([]byte, socket.FrameLengthSize+len(data))
	msg[0], msg[1], msg[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(msg[socket.FrameLengthSize:], data)
	return c.ws.Write(ctx, websocket.MessageBinary, msg)
}

// decode decrypts a transport frame and parses the node in it.
func (c *conn) decode(frame []byte) (*waBinary.Node, error) {
	plaintext, err := c.noise.open(frame)
	if err != nil {
		return nil, fmt.Errorf("decrypt frame: %w", err)
	}
	if len(plaintext) == 0 {
		return nil, errors.New("empty frame")
	}
	data, err := waBinary.Unpack(plaintext)
	if err != nil {
		return nil, fmt.Errorf("unpack frame: %w", err)
	}
	node, err := waBinary.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("unmarshal node: %w", err)
	}
	return node, nil
}

// send encrypts and sends a node.
func (c *conn) send(ctx context.Context, n waBinary.Node) error {
	payload, err := waBinary.Marshal(n)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", n.Tag, err)
	}
	if !c.quiet {
		c.log.Debugf("send %s", n.String())
	}
	return c.noise.seal(payload, func(ciphertext []byte) error {
		return c.writeFrame(ctx, ciphertext)
	})
}

func key32(b []byte) (*[32]byte, bool) {
	if len(b) != 32 {
		return nil, false
	}
	return (*[32]byte)(bytes.Clone(b)), true
}
