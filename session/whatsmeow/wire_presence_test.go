package whatsmeow_test

// Wire tests of reading like a person: presence, typing and
// auto-read, asserted on the exact nodes the fake server receives.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// presenceNodes returns, in order, the nodes the server got that tell how
// the account looks: <presence>, <chatstate>, and receipts — the read
// receipts a Session sends and the delivery receipts whatsmeow sends by
// itself — after a round trip that makes sure everything sent is in.
func presenceNodes(t *testing.T, w *wire) []string {
	t.Helper()
	var out []string
	w.sent(t) // the barrier
	for _, n := range w.srv.Nodes() {
		switch n.Tag {
		case "presence", "chatstate", "receipt":
			out = append(out, xmlNoT(n))
		}
	}
	return out
}

// xmlNoT is the node without its t attribute (the receipt's time).
func xmlNoT(n waBinary.Node) string {
	delete(n.Attrs, "t")
	return fakewa.XML(n)
}

func assertNodes(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("nodes\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	for _, n := range got {
		t.Logf("%s", n)
	}
}

// PresenceOnline: "available" with the push name right after connecting,
// so that the delivery receipt of a message that arrives then is a plain
// one (two grey ticks), not type="inactive"; again after a reconnection.
func TestWirePresenceOnline(t *testing.T) {
	w := newWireWith(t, []bwm.Option{bwm.WithPresence(bwm.PresenceOnline, 0)})
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" })
	w.deliver(t, text("hello"), "from", dm, "id", "3EB0DLV1")
	assertNodes(t, presenceNodes(t, w),
		`<presence name="fakewa" type="available"/>`,
		`<receipt id="3EB0DLV1" to="15551234567@s.whatsapp.net"/>`)

	w.dropAndWait(t)
	w.reconnect(t)
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" && countTag(w, "presence") == 2 })
}

func countTag(w *wire, tag string) int {
	n := 0
	for _, node := range w.srv.Nodes() {
		if node.Tag == tag {
			n++
		}
	}
	return n
}

// PresenceOff is whatsmeow's own behaviour: no presence, and delivery
// receipts go out as type="inactive", which the apps do not render.
func TestWirePresenceOff(t *testing.T) {
	w := newWireWith(t, []bwm.Option{bwm.WithPresence(bwm.PresenceOff, 0)})
	w.deliver(t, text("hello"), "from", dm, "id", "3EB0DLV2")
	assertNodes(t, presenceNodes(t, w),
		`<receipt id="3EB0DLV2" to="15551234567@s.whatsapp.net" type="inactive"/>`)
}

// PresenceReading, the default, as mautrix-whatsapp: "unavailable" with the
// push name at connection (contacts see the name; the account does not
// look online, the phone keeps notifying), so a message arriving then gets
// an inactive delivery receipt; "available" just before the first read
// receipt, none before the second (still online), "unavailable" once idle,
// and "available" again before the next receipt; "unavailable" again after
// a reconnection.
//
// Before (the default was online): <presence name="fakewa" type="available"/> at connection, for as long as connected.
func TestWirePresenceReading(t *testing.T) {
	// A short idle time, so that the wire sees it pass; its exact timing
	// is TestPresenceReadingIdle's, under synctest.
	w := newWireWith(t, []bwm.Option{bwm.WithPresence(bwm.PresenceReading, time.Second)})
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" })
	w.deliver(t, text("hello"), "from", dm, "id", "3EB0RD0")
	ctx := context.Background()
	for _, id := range []string{"3EB0RD1", "3EB0RD2"} {
		if _, err := w.session.SendReceipt(ctx, rcpt(dm, "", session.ReceiptRead, id)); err != nil {
			t.Fatal(err)
		}
	}
	// The idle time passes.
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" && countTag(w, "presence") == 3 })
	if _, err := w.session.SendReceipt(ctx, rcpt(dm, "", session.ReceiptRead, "3EB0RD3")); err != nil {
		t.Fatal(err)
	}
	assertNodes(t, presenceNodes(t, w),
		`<presence name="fakewa" type="unavailable"/>`,
		`<receipt id="3EB0RD0" to="15551234567@s.whatsapp.net" type="inactive"/>`,
		`<presence name="fakewa" type="available"/>`,
		`<receipt id="3EB0RD0" to="15551234567@s.whatsapp.net"/>`,
		`<receipt id="3EB0RD1" to="15551234567@s.whatsapp.net" type="read"/>`,
		`<receipt id="3EB0RD2" to="15551234567@s.whatsapp.net" type="read"/>`,
		`<presence name="fakewa" type="unavailable"/>`,
		`<presence name="fakewa" type="available"/>`,
		`<receipt id="3EB0RD3" to="15551234567@s.whatsapp.net" type="read"/>`)

	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" && countTag(w, "presence") == 5 })
	w.dropAndWait(t)
	w.reconnect(t)
	got := w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" && countTag(w, "presence") == 6 })
	if x := fakewa.XML(got); x != `<presence name="fakewa" type="unavailable"/>` {
		t.Errorf("after reconnecting: %s", x)
	}
}

