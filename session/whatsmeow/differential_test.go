package whatsmeow_test

// The differential test: sessiontest.Fake answers like the real backend.
// Each scenario goes through the HTTP handler twice, once over the Fake and
// once over a Session on a real whatsmeow client logged in to the fake
// WhatsApp server, each set up the same way (the messages the session saw,
// chats marked unread, read receipts off, the connection down …), and the
// two answers are compared field by field. A difference is either removed
// from the Fake or written in sessiontest's package doc as deliberate, and
// listed in the scenario's differs (which the test checks still differ).

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
	"github.com/bluetick/bluetick/validate"
)

// seenBefore is a message the session saw arrive before the request.
type seenBefore struct {
	chat, id string
	sender   string // in groups and status updates; a direct chat's is the chat
	fromMe   bool   // sent by the account, from its phone (direct chats)
	read     bool   // read on another of the account's devices
}

// diffScenario is one request and the state of the session it finds.
type diffScenario struct {
	name        string
	path        string // default: WAHA's
	body        string
	seen        []seenBefore
	unread      []string // chats the account's owner marked unread on the phone
	receiptsOff bool     // the account's read receipts are off
	offline     bool     // the connection is down
	notLoggedIn bool     // the device is not paired
	async       bool     // the handler queues receipts (WithLater)
	// differs are the answer's fields that differ between the backends on
	// purpose, as sessiontest's package doc says.
	differs []string
}

