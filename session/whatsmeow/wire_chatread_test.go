package whatsmeow_test

// Wire tests of marking chats read on the account's other devices: read
// receipts alone, as WhatsApp Web does, and a markChatAsRead app-state patch
// only for a chat the account's owner marked unread. The fake server's
// phone (another device of the account) decodes and verifies every patch
// with whatsmeow's own appstate processor, as the account's other devices
// would.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// The app-state key tests share between the client and the account's phone.
var (
	appStateKeyID   = []byte{0, 0, 0, 1}
	appStateKeyData = bytes.Repeat([]byte{7}, 32)
)

// shareAppStateKey gives the client and the account's phone the same
// app-state key, as the phone shares its keys with a new device.
func (w *wire) shareAppStateKey(t *testing.T) {
	t.Helper()
	if err := w.dev.AppStateKeys.PutAppStateSyncKey(context.Background(), appStateKeyID,
		store.AppStateSyncKey{Data: appStateKeyData, Fingerprint: []byte{1}, Timestamp: 1}); err != nil {
		t.Fatal(err)
	}
	w.srv.AddAppStateKey(t, *w.dev.ID, appStateKeyID, appStateKeyData)
}

// phoneMarksUnread has the account's phone mark chats unread, in one
// app-state patch, and waits until the client's event handlers — the
// Session's, registered first, included — have handled whatsmeow's
// events.MarkChatAsRead for each. A client that never synced the
// collection first gets a patch of the phone's marking another chat read:
// whatsmeow dispatches no events of a first, full sync.
func (w *wire) phoneMarksUnread(t *testing.T, chats ...string) {
	t.Helper()
	marked := make(chan string, len(chats)+1)
	synced := make(chan struct{}, 1)
	id := w.cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.MarkChatAsRead:
			if !e.Action.GetRead() {
				marked <- e.JID.String()
			}
		case *events.AppStateSyncComplete:
			select {
			case synced <- struct{}{}:
			default:
			}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	version, _, err := w.dev.AppState.GetAppStateVersion(context.Background(), string(appstate.WAPatchRegularLow))
	if err != nil {
		t.Fatal(err)
	}
	if version == 0 {
		w.srv.PhonePatch(t, *w.dev.ID, appstate.BuildMarkChatAsRead(jid("15550000099@s.whatsapp.net"), true, time.Unix(1767225000, 0),
			&waCommon.MessageKey{RemoteJID: proto.String("15550000099@s.whatsapp.net"), ID: proto.String("3EB0ELSE"), FromMe: proto.Bool(false)}))
		select {
		case <-synced:
		case <-time.After(wireWait):
			t.Fatal("the client did not sync the phone's app state")
		}
	}
	var patch appstate.PatchInfo
	for _, c := range chats {
		p := appstate.BuildMarkChatAsRead(jid(c), false, time.Unix(1767225590, 0),
			&waCommon.MessageKey{RemoteJID: proto.String(c), ID: proto.String("3EB0ANY"), FromMe: proto.Bool(false)})
		patch.Type = p.Type
		patch.Mutations = append(patch.Mutations, p.Mutations...)
	}
	w.srv.PhonePatch(t, *w.dev.ID, patch)
	for range chats {
		select {
		case <-marked:
		case <-time.After(wireWait):
			t.Fatal("whatsmeow dispatched no events.MarkChatAsRead for the phone's patch")
		}
	}
}

// chatReadPatches returns the "mark chat read" mutations of the app-state
// patches the client sent, as the account's phone decoded them, one line
// each: chat (the index), read, last message timestamp, and the message
// key (remote JID, id, fromMe, participant). It fails the test if the
// phone refused any patch.
func chatReadPatches(t *testing.T, w *wire) []string {
	t.Helper()
	for _, err := range w.srv.AppStateRejections() {
		t.Errorf("the account's phone refused a patch: %v", err)
	}
	var out []string
	for _, p := range w.srv.AppStatePatches() {
		if p.FromPhone {
			continue
		}
		for _, m := range p.Mutations {
			a := m.Action.GetMarkChatAsReadAction()
			r := a.GetMessageRange()
			line := fmt.Sprintf("%s read=%v last=%d", strings.Join(m.Index, " "), a.GetRead(), r.GetLastMessageTimestamp())
			for _, msg := range r.GetMessages() {
				k := msg.GetKey()
				line += fmt.Sprintf(" key={%s %s fromMe=%v participant=%s} t=%d", k.GetRemoteJID(), k.GetID(), k.GetFromMe(), k.GetParticipant(), msg.GetTimestamp())
			}
			out = append(out, line)
		}
	}
	return out
}

