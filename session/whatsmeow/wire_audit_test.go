package whatsmeow_test

// Wire tests for the fixes of a protocol audit of this backend:
// a real client over the fake server, assertions on the exact nodes.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// assertReceipts checks the receipt nodes the server got, verbatim.
func assertReceipts(t *testing.T, w *wire, want ...string) {
	t.Helper()
	got := xmls(readReceipts(w.sent(t)))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("receipts\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	for _, n := range got {
		t.Logf("%s", n)
	}
}

// The privacy query fails: whatsmeow's MarkRead would send read (its
// GetPrivacySettings swallows the error), leaking blue ticks from an account
// that may have read receipts off. The Session refetches, and while the
// setting stays unknown it sends nothing and answers 503 with Retry-After.
//
// Before: <receipt id="3EB0PRIV1" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>
func TestWirePrivacyUnknownSendsNoRead(t *testing.T) {
	w := newWire(t, fakewa.WithPrivacyErrors())
	_, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0PRIV1"))
	if !errors.Is(err, session.ErrNotReady) || !errors.Is(err, session.ErrNotConnected) {
		t.Errorf("err = %v, want ErrNotReady (an ErrNotConnected): connected, waiting for WhatsApp", err)
	}
	assertReceipts(t, w)

	rec := postWAHA(wireHandler(t, w), `{"session":"wire","chatId":"15551234567","messageIds":["3EB0PRIV2"]}`)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), string(seenhandler.CodeSessionNotConnected)) {
		t.Errorf("status %d, Retry-After %q, body %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	assertReceipts(t, w)

	// Once WhatsApp answers, read goes out.
	w.srv.SetPrivacyErrors(false)
	if _, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0PRIV3")); err != nil {
		t.Fatal(err)
	}
	assertReceipts(t, w, `<receipt id="3EB0PRIV3" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>`)
}

// The account turns read receipts off while the client is
// disconnected: after the reconnection the Session refetches the settings
// (whatsmeow caches them for the client's lifetime) and sends read-self.
//
// Before: <receipt id="3EB0PRIV5" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>
func TestWirePrivacyRefreshedOnReconnect(t *testing.T) {
	w := newWire(t)
	if _, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0PRIV4")); err != nil {
		t.Fatal(err)
	}
	assertReceipts(t, w, `<receipt id="3EB0PRIV4" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>`)
	w.dropAndWait(t)
	w.srv.SetReadReceipts("none")
	w.reconnect(t)
	res, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0PRIV5"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != session.ReceiptReadSelf {
		t.Errorf("reported type %q, want read-self", res.Type)
	}
	assertReceipts(t, w,
		`<receipt id="3EB0PRIV4" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>`,
		`<receipt id="3EB0PRIV5" t="1767225600" to="15551234567@s.whatsapp.net" type="read-self"/>`)
}

// reconnect connects the client again and waits until it has logged in.
// The Session's handler, registered first, has seen events.Connected by
// then.
func (w *wire) reconnect(t *testing.T) {
	t.Helper()
	connected := make(chan struct{}, 1)
	id := w.cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	if err := w.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(wireWait):
		t.Fatal("the client did not log in again")
	}
}

// 600 ids of one sender go out as three <receipt> stanzas of at
// most 256 ids (WhatsApp Web's cap on an aggregate receipt), in order.
//
// Before: one <receipt id="ID000" …><list><item id="ID001"/>…<item id="ID599"/></list></receipt>
func TestWireReceiptStanzaCap(t *testing.T) {
	w := newWire(t)
	ids := make([]string, 600)
	for i := range ids {
		ids[i] = fmt.Sprintf("ID%03d", i)
	}
	if _, err := w.session.SendReceipt(context.Background(), rcpt(grp, member, session.ReceiptRead, ids...)); err != nil {
		t.Fatal(err)
	}
	stanza := func(from, to int) string {
		var b strings.Builder
		fmt.Fprintf(&b, `<receipt id="%s" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"><list>`, ids[from])
		for _, id := range ids[from+1 : to] {
			fmt.Fprintf(&b, `<item id="%s"/>`, id)
		}
		return b.String() + `</list></receipt>`
	}
	assertReceipts(t, w, stanza(0, 256), stanza(256, 512), stanza(512, 600))
}

const (
	memberLID = "222222222222222@lid" // member's LID
	msgTime   = "1767225500"          // when the test messages were sent
)