// diffScenarios are the scenarios TestFakeAnswersLikeTheRealBackend runs.
func diffScenarios() []diffScenario {
	const (
		memberPhone = "15557654321"
		other       = "15550009999@s.whatsapp.net"
	)
	dmBody := func(ids string, extra string) string {
		return `{"session":"wire","chatId":"15551234567","messageIds":[` + ids + `]` + extra + `}`
	}
	return []diffScenario{
		{name: "direct chat", body: dmBody(`"3EB0D1","3EB0D2"`, "")},
		{name: "direct chat, played", body: dmBody(`"3EB0D3"`, `,"type":"played"`)},
		{name: "direct chat, an id the session never saw: sent, no 404", body: dmBody(`"3EB0NEVER"`, ""),
			seen: []seenBefore{{chat: dm, id: "3EB0OTHER"}}},
		{name: "group, sender given", body: `{"session":"wire","chatId":"` + grp + `","messageIds":["3EB0G1"],"participant":"` + memberPhone + `"}`},
		{name: "group, sender from the message seen", body: `{"session":"wire","chatId":"` + grp + `","messageIds":["3EB0G2"]}`,
			seen: []seenBefore{{chat: grp, id: "3EB0G2", sender: member}}},
		{name: "group, another sender given than the one seen", body: `{"session":"wire","chatId":"` + grp + `","messageIds":["3EB0G3"],"participant":"` + other + `"}`,
			seen: []seenBefore{{chat: grp, id: "3EB0G3", sender: member}}},
		{name: "group, no sender and never seen", body: `{"session":"wire","chatId":"` + grp + `","messageIds":["3EB0G4"]}`},
		{name: "LID chat", body: `{"session":"wire","chatId":"` + dmLID + `","messageIds":["3EB0L1"]}`},
		{name: "LID: a message that came from the LID, asked by phone number", body: dmBody(`"3EB0L2"`, ""),
			seen: []seenBefore{{chat: dmLID, id: "3EB0L2"}}, differs: []string{"receipts"}},
		{name: "channel, numeric ids", body: `{"session":"wire","chatId":"` + channel + `","messageIds":["101","102"]}`},
		{name: "channel, an id neither numeric nor seen", body: `{"session":"wire","chatId":"` + channel + `","messageIds":["3EB0C1"]}`},
		{name: "status, author given", body: `{"session":"wire","chatId":"status@broadcast","messageIds":["3EB0S1"],"participant":"` + memberPhone + `"}`},
		{name: "status, author from the update seen", body: `{"session":"wire","chatId":"status@broadcast","messageIds":["3EB0S2"]}`,
			seen: []seenBefore{{chat: "status@broadcast", id: "3EB0S2", sender: member}}},
		{name: "status, no author and never seen", body: `{"session":"wire","chatId":"status@broadcast","messageIds":["3EB0S3"]}`},
		{name: "own message, serialized id", body: dmBody(`"true_15551234567@c.us_3EB0O1","3EB0O2"`, "")},
		{name: "own message, seen sent from the phone", body: dmBody(`"3EB0O3"`, ""),
			seen: []seenBefore{{chat: dm, id: "3EB0O3", fromMe: true}}},
		{name: "read on another device", body: dmBody(`"3EB0R1","3EB0R2"`, ""),
			seen: []seenBefore{{chat: dm, id: "3EB0R1", read: true}, {chat: dm, id: "3EB0R2"}}},
		{name: "offline", body: dmBody(`"3EB0F1"`, ""), offline: true},
		{name: "offline, chat only, all read", body: `{"session":"wire","chatId":"15551234567"}`, offline: true,
			seen: []seenBefore{{chat: dm, id: "3EB0F2", read: true}}},
		{name: "offline, chat only, nothing seen", body: `{"session":"wire","chatId":"15551234567"}`, offline: true},
		{name: "not logged in", body: dmBody(`"3EB0N1"`, ""), notLoggedIn: true},
		{name: "not logged in, chat only", body: `{"session":"wire","chatId":"15551234567"}`, notLoggedIn: true},
		{name: "read receipts off, direct chat", body: dmBody(`"3EB0P1"`, ""), receiptsOff: true},
		{name: "read receipts off, direct chat, played", body: dmBody(`"3EB0P2"`, `,"type":"played"`), receiptsOff: true},
		{name: "group, played", body: `{"session":"wire","chatId":"` + grp + `","messageIds":["3EB0G5"],"participant":"` + memberPhone + `","type":"played"}`},
		{name: "Wasend's path", path: seenhandler.PathWasend, body: `{"session":"wire","to":"+1 (555) 123-4567","messageId":"3EB0W1"}`},
		{name: "read receipts off, group", body: `{"session":"wire","chatId":"` + grp + `","messageIds":["3EB0P3"],"participant":"` + memberPhone + `"}`, receiptsOff: true},
		{name: "typing", body: dmBody(`"3EB0T1"`, `,"typing":true`)},
		{name: "typing in a channel", body: `{"session":"wire","chatId":"` + channel + `","messageIds":["7"],"typing":true}`},
		{name: "chat only, messages seen", body: `{"session":"wire","chatId":"15551234567"}`,
			seen: []seenBefore{{chat: dm, id: "3EB0U1"}, {chat: dm, id: "3EB0U2"}, {chat: dm, id: "3EB0U3", read: true}}},
		{name: "chat only, all read", body: `{"session":"wire","chatId":"15551234567"}`,
			seen: []seenBefore{{chat: dm, id: "3EB0U4", read: true}}},
		{name: "chat only, nothing seen", body: `{"session":"wire","chatId":"15551234567"}`},
		{name: "chat marked unread", body: dmBody(`"3EB0M1"`, ""),
			seen: []seenBefore{{chat: dm, id: "3EB0M1"}}, unread: []string{dm}},
		{name: "chat marked unread, chat only", body: `{"session":"wire","chatId":"15551234567"}`,
			seen: []seenBefore{{chat: dm, id: "3EB0M2"}}, unread: []string{dm}},
		{name: "chat marked unread, played", body: dmBody(`"3EB0M3"`, `,"type":"played"`),
			seen: []seenBefore{{chat: dm, id: "3EB0M3"}}, unread: []string{dm}},
		{name: "async", body: dmBody(`"3EB0A1"`, `,"async":true`), async: true},
		{name: "async, Wawp's path", path: seenhandler.PathWawp, body: dmBody(`"3EB0A2"`, `,"async":true`), async: true},
		{name: "async, typing", body: dmBody(`"3EB0A3"`, `,"async":true,"typing":true`), async: true},
	}
}

