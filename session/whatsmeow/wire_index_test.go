package whatsmeow_test

// Wire tests of the message index: the message index is in the store,
// so what a session saw before a restart still addresses its receipts; a
// history sync tells what is unread. Real clients made by a Manager, the
// fake WhatsApp server, the store on SQLite and (BLUETICK_TEST_POSTGRES)
// PostgreSQL.

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/seenhandler"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

const (
	ownPhone = "15550000001@s.whatsapp.net" // the account's phone (device 0): fakewa's devices are its device 1
	lidGroup = "120363099999999999@g.us"
)

// pairIn stores in st a device the fake logs in.
func pairIn(t *testing.T, st bwm.TestStore) {
	t.Helper()
	c := sqlstore.NewWithDB(st.DB(t), st.Dialect, nil)
	if err := c.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	fakewa.PairDevice(t, c)
}

// startManager opens a Manager on dsn whose clients dial srv, starts it and
// waits until its one session has logged in. It returns the session as a
// wire (its client, device and the server) and the Manager, closed when t
// ends unless the test closed it.
func startManager(t *testing.T, srv *fakewa.Server, dsn string, opts ...bwm.Option) (*wire, *bwm.Manager) {
	t.Helper()
	ctx := context.Background()
	connected := make(chan struct{}, 16)
	var cli *whatsmeow.Client
	hook := bwm.WithClientHook(func(_ string, c *whatsmeow.Client) {
		c.SetWebsocketHTTPClient(srv.HTTPClient())
		c.EnableAutoReconnect = false
		cli = c
		c.AddEventHandler(func(evt any) {
			if _, ok := evt.(*events.Connected); ok {
				connected <- struct{}{}
			}
		})
	})
	m, err := bwm.Open(ctx, dsn, append([]bwm.Option{hook}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(wireWait):
		t.Fatal("the Manager's client did not log in")
	}
	s, err := m.Lookup(ctx, "15550000001")
	if err != nil {
		t.Fatal(err)
	}
	return &wire{srv: srv, dev: cli.Store, cli: cli, session: s.(*bwm.Session)}, m
}

// post sends body to a handler over m and returns the answer, which must be
// a 200.
func post(t *testing.T, m *bwm.Manager, body string) string {
	t.Helper()
	h, err := seenhandler.New(m, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body)
	}
	return strings.TrimSpace(rec.Body.String())
}

var tAttr = regexp.MustCompile(` t="\d+"`)

// receiptsSince returns the read/played/view receipt nodes after the first
// skip, verbatim but for their t attribute (when the handler sent them).
func receiptsSince(t *testing.T, w *wire, skip int) []string {
	t.Helper()
	nodes := readReceipts(w.sent(t))
	var out []string
	for _, n := range nodes[min(skip, len(nodes)):] {
		out = append(out, tAttr.ReplaceAllString(fakewa.XML(n), ` t="…"`))
	}
	return out
}

func sameLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	for _, g := range got {
		t.Logf("%s", g)
	}
}

// deliverChannel has the fake server push a channel post, as WhatsApp
// does (plaintext, with its server id), and waits for the client's ack:
// its handlers have run.
func deliverChannel(t *testing.T, srv *fakewa.Server, id, serverID string) {
	t.Helper()
	body, err := proto.Marshal(text("news"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Send(t, waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
		"from": jid(channel), "id": id, "server_id": serverID, "t": msgTime, "type": "text",
	}, Content: []waBinary.Node{{Tag: "plaintext", Content: body}}})
	srv.WaitNode(t, wireWait, func(n waBinary.Node) bool { return n.Tag == "ack" && n.Attrs["id"] == id })
}