// deliver has the fake server deliver a message to the client, encrypted
// with Signal by the sender (attrs["participant"] in a group, attrs["from"]
// otherwise), and waits until the client has handled it: the Session's
// event handler has indexed it through whatsmeow's own dispatch.
func (w *wire) deliver(t *testing.T, msg *waE2E.Message, attrs ...string) {
	t.Helper()
	a := waBinary.Attrs{"t": msgTime}
	for i := 0; i+1 < len(attrs); i += 2 {
		if v := attrs[i+1]; strings.Contains(v, "@") {
			a[attrs[i]] = jid(v) // the wire encodes JIDs apart from strings
		} else {
			a[attrs[i]] = v
		}
	}
	from := fmt.Sprint(a["from"])
	if p, ok := a["participant"]; ok {
		from = fmt.Sprint(p)
	}
	w.srv.SendMessage(t, w.dev, jid(from), a, msg)
}

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// A direct message that arrived from the sender's LID, marked read
// with the phone-number chat: the receipt answers the LID it came from, as
// whatsmeow's own delivery receipt did, and the Result says so.
//
// Before: <receipt id="3EB0LIDDM" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>
func TestWireReceiptToTheFormTheMessageCameFrom(t *testing.T) {
	w := newWire(t)
	w.deliver(t, text("hi"), "from", dmLID, "sender_pn", dm, "id", "3EB0LIDDM")
	res, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "3EB0LIDDM", "3EB0UNSEEN"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Chat != dmLID {
		t.Errorf("Result.Chat = %q, want %q", res.Chat, dmLID)
	}
	// An id the session never saw goes to the chat as asked.
	assertReceipts(t, w,
		`<receipt id="3EB0LIDDM" t="1767225600" to="123456789012345@lid" type="read"/>`,
		`<receipt id="3EB0UNSEEN" t="1767225600" to="15551234567@s.whatsapp.net" type="read"/>`)
}

// Items 2 and 8, through the handler. In a group, a request naming the
// wrong participant: the sender the session saw the message from wins (a
// receipt naming anyone else reaches nobody). In a LID-addressed group, a
// request naming the member's phone number: the receipt names the LID the
// message came from. The answer reports the sender that went on the wire,
// and the requested one beside it.
//
// Before: <receipt id="3EB0WHO" participant="15550009999@s.whatsapp.net" t="…" to="120363012345678901@g.us" type="read"/>
// and the answer said "sender":"15557654321@s.whatsapp.net" for a receipt that named the LID.
func TestWireIndexedSenderWinsThroughTheHandler(t *testing.T) {
	w := newWire(t)
	w.deliver(t, text("hello"), "from", grp, "participant", member, "id", "3EB0WHO")
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) string {
		r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return strings.TrimSpace(rec.Body.String())
	}
	got := post(`{"session":"wire","chatId":"120363012345678901@g.us","messageIds":["3EB0WHO"],"participant":"15550009999"}`)
	want := `{"success":true,"acknowledged":true,"session":"wire","chatId":"120363012345678901@g.us","receipts":[{"chatId":"120363012345678901@g.us","sender":"15557654321@s.whatsapp.net","requestedSender":"15550009999@s.whatsapp.net","messageIds":["3EB0WHO"],"type":"read"}],"skipped":[]}`
	if got != want {
		t.Errorf("answer\n got %s\nwant %s", got, want)
	}
	nodes := readReceipts(w.sent(t))
	tAttr := fmt.Sprint(nodes[0].Attrs["t"])
	assertReceipts(t, w, `<receipt id="3EB0WHO" participant="15557654321@s.whatsapp.net" t="`+tAttr+`" to="120363012345678901@g.us" type="read"/>`)

	const lidGroup = "120363099999999999@g.us"
	w.deliver(t, text("hello"), "from", lidGroup, "participant", memberLID, "participant_pn", member, "addressing_mode", "lid", "id", "3EB0LIDG")
	got = post(`{"session":"wire","chatId":"120363099999999999@g.us","messageIds":["3EB0LIDG"],"participant":"15557654321"}`)
	want = `{"success":true,"acknowledged":true,"session":"wire","chatId":"120363099999999999@g.us","receipts":[{"chatId":"120363099999999999@g.us","sender":"222222222222222@lid","requestedSender":"15557654321@s.whatsapp.net","messageIds":["3EB0LIDG"],"type":"read"}],"skipped":[]}`
	if got != want {
		t.Errorf("answer\n got %s\nwant %s", got, want)
	}
	nodes = readReceipts(w.sent(t))
	tAttr2 := fmt.Sprint(nodes[1].Attrs["t"])
	assertReceipts(t, w,
		`<receipt id="3EB0WHO" participant="15557654321@s.whatsapp.net" t="`+tAttr+`" to="120363012345678901@g.us" type="read"/>`,
		`<receipt id="3EB0LIDG" participant="222222222222222@lid" t="`+tAttr2+`" to="120363099999999999@g.us" type="read"/>`)
}

