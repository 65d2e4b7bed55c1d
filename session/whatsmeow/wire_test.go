package whatsmeow_test

// The wire test: a real, unmodified *whatsmeow.Client, logged in over the
// real Noise handshake to a fake WhatsApp server on 127.0.0.1
// (internal/fakewa), sends what bluetick asks of it; the assertions are on
// the exact <receipt> nodes the server receives. Nothing leaves loopback.
// The fake swaps whatsmeow's global root certificate key: these tests do not
// run in parallel.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

const wireWait = 5 * time.Second

// wire is a Session over a real client logged in to a fake server.
type wire struct {
	srv     *fakewa.Server
	dev     *store.Device
	cli     *whatsmeow.Client
	session *bwm.Session
}

func newWire(t *testing.T, opts ...fakewa.Option) *wire {
	t.Helper()
	return newWireWith(t, nil, opts...)
}

// newWireWith is newWire with options for the Session.
func newWireWith(t *testing.T, sessOpts []bwm.Option, opts ...fakewa.Option) *wire {
	t.Helper()
	srv := fakewa.Start(t, opts...)
	dev, _ := fakewa.NewDevice(t)
	cli := srv.Connect(t, dev)
	s := mustNew(t, cli, dev, sessOpts...)
	t.Cleanup(s.Close)
	return &wire{srv: srv, dev: dev, cli: cli, session: s}
}

// sent returns the <receipt> nodes the server has received. MarkRead is
// fire-and-forget, so it first makes a round trip on the same connection
// (a privacy query, answered in order): every receipt sent before is in.
func (w *wire) sent(t *testing.T) []waBinary.Node {
	t.Helper()
	if w.cli.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), wireWait)
		defer cancel()
		if _, err := w.cli.TryFetchPrivacySettings(ctx, true); err != nil {
			t.Logf("barrier round trip: %v", err)
		}
	}
	return w.srv.Receipts()
}