// A receipt goes out only while the account is available, as WhatsApp
// Web's sendSeen waits for it: before the phone has shared the push name
// (right after pairing) whatsmeow cannot send presence, so the receipt is
// refused — 503 session_not_connected with Retry-After — and nothing goes
// out. When the push name arrives (events.PushNameSetting, dispatched by
// whatsmeow once it has stored the name), the Session announces itself with
// it, and the next receipt goes out after "available".
//
// (The name is stored by the test and the event dispatched through
// whatsmeow's DispatchEvent: when it comes with the phone's app state,
// whatsmeow writes Store.PushName in its sync goroutine while SendPresence
// reads it unsynchronized — a data race inside whatsmeow that -race reports.)
//
// Before: <receipt id="3EB0NONAME" to="15551234567@s.whatsapp.net" type="read"/> with no presence
// (the sender sees blue ticks from an account that never looked online).
func TestWireReceiptWaitsForPresence(t *testing.T) {
	srv := fakewa.Start(t)
	dev, _ := fakewa.NewDevice(t)
	dev.PushName = ""
	cli := srv.Connect(t, dev)
	noName := make(chan struct{}, 1)
	s := mustNew(t, cli, dev, bwm.WithLogger(slog.New(&signalOn{msg: "no push name", ch: noName})))
	t.Cleanup(s.Close)
	w := &wire{srv: srv, dev: dev, cli: cli, session: s}
	select { // the announcement at connection has tried and failed
	case <-noName:
	case <-time.After(wireWait):
		t.Fatal("the Session did not try to announce itself")
	}
	_, err := s.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0NONAME"))
	if !errors.Is(err, session.ErrNotReady) {
		t.Errorf("err = %v, want ErrNotReady", err)
	}
	assertNodes(t, presenceNodes(t, w))

	dev.PushName = "Alice"
	//lint:ignore SA1019 whatsmeow's own dispatch, from the test's goroutine (see above)
	cli.DangerousInternals().DispatchEvent(&events.PushNameSetting{Timestamp: time.Now(),
		Action: &waSyncAction.PushNameSetting{Name: proto.String("Alice")}})
	srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" })
	if _, err := s.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0NAMED")); err != nil {
		t.Fatal(err)
	}
	assertNodes(t, presenceNodes(t, w),
		`<presence name="Alice" type="unavailable"/>`,
		`<presence name="Alice" type="available"/>`,
		`<receipt id="3EB0NAMED" to="15551234567@s.whatsapp.net" type="read"/>`)
}

// signalOn is a slog handler that signals ch, without blocking, for each
// record whose message contains msg, and drops every record.
type signalOn struct {
	msg string
	ch  chan struct{}
}