// A chat is marked read on the account's other devices by the read
// receipts alone, as WhatsApp Web does: five reads send five receipts and no
// app-state patch, and the answers say nothing of it. Only a chat the
// account's owner marked unread (on the phone: an app-state patch, through
// whatsmeow's own sync and dispatch) gets a markChatAsRead mutation, in the
// window's one patch: the chat in the form it was marked in (the index its
// app state has there), its newest message as it arrived. A direct chat
// read under its phone number and under its LID within one window is one
// mutation: the phone decodes and verifies the patch. Once sent, the chat
// is no longer marked unread: the next read needs no patch.
//
// Before: five reads, five receipts and five patches (ten app-state IQs);
// the direct chat read in both forms in one window: one patch with two
// markChatAsRead mutations of index 123456789012345@lid, which the phone
// rejects ("failed to verify patch v1: mismatching LTHash").
func TestWireChatReadPatch(t *testing.T) {
	// A window of a second, so that the wire sees it end; its exact timing
	// is TestScheduleChatReadWindow's, under synctest.
	const window = time.Second
	w := newWireWith(t, []bwm.Option{bwm.WithChatReadWindow(window)})
	w.shareAppStateKey(t)
	h := wireHandler(t, w)

	w.deliver(t, text("old"), "from", dmLID, "sender_pn", dm, "id", "3EB0OLD", "t", "1767225500")
	w.deliver(t, text("new"), "from", dmLID, "sender_pn", dm, "id", "3EB0NEW", "t", "1767225560")
	const lidGroup = "120363099999999999@g.us"
	w.deliver(t, text("hello"), "from", lidGroup, "participant", memberLID, "participant_pn", member, "addressing_mode", "lid", "id", "3EB0LIDG", "t", "1767225570")
	for i, body := range []string{
		`{"session":"wire","chatId":"15551234567","messageIds":["3EB0OLD"]}`,
		`{"session":"wire","chatId":"123456789012345@lid","messageIds":["3EB0NEW"]}`,
		`{"session":"wire","chatId":"15551234567","messageIds":["3EB0X1"]}`,
		`{"session":"wire","chatId":"15551234567"}`,
		`{"session":"wire","chatId":"120363099999999999@g.us","messageIds":["3EB0LIDG"]}`,
	} {
		t.Logf("read %d: %s", i, postChatRead(t, h, body, ""))
	}
	w.sent(t) // a round trip: whatever the client sent is in
	if n := w.srv.Counts().AppStatePatches; n != 0 {
		t.Fatalf("%d app-state patches for chats nobody marked unread, want 0", n)
	}

	w.phoneMarksUnread(t, dm, lidGroup)
	w.deliver(t, text("newer"), "from", dmLID, "sender_pn", dm, "id", "3EB0NEW2", "t", "1767225580")
	w.deliver(t, text("again"), "from", lidGroup, "participant", memberLID, "participant_pn", member, "addressing_mode", "lid", "id", "3EB0LIDG2", "t", "1767225590")
	opened := time.Now()
	postChatRead(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0NEW2"]}`, "scheduled")
	postChatRead(t, h, `{"session":"wire","chatId":"123456789012345@lid","messageIds":["3EB0X2"]}`, "scheduled")
	postChatRead(t, h, `{"session":"wire","chatId":"120363099999999999@g.us","messageIds":["3EB0LIDG2"],"participant":"15557654321"}`, "scheduled")
	if n := len(chatReadPatches(t, w)); n != 0 && time.Since(opened) < window {
		t.Fatalf("%d patches sent before the window ended", n)
	}
	waitPatches(t, w, 1) // both chats in one patch, once the window ends
	sameLines(t, "patches", chatReadPatches(t, w),
		"markChatAsRead 120363099999999999@g.us read=true last=1767225590 key={120363099999999999@g.us 3EB0LIDG2 fromMe=false participant=222222222222222@lid} t=1767225590",
		"markChatAsRead 15551234567@s.whatsapp.net read=true last=1767225580 key={123456789012345@lid 3EB0NEW2 fromMe=false participant=} t=1767225580")

	// Read and no longer marked unread: no patch.
	postChatRead(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0X3"]}`, "")
	postChatRead(t, h, `{"session":"wire","chatId":"123456789012345@lid","messageIds":["3EB0X4"]}`, "")
	w.sent(t)
	if n := w.srv.Counts().AppStatePatches; n != 1 {
		t.Errorf("%d patches in all, want 1", n)
	}
}

// The fake server's phone checks what another device of the account
// checks: a patch carrying two mutations of one index — whatsmeow's encoder
// takes each index's previous value from the store only, a receiver from
// the same patch first — fails to verify, and the server refuses it; a
// good patch is taken, and the client fetches it back and applies it as
// its own (its collection's version follows).
func TestWireFakePhoneVerifiesPatches(t *testing.T) {
	w := newWire(t)
	w.shareAppStateKey(t)
	ctx := context.Background()
	key := w.cli.BuildMessageKey(jid(dmLID), jid(dmLID), "3EB0NEW")
	one := appstate.BuildMarkChatAsRead(jid(dmLID), true, time.Unix(1767225560, 0), key)
	if err := w.cli.SendAppState(ctx, one); err != nil {
		t.Fatalf("a good patch: %v", err)
	}
	if version, _, err := w.dev.AppState.GetAppStateVersion(ctx, string(appstate.WAPatchRegularLow)); err != nil || version != 1 {
		t.Errorf("client at version %d (%v) after its patch, want 1", version, err)
	}
	two := one
	two.Mutations = append(two.Mutations, one.Mutations...)
	if err := w.cli.SendAppState(ctx, two); err == nil {
		t.Error("a patch with two mutations of one index was taken")
	}
	rejected := w.srv.AppStateRejections()
	if len(rejected) != 1 || !strings.Contains(rejected[0].Error(), "mismatching LTHash") {
		t.Errorf("rejections %v, want one mismatching LTHash", rejected)
	}
}

// Until the phone shares its app-state keys, which can take a while after
// pairing, no chat can be marked read with a patch: for a chat marked
// unread (here by the history sync's markedAsUnread), the Session finds no
// key in the store once and answers "unavailable" without looking again
// per request (nor sending anything); when the phone's key share arrives
// (an encrypted protocol message from the account's own phone, through
// whatsmeow's own handling, which stores the keys and syncs app state), the
// next request is "scheduled" and its patch goes out with the shared key.
//
// Before: every request ran two store queries and failed with whatsmeow's
// "no app state keys found" ("chatMarkedRead":false), again and again.
func TestWireChatReadWaitsForKeys(t *testing.T) {
	w := newWireWith(t, []bwm.Option{bwm.WithChatReadWindow(100 * time.Millisecond)})
	h := wireHandler(t, w)
	historySync(t, w, &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{
			{ID: proto.String(dm), MarkedAsUnread: proto.Bool(true)},
		},
	})
	body := postChatRead(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0K1"]}`, "unavailable")
	if !strings.HasSuffix(strings.TrimSpace(body), `"chatRead":"unavailable","chatMarkedRead":false}`) {
		t.Errorf("answer %s", body)
	}

	// Keys in the store without whatsmeow saying so: the Session goes on
	// remembering that there were none.
	key := bytes.Repeat([]byte{7}, 32)
	if err := w.dev.AppStateKeys.PutAppStateSyncKey(context.Background(), []byte{0, 0, 0, 9},
		store.AppStateSyncKey{Data: key, Fingerprint: []byte{1}, Timestamp: 1}); err != nil {
		t.Fatal(err)
	}
	postChatRead(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0K2"]}`, "unavailable")

	// The phone shares its keys.
	w.srv.AddAppStateKey(t, *w.dev.ID, []byte{0, 0, 0, 10}, key)
	synced := make(chan struct{}, 8)
	id := w.cli.AddEventHandler(func(evt any) { // after the Session's handler
		if _, ok := evt.(*events.AppStateSyncComplete); ok {
			select {
			case synced <- struct{}{}:
			default:
			}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	share := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum(),
		AppStateSyncKeyShare: &waE2E.AppStateSyncKeyShare{Keys: []*waE2E.AppStateSyncKey{{
			KeyID: &waE2E.AppStateSyncKeyId{KeyID: []byte{0, 0, 0, 10}},
			KeyData: &waE2E.AppStateSyncKeyData{KeyData: key, Timestamp: proto.Int64(2),
				Fingerprint: &waE2E.AppStateSyncKeyFingerprint{RawID: proto.Uint32(10)}},
		}}},
	}}
	w.deliver(t, share, "from", ownPhone, "id", "3EB0KEYSHARE", "type", "protocol", "category", "peer")
	select {
	case <-synced:
	case <-time.After(wireWait):
		t.Fatal("no events.AppStateSyncComplete after the key share")
	}
	if k, err := w.dev.AppStateKeys.GetAppStateSyncKey(context.Background(), []byte{0, 0, 0, 10}); err != nil || k == nil {
		t.Fatalf("whatsmeow did not store the shared key: %v", err)
	}
	postChatRead(t, h, `{"session":"wire","chatId":"15551234567","messageIds":["3EB0K3"]}`, "scheduled")
	waitPatches(t, w, 1) // once the window ends
	got := chatReadPatches(t, w)
	if len(got) != 1 || !strings.HasPrefix(got[0], "markChatAsRead 15551234567@s.whatsapp.net read=true") ||
		!strings.Contains(got[0], " key={15551234567@s.whatsapp.net 3EB0K3 fromMe=false participant=} ") {
		t.Errorf("patches %q, want one marking the direct chat read up to 3EB0K3", got)
	}
}
