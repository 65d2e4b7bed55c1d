package whatsmeow_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// cutter cuts a client's connection to the fake server at its next write,
// in one of two ways: cut (the server drops the connection and the client's
// socket closes under the write, as when WhatsApp goes away) or stall (the
// write blocks until the client closes its socket itself, as when the
// process fences itself with sends in flight).
type cutter struct {
	srv     *fakewa.Server
	mu      sync.Mutex
	armed   string        // "cut" or "stall" for the next write; "" none
	writing chan struct{} // closed when the armed write begins
	gone    chan struct{} // receives when the client reports it is disconnected
}

// waitGone waits until the client has noticed its connection is gone: a
// test that ends before races whatsmeow's own closing of its socket (its
// FrameSocket and NoiseSocket, unsynchronised, found by -race) with the
// cleanup's Disconnect.
func (c *cutter) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-c.gone:
	case <-time.After(wireWait):
		t.Fatal("the client did not notice that its connection is gone")
	}
}

// cutConn is a connection the cutter watches.
type cutConn struct {
	net.Conn
	c      *cutter
	once   sync.Once
	closed chan struct{}
}

// Write cuts or stalls when the cutter is armed, then writes.
func (cc *cutConn) Write(p []byte) (int, error) {
	cc.c.mu.Lock()
	mode, writing := cc.c.armed, cc.c.writing
	cc.c.armed = ""
	cc.c.mu.Unlock()
	switch mode {
	case "cut":
		cc.c.srv.DropConnections()
		cc.Close()
		close(writing)
	case "stall":
		close(writing)
		<-cc.closed
	}
	return cc.Conn.Write(p)
}

// Close closes the connection and ends a stalled write.
func (cc *cutConn) Close() error {
	cc.once.Do(func() { close(cc.closed) })
	return cc.Conn.Close()
}

// arm makes the next write cut or stall ("cut", "stall"); the channel is
// closed when that write begins.
func (c *cutter) arm(mode string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = mode
	c.writing = make(chan struct{})
	return c.writing
}

// client returns the HTTP client for whatsmeow to dial the fake server
// with, through connections the cutter watches.
func (c *cutter) client() *http.Client {
	transport := c.srv.HTTPClient().Transport.(*http.Transport).Clone()
	dial := transport.DialContext
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &cutConn{Conn: conn, c: c, closed: make(chan struct{})}, nil
	}
	return &http.Client{Transport: transport}
}

// newCutWire is newWire (presence off: nothing is sent in the background
// once connected) over a connection that c can cut, connected under ctx:
// the client's socket ends with it.
func newCutWire(t *testing.T, ctx context.Context) (*wire, *cutter) {
	t.Helper()
	srv := fakewa.Start(t)
	dev, _ := fakewa.NewDevice(t)
	cli := srv.NewClient(t, dev)
	c := &cutter{srv: srv}
	cli.SetWebsocketHTTPClient(c.client())
	c.gone = make(chan struct{}, 1)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		ch := connected
		switch evt.(type) {
		case *events.Connected:
		case *events.Disconnected:
			ch = c.gone
		default:
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	if err := cli.ConnectContext(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(wireWait):
		t.Fatal("not logged in")
	}
	s := mustNew(t, cli, dev, bwm.WithPresence(bwm.PresenceOff, 0))
	t.Cleanup(s.Close)
	return &wire{srv: srv, dev: dev, cli: cli, session: s}, c
}

// A receipt whose connection closes under its send — cut as its receipt is
// written (the server gone, the client's socket closed), or the
// connection's context ending while its write is stuck — is a session that
// is not connected: session.ErrNotConnected, 503 session_not_connected with
// Retry-After, never a 500 nor a 499 (and so a receipt the asynchronous
// worker retries, as it retries every ErrNotConnected).
//
// Before, the socket's errors went through unmapped: "failed to write msg:
// … use of closed network connection" was a 500 internal, and the socket
// context's "context canceled" a 499 client_closed_request.
//
// quietCut: each case first waits for the Session's own work after
// connecting (its privacy warm-up): a warm-up still writing when the
// socket is cut would be a data race inside whatsmeow (FrameSocket reads
// its connection unlocked), which -race reports.
//
// Not under -race: a socket closing under a client in use is a data race
// inside whatsmeow (FrameSocket reads its connection unlocked in SendFrame
// and IsConnected while Close clears it), which -race reports however the
// test waits. .ci/run runs this test again without -race.
func TestWireSendCutByTheConnection(t *testing.T) {
	if raceDetector {
		t.Skip("a socket cut under a client in use is a data race inside whatsmeow; .ci/run runs this test without -race")
	}
	post := func(t *testing.T, w *wire, id string) *httptest.ResponseRecorder {
		t.Helper()
		return postWAHA(wireHandler(t, w), `{"session":"wire","chatId":"15551234567","messageIds":["`+id+`"]}`)
	}
	want503 := func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"session_not_connected"`) || rec.Header().Get("Retry-After") == "" {
			t.Errorf("status %d, Retry-After %q, body %s; want 503 session_not_connected with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}

	t.Run("cut during the send", func(t *testing.T) {
		w, c := newCutWire(t, context.Background())
		// A first receipt: the privacy setting is known after it, so the
		// next one's first write is its <receipt>.
		if rec := post(t, w, "3EB0FIRST"); rec.Code != http.StatusCreated {
			t.Fatalf("first receipt: %d %s", rec.Code, rec.Body)
		}
		w.session.Quiesce() // see quietCut
		cut := c.arm("cut")
		want503(t, post(t, w, "3EB0CUT"))
		select {
		case <-cut:
		default:
			t.Error("the connection was not cut by a write")
		}
		c.waitGone(t)
	})
	t.Run("cut during the send, the Session's error", func(t *testing.T) {
		w, c := newCutWire(t, context.Background())
		if _, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0FIRST")); err != nil {
			t.Fatal(err)
		}
		w.session.Quiesce() // see quietCut
		c.arm("cut")
		_, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0CUT"))
		if !errors.Is(err, session.ErrNotConnected) {
			t.Errorf("SendReceipt = %v, want ErrNotConnected", err)
		}
		c.waitGone(t)
	})
	// The connection's context ends while a receipt's write is stuck, as
	// when a Manager fences itself (its release cancels that context when
	// the close handshake cannot get past the stuck write): whatsmeow's
	// socket context ends and the write fails with "context canceled"
	// although the request's context is fine — not a client that went away
	// (499), a session no longer connected.
	t.Run("the connection's context ends during the send", func(t *testing.T) {
		conn, cancel := context.WithCancel(context.Background())
		defer cancel()
		w, c := newCutWire(t, conn)
		if rec := post(t, w, "3EB0FIRST"); rec.Code != http.StatusCreated {
			t.Fatalf("first receipt: %d %s", rec.Code, rec.Body)
		}
		w.session.Quiesce() // see quietCut
		writing := c.arm("stall")
		answer := make(chan *httptest.ResponseRecorder, 1)
		go func() { answer <- post(t, w, "3EB0STUCK") }()
		<-writing
		cancel()
		want503(t, <-answer)
		c.waitGone(t)
	})
}
