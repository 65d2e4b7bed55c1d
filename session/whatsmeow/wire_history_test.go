package whatsmeow_test

// Wire tests of what a history sync tells the message index: the syncs come
// through whatsmeow's own handling (an inline history sync notification from
// the account's phone), the requests through the handler, and the
// assertions are on the receipts the fake server gets.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// chatOnlyFunc sends a chat-only request (a chat, no message ids) through
// the handler and returns the read receipts it made the client send, their
// t attribute elided.
type chatOnlyFunc func(t *testing.T, chat string) []string

// forEachIndex runs f on a session over the fake server with each kind of
// message index: a Session made by New (its own index in memory) and a
// Manager's session (its index in the store, on each test store).
func forEachIndex(t *testing.T, f func(t *testing.T, w *wire, chatOnly chatOnlyFunc)) {
	t.Run("memory", func(t *testing.T) {
		w := newWire(t)
		reg := session.NewMemoryRegistry()
		reg.Set("wire", w.session)
		f(t, w, chatOnlyVia(w, reg, "wire"))
	})
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		srv := fakewa.Start(t)
		pairIn(t, st)
		w, m := startManager(t, srv, st.DSN)
		f(t, w, chatOnlyVia(w, m, "15550000001"))
	})
}

// chatOnlyVia returns the chatOnlyFunc of w's session, name in reg.
func chatOnlyVia(w *wire, reg session.Registry, name string) chatOnlyFunc {
	return func(t *testing.T, chat string) []string {
		t.Helper()
		h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
		if err != nil {
			t.Fatal(err)
		}
		before := len(readReceipts(w.sent(t)))
		r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(`{"session":"`+name+`","chatId":"`+chat+`"}`))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			t.Fatalf("chat-only request for %s: status %d: %s", chat, rec.Code, rec.Body)
		}
		return receiptsSince(t, w, before)
	}
}

// Older history (a FULL chunk, as the phone sends after the initial
// bootstrap) carries each conversation's unread count too, but not its
// newest messages: it tells nothing of what is unread. A chat-only request
// reads the bootstrap's unread message, not a year-old one of the older
// chunk; a message both chunks hold stays unread.
//
// Before (the FULL chunk's unread count taken for its newest message):
// <receipt id="3EB0OLD2" t="…" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0NEW"/></list></receipt>
func TestWireOlderHistoryTellsNothingUnread(t *testing.T) {
	forEachIndex(t, func(t *testing.T, w *wire, chatOnly chatOnlyFunc) {
		historySync(t, w, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(dm), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
					webMsg(dm, "3EB0NEW", "", false, 1767225540),
					webMsg(dm, "3EB0SEEN", "", false, 1767225530),
				}},
				{ID: proto.String(grp), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
					webMsg(grp, "3EB0G2", member, false, 1767225550),
					webMsg(grp, "3EB0G1", member, false, 1767225500),
				}},
			},
		})
		historySync(t, w, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_FULL.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(dm), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
					webMsg(dm, "3EB0OLD2", "", false, 1735689700), // 2025-01-01
					webMsg(dm, "3EB0OLD1", "", false, 1735689600),
				}},
				{ID: proto.String(grp), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
					webMsg(grp, "3EB0G2", member, false, 1767225550),
					webMsg(grp, "3EB0G1", member, false, 1767225500),
				}},
			},
		})
		sameLines(t, "direct chat", chatOnly(t, dm),
			`<receipt id="3EB0NEW" t="…" to="15551234567@s.whatsapp.net" type="read"/>`)
		sameLines(t, "group", chatOnly(t, grp),
			`<receipt id="3EB0G2" participant="15557654321@s.whatsapp.net" t="…" to="120363012345678901@g.us" type="read"/>`)
	})
}

// historyMsg is a message of a history sync with content m.
func historyMsg(chat, id, participant string, fromMe bool, ts uint64, m *waE2E.Message) *waHistorySync.HistorySyncMsg {
	hm := webMsg(chat, id, participant, fromMe, ts)
	hm.Message.Message = m
	return hm
}

// A conversation of the bootstrap has two unread messages, the newer since
// edited: the sync holds the edit too, a MESSAGE_EDIT protocol message
// that whatsmeow's ParseWebMessage turns into the edited message under the
// original's id. The edit is not a message: it takes no unread place, and
// a chat-only request reads both messages.
//
// Before (the edit counted as 3EB0EDITED, newer, and 3EB0FIRST indexed
// read): <receipt id="3EB0EDITED" t="…" to="15551234567@s.whatsapp.net" type="read"/>
func TestWireHistoryEditIsNotAMessage(t *testing.T) {
	forEachIndex(t, func(t *testing.T, w *wire, chatOnly chatOnlyFunc) {
		edited := &waCommon.MessageKey{RemoteJID: proto.String(dm), FromMe: proto.Bool(false), ID: proto.String("3EB0EDITED")}
		historySync(t, w, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(dm), UnreadCount: proto.Uint32(2), Messages: []*waHistorySync.HistorySyncMsg{
					historyMsg(dm, "3EB0EDIT", "", false, 1767225540, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
						Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: edited, EditedMessage: text("fixed"),
					}}),
					webMsg(dm, "3EB0EDITED", "", false, 1767225530),
					webMsg(dm, "3EB0FIRST", "", false, 1767225520),
					webMsg(dm, "3EB0READ", "", false, 1767225510),
				}},
			},
		})
		sameLines(t, "direct chat", chatOnly(t, dm),
			`<receipt id="3EB0FIRST" t="…" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0EDITED"/></list></receipt>`)
	})
}

// In a LID-addressed group, the newest message of a history sync is the
// account's own, which whatsmeow's ParseWebMessage gives the phone-number
// sender whatever the group's addressing: only others' messages tell it.
// A request about a message the index does not know, naming its sender by
// phone number, names the member's LID, as the member's message of the
// sync says, without asking WhatsApp.
//
// Before (the own message taken as the group's newest, addressed by phone
// number): <receipt id="3EB0UNSEEN" participant="15557654321@s.whatsapp.net" t="…" to="120363099999999999@g.us" type="read"/>
func TestWireOwnHistoryMessageDoesNotTellGroupAddressing(t *testing.T) {
	forEachIndex(t, func(t *testing.T, w *wire, _ chatOnlyFunc) {
		ctx := context.Background()
		if err := w.dev.LIDs.PutLIDMapping(ctx, jid(memberLID), jid(member)); err != nil {
			t.Fatal(err)
		}
		historySync(t, w, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(lidGroup), Messages: []*waHistorySync.HistorySyncMsg{
					webMsg(lidGroup, "3EB0MINE", "", true, 1767225510),
					webMsg(lidGroup, "3EB0THEIRS", memberLID, false, 1767225500),
				}},
			},
		})
		if err := bwm.FlushIndex(ctx, w.session); err != nil {
			t.Fatal(err)
		}
		before := len(readReceipts(w.sent(t)))
		res, err := w.session.SendReceipt(ctx, rcpt(lidGroup, member, session.ReceiptRead, "3EB0UNSEEN"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Sender != memberLID {
			t.Errorf("Result.Sender = %q, want %q", res.Sender, memberLID)
		}
		sameLines(t, "receipts", receiptsSince(t, w, before),
			`<receipt id="3EB0UNSEEN" participant="222222222222222@lid" t="…" to="120363099999999999@g.us" type="read"/>`)
		if q := groupInfoQueries(w); len(q) != 0 {
			t.Errorf("asked WhatsApp about the group: %v", q)
		}
	})
}