// A text, then a reaction to it, a poll vote, an edit and a revoke
// (protocol messages): only the text is a message WhatsApp Web marks read.
// A chat-only request marks it, and nothing else.
//
// Before: <receipt id="3EB0TEXT" t="…" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0REACT"/><item id="3EB0VOTE"/><item id="3EB0EDIT"/><item id="3EB0REVOKE"/></list></receipt>
func TestWireOnlyReadableMessagesAreIndexed(t *testing.T) {
	w := newWire(t)
	key := &waCommon.MessageKey{RemoteJID: proto.String(dm), FromMe: proto.Bool(false), ID: proto.String("3EB0TEXT")}
	w.deliver(t, text("hi"), "from", dm, "id", "3EB0TEXT")
	w.deliver(t, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String("👍")}}, "from", dm, "id", "3EB0REACT", "type", "reaction")
	w.deliver(t, &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{PollCreationMessageKey: key}}, "from", dm, "id", "3EB0VOTE", "type", "poll")
	w.deliver(t, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: key,
		EditedMessage: text("hi!")}}, "from", dm, "id", "3EB0EDIT", "edit", "1")
	w.deliver(t, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key}}, "from", dm, "id", "3EB0REVOKE", "edit", "7")

	unread, err := w.session.UnreadMessages(context.Background(), dm, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(unread); strings.Join(got, ",") != "3EB0TEXT" {
		t.Errorf("unread = %v, want [3EB0TEXT]", got)
	}
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(`{"session":"wire","chatId":"15551234567"}`))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	nodes := readReceipts(w.sent(t))
	if len(nodes) != 1 {
		t.Fatalf("receipts %v", xmls(nodes))
	}
	assertReceipts(t, w, `<receipt id="3EB0TEXT" t="`+fmt.Sprint(nodes[0].Attrs["t"])+`" to="15551234567@s.whatsapp.net" type="read"/>`)
}

