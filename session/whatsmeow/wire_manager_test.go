package whatsmeow_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// managedWire is a Manager whose one stored device logs in to a fake
// server: the real clients the Manager makes, over the wire.
type managedWire struct {
	srv       *fakewa.Server
	m         *bwm.Manager
	cli       *whatsmeow.Client
	connected chan struct{} // one value per events.Connected
}

// newManagedWire stores a paired device in a SQLite file, opens a Manager
// on it whose clients dial srv, and starts it. The session is called
// "15550000001".
func newManagedWire(t testing.TB, srv *fakewa.Server, opts ...bwm.Option) *managedWire {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bluetick.db")
	c, err := sqlstore.New(ctx, "sqlite", "file:"+path+"?_pragma=foreign_keys(1)", nil)
	if err != nil {
		t.Fatal(err)
	}
	fakewa.PairDevice(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	w := &managedWire{srv: srv, connected: make(chan struct{}, 16)}
	hook := bwm.WithClientHook(func(_ string, cli *whatsmeow.Client) {
		cli.SetWebsocketHTTPClient(srv.HTTPClient())
		cli.EnableAutoReconnect = false
		w.cli = cli
		cli.AddEventHandler(func(evt any) {
			if _, ok := evt.(*events.Connected); ok {
				w.connected <- struct{}{}
			}
		})
	})
	w.m, err = bwm.Open(ctx, path, append([]bwm.Option{hook}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.m.Close() })
	if err := w.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.waitConnected(t)
	return w
}

func (w *managedWire) waitConnected(t testing.TB) {
	t.Helper()
	select {
	case <-w.connected:
	case <-time.After(wireWait):
		t.Fatal("the Manager's client did not log in")
	}
}

// WhatsApp logs the device out with a device_removed
// stream error, delivered through whatsmeow's own event dispatch: the
// session leaves the registry, the client is disconnected, and the
// client's event dispatch still works. (Before the fix the Manager's
// handler called RemoveEventHandler inside the dispatch, which deadlocked:
// the connection stayed open and AddEventHandler never returned.)
func TestWireLogoutThroughTheDispatch(t *testing.T) {
	srv := fakewa.Start(t)
	w := newManagedWire(t, srv)
	const name = "15550000001"
	if _, err := w.m.Lookup(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	srv.Send(t, waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "401"},
		Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}}})

	// The fake leaves the connection open, as a slow server might: only
	// the Manager's Disconnect closes it.
	srv.WaitConnections(t, wireWait, 0)
	if _, err := w.m.Lookup(context.Background(), name); !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("Lookup after logout = %v, want ErrSessionNotFound", err)
	}
	added := make(chan struct{})
	go func() {
		id := w.cli.AddEventHandler(func(any) {})
		w.cli.RemoveEventHandler(id)
		close(added)
	}()
	select {
	case <-added:
	case <-time.After(wireWait):
		t.Fatal("the client's event handler lock is still held: its dispatch is deadlocked")
	}
}

// Whatsmeow waits 2 s × failed attempts before
// reconnecting, without bound; the Manager's clients stop growing the wait
// at MaxReconnectWait. The test calls the hook of a Manager's real client
// as whatsmeow's autoReconnect does after a failed attempt; it does not
// wait through real backoff.
func TestManagerReconnectWaitIsCapped(t *testing.T) {
	srv := fakewa.Start(t)
	w := newManagedWire(t, srv)
	steps := int(bwm.MaxReconnectWait / (2 * time.Second))
	w.cli.AutoReconnectErrors = 100 // as after a long time offline
	if !w.cli.AutoReconnectHook(errors.New("dial tcp: connection refused")) {
		t.Error("the hook stopped the reconnection")
	}
	if got := time.Duration(w.cli.AutoReconnectErrors) * 2 * time.Second; got != bwm.MaxReconnectWait {
		t.Errorf("next wait %v (AutoReconnectErrors %d, cap %d), want %v", got, w.cli.AutoReconnectErrors, steps, bwm.MaxReconnectWait)
	}
}