// Messages arrive; the process stops (the Manager is
// closed) and starts again on the same store; with nothing in memory, the
// requests about those messages are addressed as before the restart: a
// group message without participant (its LID sender), a phone-number
// participant in the LID-addressed group (its LID, without asking
// WhatsApp), the account's own message skipped, a channel post by its
// message id (its server id), and a chat-only request marking the chat's
// unread messages — to the LID they came from.
//
// Before (memory index): the group request without participant was a 400
// ("participant is required"), the chat-only request answered
// {"acknowledged":false,"receipts":[]}, the own message was sent a receipt
// and the channel id was a 400 invalid_receipt.
func TestWireIndexSurvivesARestart(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		srv := fakewa.Start(t)
		pairIn(t, st)
		w, m := startManager(t, srv, st.DSN)
		w.deliver(t, text("hi"), "from", dmLID, "sender_pn", dm, "id", "3EB0DM1")
		w.deliver(t, text("there"), "from", dmLID, "sender_pn", dm, "id", "3EB0DM2", "t", "1767225510")
		w.deliver(t, &waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{DestinationJID: proto.String(dm), Message: text("mine")}},
			"from", ownPhone, "recipient", dm, "id", "3EB0MINE", "t", "1767225520")
		w.deliver(t, text("hello"), "from", lidGroup, "participant", memberLID, "participant_pn", member, "addressing_mode", "lid", "id", "3EB0LIDG")
		deliverChannel(t, srv, "3EB0CHAN", "101")
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		srv.WaitConnections(t, wireWait, 0)

		// The phone has shared an app-state key by now: chats are marked
		// read, in the background, each window (50 ms here).
		w, m = startManager(t, srv, st.DSN, bwm.WithChatReadWindow(50*time.Millisecond))
		if err := w.dev.AppStateKeys.PutAppStateSyncKey(context.Background(), []byte{0, 0, 0, 1},
			store.AppStateSyncKey{Data: bytes.Repeat([]byte{7}, 32), Fingerprint: []byte{1}, Timestamp: 1}); err != nil {
			t.Fatal(err)
		}
		before := len(readReceipts(w.sent(t)))
		post(t, m, `{"session":"15550000001","chatId":"`+lidGroup+`","messageIds":["3EB0LIDG"]}`)
		post(t, m, `{"session":"15550000001","chatId":"`+lidGroup+`","messageIds":["3EB0NEVERSEEN"],"participant":"15557654321"}`)
		got := post(t, m, `{"session":"15550000001","chatId":"15551234567","messageIds":["3EB0MINE"]}`)
		if !strings.Contains(got, `"skipped":[{"messageId":"3EB0MINE","reason":"from_me"}]`) {
			t.Errorf("own message: %s", got)
		}
		post(t, m, `{"session":"15550000001","chatId":"`+channel+`","messageIds":["3EB0CHAN"]}`)
		got = post(t, m, `{"session":"15550000001","chatId":"15551234567"}`)
		want := `{"success":true,"acknowledged":true,"session":"15550000001","chatId":"15551234567@s.whatsapp.net","receipts":[{"chatId":"123456789012345@lid","requestedChatId":"15551234567@s.whatsapp.net","messageIds":["3EB0DM1","3EB0DM2"],"type":"read"}],"skipped":[]}`
		if got != want {
			t.Errorf("chat-only answer\n got %s\nwant %s", got, want)
		}
		rs := receiptsSince(t, w, before)
		for i, r := range rs {
			if strings.Contains(r, "newsletter") { // its id is the client's request id
				rs[i] = regexp.MustCompile(` id="[^"]+"`).ReplaceAllString(r, ` id="…"`)
			}
		}
		sameLines(t, "receipts after the restart", rs,
			`<receipt id="3EB0LIDG" participant="222222222222222@lid" t="…" to="120363099999999999@g.us" type="read"/>`,
			`<receipt id="3EB0NEVERSEEN" participant="222222222222222@lid" t="…" to="120363099999999999@g.us" type="read"/>`,
			`<receipt id="…" to="120363123456789012@newsletter" type="view"><list><item server_id="101"/></list></receipt>`,
			`<receipt id="3EB0DM1" t="…" to="123456789012345@lid" type="read"><list><item id="3EB0DM2"/></list></receipt>`)
		if q := groupInfoQueries(w); len(q) != 0 {
			t.Errorf("asked WhatsApp about the group: %v", q)
		}

		// Marked read: the next chat-only request finds nothing unread and
		// says so. Nobody marked the chat unread: no app-state patch.
		got = post(t, m, `{"session":"15550000001","chatId":"15551234567"}`)
		want = `{"success":true,"acknowledged":false,"session":"15550000001","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[],"reason":"nothing_unread"}`
		if got != want {
			t.Errorf("nothing unread\n got %s\nwant %s", got, want)
		}
		w.sent(t)
		if n := srv.Counts().AppStatePatches; n != 0 {
			t.Errorf("%d app-state patches, want none", n)
		}
		got = post(t, m, `{"session":"15550000001","chatId":"15559999999"}`)
		if want := `"reason":"chat_unknown"}`; !strings.HasSuffix(got, want) || strings.Contains(got, "chatMarkedRead") {
			t.Errorf("unknown chat: %s, want …%s", got, want)
		}
	})
}

// historySyncs numbers the history sync notifications of the tests: each
// is a message of its own.
var historySyncs atomic.Int64

// historySync has the account's phone send the client a history sync
// notification (of hs's type) whose blob is inline
// (InitialHistBootstrapInlinePayload, which whatsmeow's DownloadHistorySync
// reads instead of downloading from the media servers: nothing leaves
// loopback), and waits until the client's event handlers, the Manager
// session's included, have handled the events.HistorySync whatsmeow
// dispatches from its history goroutine.
func historySync(t *testing.T, w *wire, hs *waHistorySync.HistorySync) {
	t.Helper()
	raw, err := proto.Marshal(hs)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 1)
	id := w.cli.AddEventHandler(func(evt any) { // after the Session's
		if _, ok := evt.(*events.HistorySync); ok {
			done <- struct{}{}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	msgID := fmt.Sprintf("3EB0HISTSYNC%d", historySyncs.Add(1))
	w.deliver(t, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: &waE2E.HistorySyncNotification{
			SyncType:                          waE2E.HistorySyncType(hs.GetSyncType()).Enum(),
			InitialHistBootstrapInlinePayload: z.Bytes(),
		},
	}}, "from", ownPhone, "id", msgID, "category", "peer")
	select {
	case <-done:
	case <-time.After(wireWait):
		t.Fatal("no events.HistorySync")
	}
	// whatsmeow answers the notification with three receipts, each sent
	// from a goroutine of its own (hist_sync, peer_msg, and the delivery
	// receipt, type sender), and deliver returns on the first: wait for
	// all, so that none is still being sent when the client disconnects
	// (whatsmeow's Disconnect would race the send).
	for _, typ := range []string{"hist_sync", "peer_msg", "sender"} {
		w.srv.WaitNode(t, wireWait, func(n waBinary.Node) bool {
			return n.Tag == "receipt" && n.Attrs["id"] == msgID && n.Attrs["type"] == typ
		})
	}
}