// wireHandler serves w's session as "wire", without authentication.
func wireHandler(t *testing.T, w *wire) *seenhandler.Handler {
	t.Helper()
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// postWAHA posts body, JSON, to h on WAHA's path and returns the answer.
func postWAHA(h http.Handler, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// postChatRead posts body and checks that the answer is 200 with chatRead
// as want, or none when want is "".
func postChatRead(t *testing.T, h http.Handler, body, want string) string {
	t.Helper()
	rec := postWAHA(h, body)
	got := rec.Body.String()
	ok := strings.Contains(got, `"chatRead":"`+want+`"`)
	if want == "" {
		ok = !strings.Contains(got, `"chatRead"`) && !strings.Contains(got, `"chatMarkedRead"`)
	}
	if rec.Code != http.StatusCreated || !ok {
		t.Fatalf("status %d: %s; want chatRead %q", rec.Code, got, want)
	}
	return got
}

// waitPatches waits until the server has received n app-state patches.
func waitPatches(t *testing.T, w *wire, n int) {
	t.Helper()
	w.srv.WaitAppStatePatches(t, wireWait, n)
}

// A status update (story) marked seen, as WhatsApp Web and WAHA
// do: a receipt to status@broadcast naming the author as participant — the
// one the session saw it from when the request does not name one.
//
// Before: 400 validation_failed, "status updates and broadcast lists (@broadcast) are not supported"; nothing sent.
func TestWireStatusSeen(t *testing.T) {
	w := newWire(t)
	w.deliver(t, text("my story"), "from", "status@broadcast", "participant", member, "id", "3EB0STORY")
	reg := session.NewMemoryRegistry()
	reg.Set("wire", w.session)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(`{"session":"wire","chatId":"status@broadcast","messageIds":["3EB0STORY"]}`))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	want := `{"success":true,"acknowledged":true,"session":"wire","chatId":"status@broadcast","receipts":[{"chatId":"status@broadcast","sender":"15557654321@s.whatsapp.net","messageIds":["3EB0STORY"],"type":"read"}],"skipped":[]}`
	if rec.Code != http.StatusCreated || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("status %d\n got %s\nwant %s", rec.Code, rec.Body, want)
	}
	nodes := readReceipts(w.sent(t))
	if len(nodes) != 1 {
		t.Fatalf("receipts %v", xmls(nodes))
	}
	assertReceipts(t, w, `<receipt id="3EB0STORY" participant="15557654321@s.whatsapp.net" t="`+fmt.Sprint(nodes[0].Attrs["t"])+`" to="status@broadcast" type="read"/>`)

	// A status the session never saw needs its author.
	r = httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(`{"session":"wire","chatId":"status@broadcast","messageIds":["3EB0OTHER"]}`))
	r.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"participant"`) {
		t.Errorf("unknown status without participant: %d %s", rec.Code, rec.Body)
	}
}

// groupInfoQueries returns the group-info queries (whatsmeow's GetGroupInfo)
// the server has received, verbatim.
func groupInfoQueries(w *wire) []string {
	var out []string
	for _, n := range w.srv.Nodes() {
		if n.Tag == "iq" && n.Attrs["xmlns"] == "w:g2" {
			out = append(out, fakewa.XML(n))
		}
	}
	return out
}

// A message of a LID-addressed group the session never saw (none of
// the group's messages is indexed), marked read with the sender's phone
// number: the Session asks WhatsApp how the group addresses its members
// (GetGroupInfo, which also tells the members' LIDs) and names the sender's
// LID. The answer is remembered: a second request asks nothing; a
// group-change notification (events.GroupInfo, through whatsmeow's own
// dispatch) makes the next request ask again.
//
// Before: <receipt id="3EB0GINFO1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363088888888888@g.us" type="read"/>
// (no group-info query; the phone number reaches no member of a LID group).
func TestWireUnindexedLIDGroupAsksGroupInfoOnce(t *testing.T) {
	const lidGroup = "120363088888888888@g.us"
	w := newWire(t)
	w.srv.SetGroup(fakewa.Group{JID: jid(lidGroup), AddressingMode: "lid", Participants: []fakewa.GroupParticipant{
		{JID: jid(memberLID), PhoneNumber: jid(member)},
		{JID: jid("100000000000001@lid"), PhoneNumber: jid("15550000001@s.whatsapp.net")},
	}})
	for _, id := range []string{"3EB0GINFO1", "3EB0GINFO2"} {
		res, err := w.session.SendReceipt(context.Background(), rcpt(lidGroup, member, session.ReceiptRead, id))
		if err != nil {
			t.Fatal(err)
		}
		if res.Sender != memberLID {
			t.Errorf("%s: Result.Sender = %q, want %q", id, res.Sender, memberLID)
		}
	}
	assertReceipts(t, w,
		`<receipt id="3EB0GINFO1" participant="222222222222222@lid" t="1767225600" to="120363088888888888@g.us" type="read"/>`,
		`<receipt id="3EB0GINFO2" participant="222222222222222@lid" t="1767225600" to="120363088888888888@g.us" type="read"/>`)
	queries := groupInfoQueries(w)
	if len(queries) != 1 {
		t.Fatalf("%d group-info queries for two requests, want 1:\n%s", len(queries), strings.Join(queries, "\n"))
	}
	t.Logf("%s", queries[0])
	if want := `to="120363088888888888@g.us" type="get" xmlns="w:g2"><query request="interactive"/></iq>`; !strings.HasSuffix(queries[0], want) {
		t.Errorf("query %s, want …%s", queries[0], want)
	}

	// The group changes (its subject here): the next request asks again.
	changeGroup(t, w, lidGroup)
	if _, err := w.session.SendReceipt(context.Background(), rcpt(lidGroup, member, session.ReceiptRead, "3EB0GINFO3")); err != nil {
		t.Fatal(err)
	}
	if n := len(groupInfoQueries(w)); n != 2 {
		t.Errorf("%d group-info queries after the group changed, want 2", n)
	}
}

// A group WhatsApp does not know (404) is addressed by phone
// number, as before, and the answer is remembered too.
func TestWireUnknownGroupAsksOnceAndUsesThePhoneNumber(t *testing.T) {
	w := newWire(t)
	for _, id := range []string{"3EB0NOGRP1", "3EB0NOGRP2"} {
		if _, err := w.session.SendReceipt(context.Background(), rcpt(grp, member, session.ReceiptRead, id)); err != nil {
			t.Fatal(err)
		}
	}
	assertReceipts(t, w,
		`<receipt id="3EB0NOGRP1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"/>`,
		`<receipt id="3EB0NOGRP2" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"/>`)
	if n := len(groupInfoQueries(w)); n != 1 {
		t.Errorf("%d group-info queries, want 1", n)
	}
}