func TestWireReceipts(t *testing.T) {
	tests := []struct {
		name     string
		opts     []fakewa.Option
		receipt  session.Receipt
		wantType session.ReceiptType
		want     string // the receipt node, verbatim; {id} stands for a request id
	}{
		{"direct chat", nil, rcpt(dm, "", session.ReceiptRead, "3EB0C767D26A1D98A4"), session.ReceiptRead,
			`<receipt id="3EB0C767D26A1D98A4" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>`},
		{"group with participant", nil, rcpt(grp, member, session.ReceiptRead, "3EB0G1"), session.ReceiptRead,
			`<receipt id="3EB0G1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"/>`},
		{"several ids", nil, rcpt(grp, member, session.ReceiptRead, "3EB0G1", "3EB0G2", "3EB0G3"), session.ReceiptRead,
			`<receipt id="3EB0G1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"><list><item id="3EB0G2"/><item id="3EB0G3"/></list></receipt>`},
		{"played", nil, rcpt(dm, "", session.ReceiptPlayed, "3EB0VOICE"), session.ReceiptPlayed,
			`<receipt id="3EB0VOICE" t="1767225600" to="15551234567@s.whatsapp.net" type="played"/>`},
		{"read receipts off: read-self", []fakewa.Option{fakewa.WithReadReceipts("none")}, rcpt(dm, "", session.ReceiptRead, "3EB0SELF"), session.ReceiptReadSelf,
			`<receipt id="3EB0SELF" t="1767225600" to="15551234567@s.whatsapp.net" type="read-self"/>`},
		{"lid chat", nil, rcpt(dmLID, "", session.ReceiptRead, "3EB0LID"), session.ReceiptRead,
			`<receipt id="3EB0LID" t="1767225600" to="123456789012345@lid" type="read"/>`},
		{"channel view", nil, rcpt(channel, "", session.ReceiptRead, "101", "102"), session.ReceiptView,
			`<receipt id="{id}" to="120363123456789012@newsletter" type="view"><list><item server_id="101"/><item server_id="102"/></list></receipt>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t, tc.opts...)
			res, err := w.session.SendReceipt(context.Background(), tc.receipt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Type != tc.wantType {
				t.Errorf("reported type %q, want %q", res.Type, tc.wantType)
			}
			nodes := w.sent(t)
			if len(nodes) != 1 {
				t.Fatalf("server got %d receipts, want 1: %v", len(nodes), xmls(nodes))
			}
			want := strings.ReplaceAll(tc.want, "{id}", fmt.Sprint(nodes[0].Attrs["id"]))
			if got := fakewa.XML(nodes[0]); got != want {
				t.Errorf("receipt node\n got %s\nwant %s", got, want)
			}
			t.Logf("%s", fakewa.XML(nodes[0]))
		})
	}
}

func xmls(nodes []waBinary.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = fakewa.XML(n)
	}
	return out
}

// A channel view whose server never answers: the Session gives up at the
// request's deadline instead of hanging with whatsmeow.
func TestWireChannelViewWithoutAnswer(t *testing.T) {
	w := newWire(t, fakewa.WithoutNewsletterAck())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := w.session.SendReceipt(ctx, rcpt(channel, "", session.ReceiptRead, "7"))
	if err != context.DeadlineExceeded {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if n := len(w.sent(t)); n != 1 {
		t.Errorf("server got %d view receipts, want 1", n)
	}
	w.dropAndWait(t) // releases whatsmeow's wait
}

// The whole path: an HTTP request in WAHA's dialect through the handler to
// the wire. The chat is not marked unread: the receipts alone mark it read
// on the account's other devices, and the answer says nothing of it.
func TestWireThroughTheHandler(t *testing.T) {
	w := newWire(t)
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(
		`{"session":"wire","chatId":"120363012345678901@g.us","messageIds":["false_120363012345678901@g.us_3EB0AA_15557654321@c.us","false_120363012345678901@g.us_3EB0BB_15557654321@c.us","true_120363012345678901@g.us_3EB0CC"]}`))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	want := `{"success":true,"acknowledged":true,"session":"wire","chatId":"120363012345678901@g.us","receipts":[{"chatId":"120363012345678901@g.us","sender":"15557654321@s.whatsapp.net","messageIds":["3EB0AA","3EB0BB"],"type":"read"}],"skipped":[{"messageId":"true_120363012345678901@g.us_3EB0CC","reason":"from_me"}]}`
	if rec.Code != http.StatusCreated || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("status %d\n got %s\nwant %s", rec.Code, rec.Body, want)
	}
	nodes := w.sent(t)
	wantNode := `<receipt id="3EB0AA" participant="15557654321@s.whatsapp.net" t="` + fmt.Sprint(nodes[0].Attrs["t"]) +
		`" to="120363012345678901@g.us" type="read"><list><item id="3EB0BB"/></list></receipt>`
	if len(nodes) != 1 || fakewa.XML(nodes[0]) != wantNode {
		t.Errorf("receipts %v, want [%s]", xmls(nodes), wantNode)
	}

	// The connection drops: 503, and nothing more reaches the server.
	w.dropAndWait(t)
	rec = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(`{"session":"wire","chatId":"15551234567","messageIds":["3EB0DD"]}`))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "session_not_connected") {
		t.Errorf("after the drop: status %d, body %s", rec.Code, rec.Body)
	}
	if n := len(w.srv.Receipts()); n != 1 {
		t.Errorf("server got %d receipts, want still 1", n)
	}
}

// WAHA's SessionInfo says when the session last acted for the account:
// null until a receipt went out, then its time (Unix ms).
func TestWireStatusSaysWhenTheSessionLastActed(t *testing.T) {
	w := newWire(t)
	h := wireHandler(t, w)
	info := func() string {
		r := httptest.NewRequest(http.MethodGet, "/api/sessions/wire", nil)
		r.SetPathValue("session", "wire")
		rec := httptest.NewRecorder()
		serveStatus(h, rec, r)
		return rec.Body.String()
	}
	if got := info(); !strings.Contains(got, `"timestamps":{"activity":null}`) {
		t.Errorf("before any receipt: %s", got)
	}
	before := time.Now()
	if _, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0ACT")); err != nil {
		t.Fatal(err)
	}
	at := w.session.Status(context.Background()).Activity
	if at.Before(before.Truncate(time.Millisecond)) || at.After(time.Now()) {
		t.Errorf("Status().Activity = %v, want the receipt's time (after %v)", at, before)
	}
	if got, want := info(), fmt.Sprintf(`"timestamps":{"activity":%d}`, at.UnixMilli()); !strings.Contains(got, want) {
		t.Errorf("after a receipt: %s, want %s", got, want)
	}
}

