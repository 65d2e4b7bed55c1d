package whatsmeow_test

import (
	"context"
	"slices"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// wrappedWire runs the life of a client the program manages — connecting,
// a message arriving, a reconnection — over the wire, wrapped by New with
// the default options when wrap is set, and returns every node the server
// received, in order, ending with the test's own barrier query.
func wrappedWire(t *testing.T, wrap bool) (*wire, []string) {
	t.Helper()
	srv := fakewa.Start(t)
	dev, _ := fakewa.NewDevice(t)
	dev.PushName = "fakewa"
	cli := srv.NewClient(t, dev)
	w := &wire{srv: srv, dev: dev, cli: cli}
	if wrap {
		s, err := bwm.New(cli, dev)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		w.session = s
	}
	connected := make(chan struct{}, 4)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(wireWait):
		t.Fatal("not connected")
	}
	w.deliver(t, text("hello"), "from", dm, "id", "3EB0WRAP1")
	w.deliver(t, text("hi all"), "from", grp, "participant", member, "id", "3EB0WRAP2")
	w.dropAndWait(t)
	w.reconnect(t)
	w.sent(t) // the barrier: a privacy query of the test's own
	return w, shapes(srv.Nodes())
}

// shapes describes nodes by what the client decided: tag, type, xmlns and
// children's tags, without ids and times.
func shapes(nodes []waBinary.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		s := n.Tag
		for _, a := range []string{"type", "xmlns", "to"} {
			if v, ok := n.Attrs[a]; ok {
				s += " " + a + "=" + toString(v)
			}
		}
		for _, c := range n.GetChildren() {
			s += " <" + c.Tag + ">"
		}
		out[i] = s
	}
	return out
}

func toString(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "?"
}

// Wrapping a client the program runs sends nothing the program did not
// ask for: with New's default options, connecting, messages arriving
// (whatsmeow's own inactive delivery receipts) and reconnecting put exactly
// the nodes on the wire that the bare client puts there — no presence, no
// privacy warm-up, no delivery receipts, no app-state patch, no group
// query. One read request then sends exactly what the package
// documentation lists: the privacy-settings query (once per connection:
// the account's read-receipt setting decides the receipt's type) and the
// receipt; a second one the receipt alone.
//
// Before: the wrapped client announced presence "unavailable" at each
// connection, fetched the privacy settings after each, went "available"
// before the read receipt (then "unavailable" 30 s after) and sent plain
// delivery receipts for the messages whatsmeow had acknowledged inactive.
func TestWireWrappedSendsNothingOfItsOwn(t *testing.T) {
	_, bare := wrappedWire(t, false)
	w, wrapped := wrappedWire(t, true)
	if !slices.Equal(wrapped, bare) {
		t.Fatalf("the wrapped client's nodes differ from the bare client's\nwrapped %q\n   bare %q", wrapped, bare)
	}
	t.Logf("the bare client's own nodes: %q", bare)

	before := len(w.srv.Nodes())
	ctx := context.Background()
	if _, err := w.session.SendReceipt(ctx, rcpt(dm, "", session.ReceiptRead, "3EB0WRAP1")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.session.SendReceipt(ctx, rcpt(grp, member, session.ReceiptRead, "3EB0WRAP2")); err != nil {
		t.Fatal(err)
	}
	w.sent(t) // the barrier
	got := shapes(w.srv.Nodes()[before:])
	want := []string{
		"iq type=get xmlns=privacy to=s.whatsapp.net <privacy>",
		"receipt type=read to=" + dm,
		"receipt type=read to=" + grp,
		"iq type=get xmlns=privacy to=s.whatsapp.net <privacy>", // the barrier
	}
	if !slices.Equal(got, want) {
		t.Errorf("one read request each sent\n got %q\nwant %q", got, want)
	}
}