// webMsg is a message of a history sync.
func webMsg(chat, id, participant string, fromMe bool, ts uint64) *waHistorySync.HistorySyncMsg {
	key := &waCommon.MessageKey{RemoteJID: proto.String(chat), FromMe: proto.Bool(fromMe), ID: proto.String(id)}
	if participant != "" {
		key.Participant = proto.String(participant)
	}
	return &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
		Key: key, MessageTimestamp: proto.Uint64(ts), Message: text("from history " + id),
	}}
}

// A history sync (what the phone sends after pairing, and
// the only account of what arrived while no client was connected) tells
// which messages are unread: a chat-only request marks them — the newest
// UnreadCount incoming ones of each conversation, not the older ones, not
// the account's own — in a direct chat and in a group (its senders from
// the sync); the store keeps them across a restart.
//
// Before: events.HistorySync was not indexed; both requests answered
// {"acknowledged":false,"receipts":[]} and nothing went out.
func TestWireHistorySyncUnread(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		srv := fakewa.Start(t)
		pairIn(t, st)
		w, m := startManager(t, srv, st.DSN)
		historySync(t, w, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(dm), LidJID: proto.String(dmLID), UnreadCount: proto.Uint32(2), MarkedAsUnread: proto.Bool(true), Messages: []*waHistorySync.HistorySyncMsg{
					// Newest first, as WhatsApp sends them.
					webMsg(dm, "3EB0H4", "", false, 1767225540),
					webMsg(dm, "3EB0H3", "", false, 1767225530),
					webMsg(dm, "3EB0H2", "", true, 1767225520),
					webMsg(dm, "3EB0H1", "", false, 1767225510),
				}},
				{ID: proto.String(grp), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
					webMsg(grp, "3EB0HG1", member, false, 1767225500),
					webMsg(grp, "3EB0HG2", member, false, 1767225550),
				}},
			},
		})
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		srv.WaitConnections(t, wireWait, 0)
		// The phone has shared an app-state key by now: chats are marked
		// read, in the background, each window (50 ms here).
		w, m = startManager(t, srv, st.DSN, bwm.WithChatReadWindow(50*time.Millisecond))
		if err := w.dev.AppStateKeys.PutAppStateSyncKey(context.Background(), []byte{0, 0, 0, 1},
			store.AppStateSyncKey{Data: bytes.Repeat([]byte{7}, 32), Fingerprint: []byte{1}, Timestamp: 1}); err != nil {
			t.Fatal(err)
		}
		w.srv.AddAppStateKey(t, *w.dev.ID, []byte{0, 0, 0, 1}, bytes.Repeat([]byte{7}, 32))
		before := len(readReceipts(w.sent(t)))
		got := post(t, m, `{"session":"15550000001","chatId":"`+dmLID+`"}`)
		// The direct chat was marked unread on the phone (the sync's
		// markedAsUnread, kept in the store across the restart): its
		// patch is due.
		if !strings.Contains(got, `"messageIds":["3EB0H3","3EB0H4"]`) || !strings.Contains(got, `"chatRead":"scheduled"`) {
			t.Errorf("direct chat: %s", got)
		}
		got = post(t, m, `{"session":"15550000001","chatId":"`+grp+`"}`)
		if !strings.Contains(got, `"sender":"15557654321@s.whatsapp.net","messageIds":["3EB0HG2"]`) || strings.Contains(got, "chatRead") {
			t.Errorf("group: %s", got)
		}
		waitPatches(t, w, 1)
		sameLines(t, "patches", chatReadPatches(t, w),
			"markChatAsRead 15551234567@s.whatsapp.net read=true last=1767225540 key={15551234567@s.whatsapp.net 3EB0H4 fromMe=false participant=} t=1767225540")
		sameLines(t, "receipts", receiptsSince(t, w, before),
			`<receipt id="3EB0H3" t="…" to="15551234567@s.whatsapp.net" type="read"><list><item id="3EB0H4"/></list></receipt>`,
			`<receipt id="3EB0HG2" participant="15557654321@s.whatsapp.net" t="…" to="120363012345678901@g.us" type="read"/>`)
		got = post(t, m, `{"session":"15550000001","chatId":"`+dm+`"}`)
		if !strings.Contains(got, `"reason":"nothing_unread"`) {
			t.Errorf("after marking: %s", got)
		}
	})
}
