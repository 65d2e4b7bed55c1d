package whatsmeow_test

// Wire tests of what the account has already read: a message read on
// another of the account's devices (or by bluetick itself) is never sent a
// read receipt again, as WhatsApp Web never sends one twice.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/seenhandler"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// ownReceipt has the fake server push a receipt the account sent from its
// phone (from the account's own JID, recipient the chat: whatsmeow then
// sets IsFromMe), for ids in chat, and waits until the client has
// dispatched it: every event handler registered before has run.
func (w *wire) ownReceipt(t *testing.T, chat, typ string, ids ...string) {
	t.Helper()
	w.ownReceiptAt(t, chat, typ, "1767225580", ids...)
}

// ownReceiptAt is ownReceipt with the receipt's time, ts (Unix seconds).
func (w *wire) ownReceiptAt(t *testing.T, chat, typ, ts string, ids ...string) {
	t.Helper()
	dispatched := make(chan struct{}, 1)
	id := w.cli.AddEventHandler(func(evt any) { // after the Session's handler
		if e, ok := evt.(*events.Receipt); ok && e.IsFromMe && e.MessageIDs[0] == ids[0] {
			select {
			case dispatched <- struct{}{}:
			default:
			}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	n := waBinary.Node{Tag: "receipt", Attrs: waBinary.Attrs{"id": ids[0], "from": jid(ownPhone), "recipient": jid(chat),
		"type": typ, "t": ts}}
	if len(ids) > 1 {
		items := make([]waBinary.Node, len(ids)-1)
		for i, id := range ids[1:] {
			items[i] = waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}}
		}
		n.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	w.srv.Send(t, n)
	select {
	case <-dispatched:
	case <-time.After(wireWait):
		t.Fatalf("no events.Receipt from the account's phone for %v", ids)
	}
}

// postSeen posts body to h and returns the answer, which must be a 200, up
// to its skipped list (what follows says what became of the chat's badge).
func postSeen(t *testing.T, h http.Handler, body string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body)
	}
	got := strings.TrimSpace(rec.Body.String())
	if i := strings.Index(got, `,"chatRead"`); i >= 0 {
		got = got[:i]
	}
	return strings.TrimSuffix(got, "}")
}