func (h *signalOn) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalOn) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *signalOn) WithGroup(string) slog.Handler            { return h }
func (h *signalOn) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// Typing after reading, through the handler: with PresenceReading the
// account goes available, sends the read receipt, then <composing/> to the
// chat; the typing timeout ends with <paused/>, the idle time with
// unavailable. The message arrived while the account was not online: its
// delivery receipt was inactive. (The typing timeout is short here: the
// composing WhatsApp Web sends again every 10 s of a longer typing is
// timed in TestTypingResendsComposingEvery10s, under synctest.) The
// chatstate names only its recipient, as whatsapp-rust's
// (src/features/chatstate.rs) and whatsmeow's since 2026 do; Baileys
// still adds from.
func TestWireTypingAfterReading(t *testing.T) {
	w := newWireWith(t, []bwm.Option{bwm.WithPresence(bwm.PresenceReading, time.Second)})
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" }) // unavailable, at connection
	w.deliver(t, text("are you there?"), "from", dm, "id", "3EB0TY1")
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth(), seenhandler.WithTypingTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(
		`{"session":"wire","chatId":"15551234567","messageIds":["3EB0TY1"],"typing_indicator":{"type":"text"}}`))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"typing":"started"`) {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	t.Logf("answer: %s", strings.TrimSpace(rec.Body.String()))
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "chatstate" && len(n.GetChildrenByTag("paused")) == 1 })
	// The idle time passes.
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" && countTag(w, "presence") == 3 })
	assertNodes(t, presenceNodes(t, w),
		`<presence name="fakewa" type="unavailable"/>`,
		`<receipt id="3EB0TY1" to="15551234567@s.whatsapp.net" type="inactive"/>`,
		`<presence name="fakewa" type="available"/>`,
		`<receipt id="3EB0TY1" to="15551234567@s.whatsapp.net"/>`,
		`<receipt id="3EB0TY1" to="15551234567@s.whatsapp.net" type="read"/>`,
		`<chatstate to="15551234567@s.whatsapp.net"><composing/></chatstate>`,
		`<chatstate to="15551234567@s.whatsapp.net"><paused/></chatstate>`,
		`<presence name="fakewa" type="unavailable"/>`)
}

// Typing in a channel: nobody sees it; the answer says unavailable and
// nothing goes out.
func TestWireTypingInChannel(t *testing.T) {
	w := newWire(t)
	err := w.session.Typing(context.Background(), channel, time.Second)
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("err = %v, want unsupported", err)
	}
	if n := countTag(w, "chatstate"); n != 0 {
		t.Errorf("%d chatstate nodes", n)
	}
}

// autoReadHandler serves w's session as "wire" with the asynchronous queue
// and auto-read of its arrivals; t's cleanup shuts it down.
func autoReadHandler(t *testing.T, w *wire) *seenhandler.Handler {
	t.Helper()
	src := arrivalSourceFunc(func(f func(string, session.Arrival)) func() {
		return w.session.OnArrival(func(a session.Arrival) { f("wire", a) })
	})
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	worker, err := queue.New(queue.Options{Arrivals: src})
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth(), seenhandler.WithLater(worker))
	if err != nil {
		t.Fatal(err)
	}
	worker.Start(h)
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = worker.Shutdown(context.Background())
	})
	return h
}

// Auto-read on the wire: a message arrives, whatsmeow acknowledges it at
// once (its delivery receipt) and the Session offers it; the handler
// queues it, and the read receipt goes out at the arrival's Due — 200 ms,
// plus 60 ms for each of its 2 characters — not before, timestamped then.
// A group message is not offered (groups off), and neither is anything
// while the account is active on another device.
func TestWireAutoRead(t *testing.T) {
	const delay = 200*time.Millisecond + 2*60*time.Millisecond
	w := newWireWith(t, []bwm.Option{bwm.WithAutoReadRand(bwm.AutoRead{MinDelay: 200 * time.Millisecond, MaxDelay: 2 * time.Second},
		func() float64 { return 0 })})
	autoReadHandler(t, w)

	w.deliver(t, text("hi"), "from", grp, "participant", member, "id", "3EB0AUTOG")
	start := time.Now()
	w.deliver(t, text("hi"), "from", dm, "id", "3EB0AUTO1")
	if got := readReceipts(w.sent(t)); len(got) != 0 {
		t.Fatalf("read receipts at arrival: %v", xmls(got))
	}
	got := w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "receipt" && n.Attrs["type"] == "read" })
	took := time.Since(start)
	if took < delay {
		t.Errorf("read receipt %v after the arrival, before the delay %v", took, delay)
	}
	want := `<receipt id="3EB0AUTO1" t="` + fmt.Sprint(got.Attrs["t"]) + `" to="15551234567@s.whatsapp.net" type="read"/>`
	if fakewa.XML(got) != want {
		t.Errorf("receipt %s, want %s", fakewa.XML(got), want)
	}
	t.Logf("%s after %v (delay %v)", fakewa.XML(got), took.Round(time.Millisecond), delay)

	// The phone reads a chat, now: the account is active there; the next
	// message is left to the person.
	w.srv.Send(t, waBinary.Node{Tag: "receipt", Attrs: waBinary.Attrs{"id": "3EB0OTHER", "from": jid("15550000001@s.whatsapp.net"),
		"recipient": jid(dm), "type": "read", "t": fmt.Sprint(time.Now().Unix())}})
	w.deliver(t, text("still there?"), "from", dm, "id", "3EB0AUTO2")
	time.Sleep(2 * time.Second) // MaxDelay: nothing may come
	if got := readReceipts(w.sent(t)); len(got) != 1 {
		t.Errorf("read receipts %v, want only the first", xmls(got))
	}
}

// Messages that arrived while the account was not available were
// acknowledged with inactive delivery receipts, which the apps do not
// render: once the account goes available (just before a read receipt),
// each gets its plain delivery receipt — its sender sees two grey ticks —
// as WhatsApp Web's sendDeliveryReceiptsAfterPresence does, before the read
// receipt, in a direct chat and in a group (naming the participant).
//
// Before: no plain delivery receipt ever; the sender of 3EB0DR2 saw no grey ticks at all, and blue ones only
// if the account read it.
func TestWireDeliveryReceiptsAfterPresence(t *testing.T) {
	w := newWire(t)
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" })
	w.deliver(t, text("one"), "from", dm, "id", "3EB0DR1")
	w.deliver(t, text("two"), "from", grp, "participant", member, "id", "3EB0DR2")
	if _, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0DR1")); err != nil {
		t.Fatal(err)
	}
	// Available now: a message arriving gets its plain receipt at once,
	// and none later.
	w.deliver(t, text("three"), "from", dm, "id", "3EB0DR3")
	assertNodes(t, presenceNodes(t, w),
		`<presence name="fakewa" type="unavailable"/>`,
		`<receipt id="3EB0DR1" to="15551234567@s.whatsapp.net" type="inactive"/>`,
		`<receipt id="3EB0DR2" participant="15557654321@s.whatsapp.net" to="120363012345678901@g.us" type="inactive"/>`,
		`<presence name="fakewa" type="available"/>`,
		`<receipt id="3EB0DR1" to="15551234567@s.whatsapp.net"/>`,
		`<receipt id="3EB0DR2" participant="15557654321@s.whatsapp.net" to="120363012345678901@g.us"/>`,
		`<receipt id="3EB0DR1" to="15551234567@s.whatsapp.net" type="read"/>`,
		`<receipt id="3EB0DR3" to="15551234567@s.whatsapp.net"/>`)
}

// Auto-read reads a chat, not a message, as WhatsApp Web's markChatRead: a
// burst of three messages in one chat is read at the first one's due time,
// in one receipt (ids in arrival order, one t: the send time), after one
// "available".
//
// Before: three receipts, the later messages first, each with its own t
// and its own available/unavailable:
// <receipt id="3EB0B2" …/>, <receipt id="3EB0B3" …/>, <receipt id="3EB0B1" …/>
func TestWireAutoReadReadsTheChat(t *testing.T) {
	const delay = 3 * time.Second // every message: the three arrive well within it
	w := newWireWith(t, []bwm.Option{bwm.WithAutoRead(bwm.AutoRead{MinDelay: delay, MaxDelay: delay})})
	autoReadHandler(t, w)
	w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "presence" })
	for _, id := range []string{"3EB0B1", "3EB0B2", "3EB0B3"} {
		w.deliver(t, text("b"), "from", dm, "id", id)
	}
	got := w.srv.WaitNode(t, 5*delay, func(n waBinary.Node) bool { return n.Tag == "receipt" && n.Attrs["type"] == "read" })
	nodes := presenceNodes(t, w)
	tAttr := fmt.Sprint(got.Attrs["t"])
	if fakewa.XML(got) != `<receipt id="3EB0B1" t="`+tAttr+`" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0B2"/><item id="3EB0B3"/></list></receipt>` {
		t.Errorf("receipt %s", fakewa.XML(got))
	}
	assertNodes(t, nodes,
		`<presence name="fakewa" type="unavailable"/>`,
		`<receipt id="3EB0B1" to="15551234567@s.whatsapp.net" type="inactive"/>`,
		`<receipt id="3EB0B2" to="15551234567@s.whatsapp.net" type="inactive"/>`,
		`<receipt id="3EB0B3" to="15551234567@s.whatsapp.net" type="inactive"/>`,
		`<presence name="fakewa" type="available"/>`,
		`<receipt id="3EB0B1" to="15551234567@s.whatsapp.net"/>`,
		`<receipt id="3EB0B2" to="15551234567@s.whatsapp.net"/>`,
		`<receipt id="3EB0B3" to="15551234567@s.whatsapp.net"/>`,
		`<receipt id="3EB0B1" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0B2"/><item id="3EB0B3"/></list></receipt>`)
}

// arrivalSourceFunc adapts a function to session.ArrivalSource.
type arrivalSourceFunc func(f func(session string, a session.Arrival)) (stop func())

// SubscribeArrivals calls s(f).
func (s arrivalSourceFunc) SubscribeArrivals(f func(session string, a session.Arrival)) (stop func()) {
	return s(f)
}