// dropAndWait cuts the connection and waits until the client has noticed.
// (Polling IsConnected while the socket closes would race inside
// whatsmeow's FrameSocket, so it waits for the event.)
func (w *wire) dropAndWait(t *testing.T) {
	t.Helper()
	gone := make(chan struct{}, 1)
	id := w.cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Disconnected); ok {
			select {
			case gone <- struct{}{}:
			default:
			}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	// The Session's work after connecting (its privacy warm-up) ends
	// first: a write of it as the socket closes would be a data race
	// inside whatsmeow (FrameSocket reads its conn unlocked), which -race
	// reported in the conformance suite's NotConnected.
	if w.session != nil {
		w.session.Quiesce()
	}
	w.srv.DropConnections()
	select {
	case <-gone:
	case <-time.After(wireWait):
		t.Fatal("the client did not notice the dropped connection")
	}
}

// The conformance suite, with the fake server's receipts as what was sent.
func TestWireConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		// Presence off: the suite drops the connection right after it is
		// made, and the "available" sent in the background on connect then
		// races whatsmeow's own close of its frame socket (FrameSocket.Close
		// against SendFrame, a data race inside whatsmeow that -race reports
		// for any send cut off so; presence is tested in wire_presence_test).
		w := newWireWith(t, []bwm.Option{bwm.WithPresence(bwm.PresenceOff, 0)})
		return sessiontest.Harness{
			Session:    w.session,
			Sent:       func() []session.Receipt { return receiptsOf(t, w.sent(t)) },
			Disconnect: func() { w.dropAndWait(t) },
		}
	})
}

// receiptsOf reads receipt nodes back into session.Receipts.
func receiptsOf(t *testing.T, nodes []waBinary.Node) []session.Receipt {
	var out []session.Receipt
	for _, n := range nodes {
		attr := func(k string) string {
			if v, ok := n.Attrs[k]; ok {
				return fmt.Sprint(v)
			}
			return ""
		}
		sec, _ := strconv.ParseInt(attr("t"), 10, 64)
		r := session.Receipt{Chat: attr("to"), Sender: attr("participant"), Type: session.ReceiptType(attr("type")),
			MessageIDs: []string{attr("id")}, Timestamp: time.Unix(sec, 0)}
		for _, list := range n.GetChildrenByTag("list") {
			for _, item := range list.GetChildrenByTag("item") {
				r.MessageIDs = append(r.MessageIDs, fmt.Sprint(item.Attrs["id"]))
			}
		}
		out = append(out, r)
	}
	return out
}

// readReceipts keeps the receipts a client sends for messages it has
// seen (read, read-self, played, view), leaving out the delivery
// receipts and acknowledgements whatsmeow sends by itself.
func readReceipts(nodes []waBinary.Node) []waBinary.Node {
	var out []waBinary.Node
	for _, n := range nodes {
		switch n.Attrs["type"] {
		case "read", "read-self", "played", "played-self", "view":
			out = append(out, n)
		}
	}
	return out
}

// serveStatus serves r with h's status endpoint, the handler [seenhandler.Routes]
// lists at seenhandler.PathWawpStatus (the same serves WAHA's path).
func serveStatus(h *seenhandler.Handler, w http.ResponseWriter, r *http.Request) {
	for _, rt := range seenhandler.Routes(h) {
		if rt.Pattern == seenhandler.PathWawpStatus {
			rt.Handler.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "no status route", http.StatusInternalServerError)
}