// The account reads two messages on its phone (a read receipt from its own
// JID, through whatsmeow's dispatch). An explicit request naming one of
// them answers it skipped, already_read, and sends nothing for it; a
// chat-only request sends nothing for the other. A message bluetick itself
// marked read is already_read the second time. A voice note read (not
// played) on the phone still gets the played receipt a request asks for;
// one played on the phone counts as read.
//
// Before: <receipt id="3EB0PHONE1" t="…" to="15551234567@s.whatsapp.net" type="read"/> for the explicit
// request, <receipt id="3EB0PHONE2" t="…" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0LATER"/></list></receipt>
// for the chat-only one, and a second <receipt id="3EB0NEW" …/>.
func TestWireAlreadyReadIsNotSent(t *testing.T) {
	w := newWire(t)
	h := wireHandler(t, w)
	w.deliver(t, text("one"), "from", dm, "id", "3EB0PHONE1")
	w.deliver(t, text("two"), "from", dm, "id", "3EB0PHONE2")
	w.deliver(t, text("three"), "from", dm, "id", "3EB0NEW")
	w.ownReceipt(t, dm, "read", "3EB0PHONE1", "3EB0PHONE2")

	got := postSeen(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0PHONE1","3EB0NEW"]}`)
	want := `{"success":true,"acknowledged":true,"session":"wire","chatId":"15551234567@s.whatsapp.net","receipts":[{"chatId":"15551234567@s.whatsapp.net","messageIds":["3EB0NEW"],"type":"read"}],"skipped":[{"messageId":"3EB0PHONE1","reason":"already_read"}]`
	if got != want {
		t.Errorf("answer\n got %s\nwant %s", got, want)
	}
	sameLines(t, "receipts", receiptsSince(t, w, 0),
		`<receipt id="3EB0NEW" t="…" to="15551234567@s.whatsapp.net" type="read"/>`)

	// The chat-only request: only the message that arrived since.
	w.deliver(t, text("four"), "from", dm, "id", "3EB0LATER")
	got = postSeen(t, h, `{"session":"wire","chatId":"15551234567"}`)
	want = `{"success":true,"acknowledged":true,"session":"wire","chatId":"15551234567@s.whatsapp.net","receipts":[{"chatId":"15551234567@s.whatsapp.net","messageIds":["3EB0LATER"],"type":"read"}],"skipped":[]`
	if got != want {
		t.Errorf("chat-only answer\n got %s\nwant %s", got, want)
	}
	sameLines(t, "receipts", receiptsSince(t, w, 1),
		`<receipt id="3EB0LATER" t="…" to="15551234567@s.whatsapp.net" type="read"/>`)

	// Read by bluetick already: not again.
	got = postSeen(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0NEW"]}`)
	want = `{"success":true,"acknowledged":false,"session":"wire","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[{"messageId":"3EB0NEW","reason":"already_read"}]`
	if got != want {
		t.Errorf("repeated answer\n got %s\nwant %s", got, want)
	}

	// Voice notes: read on the phone is not played; played is read.
	voice := &waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true)}}
	w.deliver(t, voice, "from", dm, "id", "3EB0VOICE1", "type", "media")
	w.deliver(t, voice, "from", dm, "id", "3EB0VOICE2", "type", "media")
	w.ownReceipt(t, dm, "read", "3EB0VOICE1")
	w.ownReceipt(t, dm, "played", "3EB0VOICE2")
	got = postSeen(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0VOICE1"],"type":"played"}`)
	want = `{"success":true,"acknowledged":true,"session":"wire","chatId":"15551234567@s.whatsapp.net","receipts":[{"chatId":"15551234567@s.whatsapp.net","messageIds":["3EB0VOICE1"],"type":"played"}],"skipped":[]`
	if got != want {
		t.Errorf("played answer\n got %s\nwant %s", got, want)
	}
	got = postSeen(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0VOICE2"]}`)
	want = `{"success":true,"acknowledged":false,"session":"wire","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[{"messageId":"3EB0VOICE2","reason":"already_read"}]`
	if got != want {
		t.Errorf("read after played answer\n got %s\nwant %s", got, want)
	}
	sameLines(t, "receipts", receiptsSince(t, w, 2),
		`<receipt id="3EB0VOICE1" t="…" to="15551234567@s.whatsapp.net" type="played"/>`)
}

// With a Manager the index is in the store: a message the account read on
// its phone is still known read after a restart, with nothing in memory.
// An explicit request answers it already_read and sends nothing; a
// chat-only request finds nothing unread.
//
// Before: <receipt id="3EB0STORED" t="…" to="15551234567@s.whatsapp.net" type="read"/> for the explicit request.
func TestWireAlreadyReadSurvivesARestart(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		srv := fakewa.Start(t)
		pairIn(t, st)
		w, m := startManager(t, srv, st.DSN)
		w.deliver(t, text("hi"), "from", dm, "id", "3EB0STORED")
		w.ownReceipt(t, dm, "read", "3EB0STORED")
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		srv.WaitConnections(t, wireWait, 0)

		w, m = startManager(t, srv, st.DSN)
		got := post(t, m, `{"session":"15550000001","chatId":"15551234567","messageIds":["3EB0STORED"]}`)
		want := `{"success":true,"acknowledged":false,"session":"15550000001","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[{"messageId":"3EB0STORED","reason":"already_read"}]}`
		if got != want {
			t.Errorf("answer\n got %s\nwant %s", got, want)
		}
		got = post(t, m, `{"session":"15550000001","chatId":"15551234567"}`)
		if !strings.Contains(got, `"receipts":[],"skipped":[]`) || !strings.HasSuffix(got, `"reason":"nothing_unread"}`) {
			t.Errorf("chat-only answer %s, want nothing unread", got)
		}
		sameLines(t, "receipts", receiptsSince(t, w, 0))
	})
}
