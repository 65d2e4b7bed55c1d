package whatsmeow_test

// Auto-read pauses while the account is active on another device: what
// counts as the person being there, and when.

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// offers records what a Session offers for auto-read.
type offers struct {
	mu  sync.Mutex
	ids []string
}

// add records arr; it is the Session's OnArrival callback.
func (a *offers) add(arr session.Arrival) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids = append(a.ids, arr.ID)
}

// got returns the ids offered so far, in order.
func (a *offers) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

// autoReadWire is a wire whose Session offers its arrivals for auto-read
// (PhoneIdle 5 min, the default), recorded in the offers returned.
func autoReadWire(t *testing.T) (*wire, *offers) {
	t.Helper()
	w := newWireWith(t, []bwm.Option{bwm.WithAutoRead(bwm.AutoRead{})})
	a := &offers{}
	t.Cleanup(w.session.OnArrival(a.add))
	return w, a
}

// fromPhone wraps msg as the account's phone sends what it sends to the
// account's other devices.
func fromPhone(msg *waE2E.Message) *waE2E.Message {
	return &waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{DestinationJID: proto.String(dm), Message: msg}}
}

// What the person does on the phone, through whatsmeow's own dispatch
// (each delivered by the fake from the account's own JID, or a receipt
// from it), stamped with its own time: done just now, it pauses auto-read
// (the next incoming message is not offered); done long ago — a message
// delivered late, after the client was offline — it does not. What the
// phone sends by itself (an app-state key share) never does.
//
// Before: reactions, edits, revokes, poll votes and played receipts did not
// pause auto-read (3EB0IN offered), and an own text from long ago paused
// it (stamped with the time it arrived).
func TestWireActivityOnThePhonePausesAutoRead(t *testing.T) {
	key := &waCommon.MessageKey{RemoteJID: proto.String(dm), FromMe: proto.Bool(false), ID: proto.String("3EB0THEIRS")}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	const longAgo = msgTime // a year before the tests' clock
	tests := []struct {
		name   string
		act    func(t *testing.T, w *wire)
		paused bool
	}{
		{"text", func(t *testing.T, w *wire) {
			w.deliver(t, fromPhone(text("hi")), "from", ownPhone, "recipient", dm, "id", "3EB0MINE", "t", now)
		}, true},
		{"text long ago", func(t *testing.T, w *wire) {
			w.deliver(t, fromPhone(text("hi")), "from", ownPhone, "recipient", dm, "id", "3EB0MINE", "t", longAgo)
		}, false},
		{"reaction", func(t *testing.T, w *wire) {
			w.deliver(t, fromPhone(&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String("👍")}}),
				"from", ownPhone, "recipient", dm, "id", "3EB0REACT", "type", "reaction", "t", now)
		}, true},
		{"reaction long ago", func(t *testing.T, w *wire) {
			w.deliver(t, fromPhone(&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String("👍")}}),
				"from", ownPhone, "recipient", dm, "id", "3EB0REACT", "type", "reaction", "t", longAgo)
		}, false},
		{"poll vote", func(t *testing.T, w *wire) {
			w.deliver(t, fromPhone(&waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{PollCreationMessageKey: key}}),
				"from", ownPhone, "recipient", dm, "id", "3EB0VOTE", "type", "poll", "t", now)
		}, true},
		{"edit", func(t *testing.T, w *wire) {
			mine := &waCommon.MessageKey{RemoteJID: proto.String(dm), FromMe: proto.Bool(true), ID: proto.String("3EB0MINE")}
			w.deliver(t, fromPhone(&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
				Key: mine, EditedMessage: text("hi!")}}), "from", ownPhone, "recipient", dm, "id", "3EB0EDIT", "edit", "1", "t", now)
		}, true},
		{"revoke", func(t *testing.T, w *wire) {
			mine := &waCommon.MessageKey{RemoteJID: proto.String(dm), FromMe: proto.Bool(true), ID: proto.String("3EB0MINE")}
			w.deliver(t, fromPhone(&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: mine}}),
				"from", ownPhone, "recipient", dm, "id", "3EB0REVOKE", "edit", "7", "t", now)
		}, true},
		{"played receipt", func(t *testing.T, w *wire) { w.ownReceiptAt(t, dm, "played", now, "3EB0VOICE") }, true},
		{"played-self receipt", func(t *testing.T, w *wire) { w.ownReceiptAt(t, dm, "played-self", now, "3EB0VOICE") }, true},
		{"read receipt", func(t *testing.T, w *wire) { w.ownReceiptAt(t, dm, "read", now, "3EB0THEIRS") }, true},
		{"read receipt long ago", func(t *testing.T, w *wire) { w.ownReceiptAt(t, dm, "read", longAgo, "3EB0THEIRS") }, false},
		{"app-state key share", func(t *testing.T, w *wire) {
			share := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
				Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum(),
				AppStateSyncKeyShare: &waE2E.AppStateSyncKeyShare{Keys: []*waE2E.AppStateSyncKey{{
					KeyID: &waE2E.AppStateSyncKeyId{KeyID: []byte{0, 0, 0, 10}},
					KeyData: &waE2E.AppStateSyncKeyData{KeyData: make([]byte, 32), Timestamp: proto.Int64(2),
						Fingerprint: &waE2E.AppStateSyncKeyFingerprint{RawID: proto.Uint32(10)}},
				}}},
			}}
			w.deliver(t, share, "from", ownPhone, "id", "3EB0KEYSHARE", "type", "protocol", "category", "peer", "t", now)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, offered := autoReadWire(t)
			tc.act(t, w)
			w.deliver(t, text("are you there?"), "from", dm, "id", "3EB0IN", "t", now)
			want := []string{"3EB0IN"}
			if tc.paused {
				want = nil
			}
			if got := offered.got(); len(got) != len(want) {
				t.Errorf("offered %v, want %v (paused: %v)", got, want, tc.paused)
			}
		})
	}
}