// TestFakeAnswersLikeTheRealBackend runs each scenario over both backends
// and compares the answers field by field: status, error code and fields,
// acknowledged, accepted, receipts, skipped, chatRead, typing and reason.
func TestFakeAnswersLikeTheRealBackend(t *testing.T) {
	for _, sc := range diffScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			fake := sc.post(t, sc.overFake(t))
			real := sc.post(t, sc.overWire(t))
			t.Logf("fake %d %s", fake.status, fake.raw)
			t.Logf("real %d %s", real.status, real.raw)
			f, r := fake.fields(), real.fields()
			for _, k := range sc.differs {
				if _, ok := f[k]; !ok {
					t.Fatalf("differs names %q, not a compared field", k)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(f)) {
				deliberate := slices.Contains(sc.differs, k)
				switch {
				case f[k] != r[k] && !deliberate:
					t.Errorf("%s: fake %s, real %s", k, f[k], r[k])
				case f[k] == r[k] && deliberate:
					t.Errorf("%s no longer differs (%s): take it out of this scenario's differs and sessiontest's doc", k, f[k])
				}
			}
		})
	}
}

// diffAnswer is an answer as the comparison reads it.
type diffAnswer struct {
	status int
	raw    string
	body   struct {
		Acknowledged bool
		Accepted     bool
		Receipts     []struct {
			ChatID, Sender                   string
			RequestedChatID, RequestedSender string
			MessageIDs                       []string
			Type                             string
		}
		Skipped  []struct{ MessageID, Reason string }
		ChatRead string
		Typing   string
		Reason   string
		Error    struct {
			Code   string
			Fields []validate.FieldError
		}
	}
}

// fields are the compared members of a, each as a string.
func (a diffAnswer) fields() map[string]string {
	b := a.body
	var fields []string
	for _, f := range b.Error.Fields {
		fields = append(fields, f.Field+" "+f.Rule)
	}
	js := func(v any) string { out, _ := json.Marshal(v); return string(out) }
	return map[string]string{
		"status":       strconv.Itoa(a.status),
		"code":         b.Error.Code,
		"fields":       strings.Join(fields, ", "),
		"acknowledged": strconv.FormatBool(b.Acknowledged),
		"accepted":     strconv.FormatBool(b.Accepted),
		"receipts":     js(b.Receipts),
		"skipped":      js(b.Skipped),
		"chatRead":     b.ChatRead,
		"typing":       b.Typing,
		"reason":       b.Reason,
	}
}

// post sends sc's request to h.
func (sc diffScenario) post(t *testing.T, h http.Handler) diffAnswer {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, cmp.Or(sc.path, seenhandler.PathWAHA), strings.NewReader(sc.body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	a := diffAnswer{status: rec.Code, raw: strings.TrimSpace(rec.Body.String())}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("answer %d %s: %v", rec.Code, rec.Body, err)
	}
	return a
}

// handlerOver serves s as "wire", as sc's handler does.
func (sc diffScenario) handlerOver(t *testing.T, s session.Session) http.Handler {
	t.Helper()
	reg := session.NewMemoryRegistry()
	reg.Set("wire", s)
	opts := []seenhandler.Option{seenhandler.WithNoAuth()}
	var worker *queue.Worker
	if sc.async {
		var err error
		if worker, err = queue.New(queue.Options{}); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, seenhandler.WithLater(worker))
	}
	h, err := seenhandler.New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if worker != nil {
		worker.Start(h)
	}
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		if worker != nil {
			_ = worker.Shutdown(context.Background())
		}
	})
	return h
}

// overFake is sc's handler over a sessiontest.Fake set up as sc says.
func (sc diffScenario) overFake(t *testing.T) http.Handler {
	t.Helper()
	fake := sessiontest.New()
	fake.SetReadReceiptsOff(sc.receiptsOff)
	for _, m := range sc.seen {
		sender := m.sender
		if sender == "" {
			sender = m.chat
		}
		fake.AddMessage("wire", session.Message{Chat: m.chat, ID: m.id, Sender: sender, FromMe: m.fromMe, Read: m.read})
	}
	for _, chat := range sc.unread {
		fake.MarkUnread("wire", chat)
	}
	switch {
	case sc.offline:
		fake.Inject(sessiontest.Fault{Err: session.ErrNotConnected})
	case sc.notLoggedIn:
		fake.Inject(sessiontest.Fault{Err: session.ErrNotLoggedIn})
	}
	return sc.handlerOver(t, fake.Session("wire"))
}