// A later activity is not moved back by an older one arriving after it (an
// own message delivered late): auto-read stays paused.
//
// Before: the same, but only because every event counted as done when it
// arrived.
func TestWireOlderActivityKeepsTheLaterStamp(t *testing.T) {
	w, offered := autoReadWire(t)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	w.ownReceiptAt(t, dm, "read", now, "3EB0THEIRS")
	w.deliver(t, fromPhone(text("hi")), "from", ownPhone, "recipient", dm, "id", "3EB0OLDMINE", "t", msgTime)
	w.deliver(t, text("are you there?"), "from", dm, "id", "3EB0IN", "t", now)
	if got := offered.got(); len(got) != 0 {
		t.Errorf("offered %v while the account read a chat on its phone just now", got)
	}
}

// App-state actions from another device (whatsmeow dispatches them as
// another device's patches are fetched; the fake server cannot send
// patches, so the events are given to the Session's handler as whatsmeow
// would): a chat archived, pinned, muted, marked read or unread, a message
// starred… just now pauses auto-read. One from a full sync (the state as
// it is), or long ago, does not; nor does the echo of the Session's own
// "mark chat read" patch, which whatsmeow dispatches back after sending it.
//
// Before: none of them paused auto-read.
func TestAppStateActivityPausesAutoRead(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	longAgo := now.Add(-time.Hour)
	chat := jid(dm)
	tests := []struct {
		name   string
		evt    func(own time.Time) any
		paused bool
	}{
		{"mark chat read", func(time.Time) any {
			return &events.MarkChatAsRead{JID: chat, Timestamp: now, Action: &waSyncAction.MarkChatAsReadAction{Read: proto.Bool(true)}}
		}, true},
		{"mark chat unread", func(time.Time) any {
			return &events.MarkChatAsRead{JID: chat, Timestamp: now, Action: &waSyncAction.MarkChatAsReadAction{Read: proto.Bool(false)}}
		}, true},
		{"archive", func(time.Time) any { return &events.Archive{JID: chat, Timestamp: now} }, true},
		{"pin", func(time.Time) any { return &events.Pin{JID: chat, Timestamp: now} }, true},
		{"mute", func(time.Time) any { return &events.Mute{JID: chat, Timestamp: now} }, true},
		{"star", func(time.Time) any { return &events.Star{ChatJID: chat, MessageID: "M", Timestamp: now} }, true},
		{"delete for me", func(time.Time) any { return &events.DeleteForMe{ChatJID: chat, MessageID: "M", Timestamp: now} }, true},
		{"clear chat", func(time.Time) any { return &events.ClearChat{JID: chat, Timestamp: now} }, true},
		{"delete chat", func(time.Time) any { return &events.DeleteChat{JID: chat, Timestamp: now} }, true},
		{"label a chat", func(time.Time) any { return &events.LabelAssociationChat{JID: chat, LabelID: "1", Timestamp: now} }, true},
		{"full sync", func(time.Time) any { return &events.Archive{JID: chat, Timestamp: now, FromFullSync: true} }, false},
		{"long ago", func(time.Time) any { return &events.Pin{JID: chat, Timestamp: longAgo} }, false},
		{"the Session's own patch, echoed", func(own time.Time) any {
			return &events.MarkChatAsRead{JID: chat, Timestamp: own, Action: &waSyncAction.MarkChatAsReadAction{Read: proto.Bool(true)}}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, fc, _ := newSession(t, bwm.WithAutoRead(bwm.AutoRead{}))
			offered := &offers{}
			defer s.OnArrival(offered.add)()
			if err := s.MarkChatReadNow(t.Context(), session.ChatRead{Chat: dm, LastMessageID: "X", Timestamp: now}); err != nil {
				t.Fatal(err)
			}
			_, _, patches := fc.recorded()
			if len(patches) != 1 {
				t.Fatalf("patches %+v, want one", patches)
			}
			if patches[0].Timestamp.IsZero() {
				t.Errorf("the patch is not stamped: whatsmeow stamps it, unknown to the Session")
			}
			fc.emit(tc.evt(patches[0].Timestamp.Truncate(time.Millisecond))) // as whatsmeow reads the stamp back
			fc.emit(&events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: chat, Sender: chat},
				ID: "3EB0IN", Timestamp: now}, Message: text("are you there?")})
			want := 1
			if tc.paused {
				want = 0
			}
			if got := offered.got(); len(got) != want {
				t.Errorf("offered %v, want %d (paused: %v)", got, want, tc.paused)
			}
		})
	}
}