// overWire is sc's handler over a Session on a real client logged in to
// the fake WhatsApp server, set up as sc says through whatsmeow's own
// dispatch: the messages delivered, the phone's reads and marks.
func (sc diffScenario) overWire(t *testing.T) http.Handler {
	t.Helper()
	if sc.notLoggedIn {
		_, container := fakewa.NewDevice(t)
		dev := container.NewDevice() // never paired
		s := mustNew(t, whatsmeow.NewClient(dev, nil), dev)
		t.Cleanup(s.Close)
		return sc.handlerOver(t, s)
	}
	var opts []fakewa.Option
	if sc.receiptsOff {
		opts = append(opts, fakewa.WithReadReceipts("none"))
	}
	w := newWire(t, opts...)
	for _, m := range sc.seen {
		switch {
		case m.fromMe:
			w.deliver(t, fromPhone(text("mine")), "from", ownPhone, "recipient", m.chat, "id", m.id)
		case m.sender != "":
			w.deliver(t, text("hello"), "from", m.chat, "participant", m.sender, "id", m.id)
		case m.chat == dmLID:
			w.deliver(t, text("hi"), "from", dmLID, "sender_pn", dm, "id", m.id)
		default:
			w.deliver(t, text("hi"), "from", m.chat, "id", m.id)
		}
		if m.read {
			w.ownReceipt(t, m.chat, "read", m.id)
		}
	}
	if len(sc.unread) > 0 {
		w.shareAppStateKey(t)
		w.phoneMarksUnread(t, sc.unread...)
	}
	w.quiet(t, sc)
	if sc.offline {
		w.dropAndWait(t)
	}
	return sc.handlerOver(t, w.session)
}

// quiet waits until the client has sent everything it sends by itself, in
// goroutines of its own, after the Session started and sc's setup: the
// presence the Session announces and its privacy query, the delivery
// receipts of the messages delivered, the acks of the phone's receipts and
// app-state notifications (whatsmeow's backgroundIfAsyncAck and
// maybeDeferredAck). A send still under way when the connection drops, or
// the test's Disconnect comes, races inside whatsmeow (FrameSocket.Close
// against SendFrame); a privacy query cut off makes whatsmeow wait 5 s for
// a reconnection, and Close for it. A round trip ends it: the privacy
// query is answered before the later one.
func (w *wire) quiet(t *testing.T, sc diffScenario) {
	t.Helper()
	wait := func(match func(n waBinary.Node) bool) { w.srv.WaitNode(t, wireWait, match) }
	wait(func(n waBinary.Node) bool { return n.Tag == "presence" })
	wait(func(n waBinary.Node) bool { return n.Tag == "iq" && n.Attrs["xmlns"] == "privacy" })
	for _, m := range sc.seen {
		wait(func(n waBinary.Node) bool { return n.Tag == "receipt" && n.Attrs["id"] == m.id })
		if m.read {
			wait(func(n waBinary.Node) bool {
				return n.Tag == "ack" && n.Attrs["class"] == "receipt" && n.Attrs["id"] == m.id
			})
		}
	}
	if len(sc.unread) > 0 {
		version, _, err := w.dev.AppState.GetAppStateVersion(context.Background(), string(appstate.WAPatchRegularLow))
		if err != nil {
			t.Fatal(err)
		}
		for v := uint64(1); v <= version; v++ {
			id := "SYNC" + strconv.FormatUint(v, 10) + string(appstate.WAPatchRegularLow)
			wait(func(n waBinary.Node) bool { return n.Tag == "ack" && n.Attrs["id"] == id })
		}
	}
	w.sent(t)
}
