package whatsmeow_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

var dbSeq atomic.Int64

// newContainer opens a whatsmeow store in a private in-memory SQLite
// database (pure Go, modernc.org/sqlite).
func newContainer(t *testing.T) *sqlstore.Container {
	t.Helper()
	dsn := fmt.Sprintf("file:bwm-%s-%d?mode=memory&cache=shared&_pragma=foreign_keys(1)", t.Name(), dbSeq.Add(1))
	dsn = strings.NewReplacer("/", "_", " ", "_").Replace(dsn)
	c, err := sqlstore.New(context.Background(), "sqlite", dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var ownJID = types.NewADJID("15550000001", 0, 1)

// newDevice returns a device of a fresh store, paired as ownJID or never
// paired.
func newDevice(t *testing.T, paired bool) *store.Device {
	t.Helper()
	dev := newContainer(t).NewDevice()
	if paired {
		id := ownJID
		dev.ID = &id
		dev.Account = &waAdv.ADVSignedDeviceIdentity{ // what pairing stores
			Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
		}
		if err := dev.Save(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return dev
}

func newSession(t *testing.T, opts ...bwm.Option) (*bwm.Session, *fakeClient, *store.Device) {
	t.Helper()
	fc := newFakeClient()
	dev := newDevice(t, true)
	s := mustNew(t, fc, dev, opts...)
	t.Cleanup(s.Close)
	return s, fc, dev
}

const (
	dm      = "15551234567@s.whatsapp.net"
	dmLID   = "123456789012345@lid"
	grp     = "120363012345678901@g.us"
	member  = "15557654321@s.whatsapp.net"
	channel = "120363123456789012@newsletter"
)

var ts = time.Unix(1767225600, 0)

func jid(s string) types.JID { return types.NewJID(strings.Split(s, "@")[0], strings.Split(s, "@")[1]) }

func rcpt(chat, sender string, typ session.ReceiptType, ids ...string) session.Receipt {
	return session.Receipt{Chat: chat, Sender: sender, MessageIDs: ids, Type: typ, Timestamp: ts}
}

// The receipt types MarkRead is asked for, and readReceiptsOff: an account
// whose read receipts are off.
var (
	read            = []types.ReceiptType{types.ReceiptTypeRead}
	played          = []types.ReceiptType{types.ReceiptTypePlayed}
	readReceiptsOff = func(f *fakeClient) { f.privacy = types.PrivacySettingNone }
)

func TestSendReceiptCalls(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeClient)
		receipt session.Receipt
		want    markRead
		typ     session.ReceiptType
	}{
		{"direct read", nil, rcpt(dm, "", session.ReceiptRead, "3EB0A"),
			markRead{ids: []string{"3EB0A"}, ts: ts, chat: jid(dm), sender: types.EmptyJID, extra: read}, session.ReceiptRead},
		{"lid chat", nil, rcpt(dmLID, "", session.ReceiptRead, "3EB0A"),
			markRead{ids: []string{"3EB0A"}, ts: ts, chat: jid(dmLID), sender: types.EmptyJID, extra: read}, session.ReceiptRead},
		{"group with sender", nil, rcpt(grp, member, session.ReceiptRead, "G1"),
			markRead{ids: []string{"G1"}, ts: ts, chat: jid(grp), sender: jid(member), extra: read}, session.ReceiptRead},
		{"list of ids, in order", nil, rcpt(grp, member, session.ReceiptRead, "G3", "G1", "G2"),
			markRead{ids: []string{"G3", "G1", "G2"}, ts: ts, chat: jid(grp), sender: jid(member), extra: read}, session.ReceiptRead},
		{"played", nil, rcpt(dm, "", session.ReceiptPlayed, "V1"),
			markRead{ids: []string{"V1"}, ts: ts, chat: jid(dm), sender: types.EmptyJID, extra: played}, session.ReceiptPlayed},
		{"read receipts off: read-self", readReceiptsOff, rcpt(dm, "", session.ReceiptRead, "3EB0A"),
			markRead{ids: []string{"3EB0A"}, ts: ts, chat: jid(dm), sender: types.EmptyJID, extra: []types.ReceiptType{types.ReceiptTypeReadSelf}}, session.ReceiptReadSelf},
		{"read receipts off: played-self", readReceiptsOff, rcpt(dm, "", session.ReceiptPlayed, "V1"),
			markRead{ids: []string{"V1"}, ts: ts, chat: jid(dm), sender: types.EmptyJID, extra: []types.ReceiptType{types.ReceiptTypePlayedSelf}}, session.ReceiptPlayedSelf},
		{"read receipts off: played stays played in a group", readReceiptsOff, rcpt(grp, member, session.ReceiptPlayed, "V1"),
			markRead{ids: []string{"V1"}, ts: ts, chat: jid(grp), sender: jid(member), extra: played}, session.ReceiptPlayed},
		{"read receipts off: status read-self", readReceiptsOff, rcpt("status@broadcast", member, session.ReceiptRead, "S1"),
			markRead{ids: []string{"S1"}, ts: ts, chat: jid("status@broadcast"), sender: jid(member), extra: []types.ReceiptType{types.ReceiptTypeReadSelf}}, session.ReceiptReadSelf},
		{"read receipts off: status played-self", readReceiptsOff, rcpt("status@broadcast", member, session.ReceiptPlayed, "S1"),
			markRead{ids: []string{"S1"}, ts: ts, chat: jid("status@broadcast"), sender: jid(member), extra: []types.ReceiptType{types.ReceiptTypePlayedSelf}}, session.ReceiptPlayedSelf},
		{"privacy unknown: played in a group does not depend on it", func(f *fakeClient) { f.privacyErr = errors.New("iq timed out") }, rcpt(grp, member, session.ReceiptPlayed, "V1"),
			markRead{ids: []string{"V1"}, ts: ts, chat: jid(grp), sender: jid(member), extra: played}, session.ReceiptPlayed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, fc, _ := newSession(t)
			if tc.setup != nil {
				fc.set(tc.setup)
			}
			res, err := s.SendReceipt(context.Background(), tc.receipt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Type != tc.typ {
				t.Errorf("type = %q, want %q", res.Type, tc.typ)
			}
			marks, views, _ := fc.recorded()
			if len(marks) != 1 || len(views) != 0 {
				t.Fatalf("MarkRead calls %+v, views %+v", marks, views)
			}
			if !reflect.DeepEqual(marks[0], tc.want) {
				t.Errorf("MarkRead(%+v), want %+v", marks[0], tc.want)
			}
		})
	}
}

func TestSendReceiptErrors(t *testing.T) {
	tests := []struct {
		name    string
		device  func(t *testing.T) *store.Device
		setup   func(*fakeClient)
		receipt session.Receipt
		want    error
	}{
		{"not connected", nil, func(f *fakeClient) { f.connected, f.loggedIn = false, false }, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotConnected},
		{"connected, not yet logged in", nil, func(f *fakeClient) { f.loggedIn = false }, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotConnected},
		{"never paired", func(t *testing.T) *store.Device { return newDevice(t, false) }, nil, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotLoggedIn},
		{"whatsmeow not connected", nil, func(f *fakeClient) { f.markErr = whatsmeow.ErrNotConnected }, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotConnected},
		{"whatsmeow not logged in", nil, func(f *fakeClient) { f.markErr = whatsmeow.ErrNotLoggedIn }, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotLoggedIn},
		{"whatsmeow iq timeout", nil, func(f *fakeClient) { f.viewErr = whatsmeow.ErrIQTimedOut }, rcpt(channel, "", session.ReceiptRead, "7"), context.DeadlineExceeded},
		{"privacy unknown: no read", nil, func(f *fakeClient) { f.privacyErr = errors.New("iq timed out") }, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotConnected},
		{"privacy empty: no read", nil, func(f *fakeClient) { f.privacy = "" }, rcpt(dm, "", session.ReceiptRead, "A"), session.ErrNotConnected},
		{"privacy unknown: no played in a direct chat", nil, func(f *fakeClient) { f.privacyErr = errors.New("iq timed out") }, rcpt(dm, "", session.ReceiptPlayed, "A"), session.ErrNotConnected},
		{"privacy unknown: no read in a group", nil, func(f *fakeClient) { f.privacyErr = errors.New("iq timed out") }, rcpt(grp, member, session.ReceiptRead, "A"), session.ErrNotConnected},
		// The fake's SendNode has no connection: what matters here is that
		// MarkRead, which would send read-self, is not asked.
		{"read receipts off: a group read is not MarkRead's", nil, readReceiptsOff, rcpt(grp, member, session.ReceiptRead, "A"), session.ErrNotConnected},
		{"no ids", nil, nil, rcpt(dm, "", session.ReceiptRead), session.ErrInvalidReceipt},
		{"empty id", nil, nil, rcpt(dm, "", session.ReceiptRead, ""), session.ErrInvalidReceipt},
		{"no chat", nil, nil, rcpt("", "", session.ReceiptRead, "A"), session.ErrInvalidReceipt},
		{"group without sender", nil, nil, rcpt(grp, "", session.ReceiptRead, "A"), session.ErrInvalidReceipt},
		{"unknown type", nil, nil, rcpt(dm, "", "delivery", "A"), session.ErrInvalidReceipt},
		{"channel id neither numeric nor known", nil, nil, rcpt(channel, "", session.ReceiptRead, "3EB0A"), session.ErrInvalidReceipt},
		{"channel id zero", nil, nil, rcpt(channel, "", session.ReceiptRead, "0"), session.ErrInvalidReceipt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeClient()
			if tc.setup != nil {
				fc.set(tc.setup)
			}
			dev := newDevice(t, true)
			if tc.device != nil {
				dev = tc.device(t)
			}
			s := mustNew(t, fc, dev)
			defer s.Close()
			_, err := s.SendReceipt(context.Background(), tc.receipt)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if marks, views, _ := fc.recorded(); len(marks)+len(views) != 0 {
				t.Errorf("sent %+v %+v", marks, views)
			}
		})
	}
}

func TestChannelView(t *testing.T) {
	s, fc, _ := newSession(t)
	// A channel message seen arriving: its server id is known by its id.
	fc.emit(&events.Message{Info: types.MessageInfo{
		MessageSource: types.MessageSource{Chat: jid(channel), Sender: jid(channel)},
		ID:            "3EB0CHAN", ServerID: 205, Timestamp: ts,
	}, Message: &waE2E.Message{Conversation: proto.String("news")}})

	res, err := s.SendReceipt(context.Background(), rcpt(channel, "", session.ReceiptRead, "101", "3EB0CHAN"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != session.ReceiptView {
		t.Errorf("type = %q, want view", res.Type)
	}
	marks, views, _ := fc.recorded()
	want := []view{{jid(channel), []types.MessageServerID{101, 205}}}
	if len(marks) != 0 || !reflect.DeepEqual(views, want) {
		t.Errorf("MarkRead %+v, views %+v; want views %+v", marks, views, want)
	}
}

// NewsletterMarkViewed ignores ctx while it waits for the server: the
// Session stops waiting at the deadline, and bounds how many such calls may
// linger.
func TestChannelViewIsBounded(t *testing.T) {
	s, fc, _ := newSession(t, bwm.WithMaxPendingChannelViews(1))
	block := make(chan struct{})
	fc.set(func(f *fakeClient) { f.viewBlock = block })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := s.SendReceipt(ctx, rcpt(channel, "", session.ReceiptRead, "1")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first view: %v, want deadline exceeded", err)
	}
	// The first call still holds the only slot: the second waits for it
	// within its own deadline.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if _, err := s.SendReceipt(ctx2, rcpt(channel, "", session.ReceiptRead, "2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second view: %v, want deadline exceeded", err)
	}
	close(block) // the server answers: the slot frees
	fc.set(func(f *fakeClient) { f.viewBlock = nil })
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx3, cancel3 := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := s.SendReceipt(ctx3, rcpt(channel, "", session.ReceiptRead, "3"))
		cancel3()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("third view still failing: %v", err)
		}
	}
}

func TestIndex(t *testing.T) {
	s, fc, dev := newSession(t)
	ctx := context.Background()
	msg := func(src types.MessageSource, id string, m *waE2E.Message) *events.Message {
		if m == nil {
			m = &waE2E.Message{Conversation: proto.String("hi")}
		}
		return &events.Message{Info: types.MessageInfo{MessageSource: src, ID: id, Timestamp: ts}, Message: m}
	}
	lidMember := jid("987654321098765@lid")
	// A direct chat addressed by LID, whose phone number WhatsApp also told.
	fc.emit(msg(types.MessageSource{Chat: jid(dmLID), Sender: jid(dmLID), SenderAlt: jid(dm)}, "D1", nil))
	fc.emit(msg(types.MessageSource{Chat: jid(dmLID), Sender: *dev.ID, IsFromMe: true, RecipientAlt: jid(dm)}, "D2", nil))
	fc.emit(msg(types.MessageSource{Chat: jid(dmLID), Sender: types.JID{User: "123456789012345", Device: 3, Server: types.HiddenUserServer}, SenderAlt: jid(dm)}, "D3",
		&waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true)}}))
	// A group addressed by LID.
	fc.emit(msg(types.MessageSource{Chat: jid(grp), Sender: lidMember, SenderAlt: jid(member), IsGroup: true, AddressingMode: types.AddressingModeLID}, "G1", nil))

	for _, tc := range []struct {
		chat, id string
		want     session.Message
	}{
		{dmLID, "D1", session.Message{Chat: dmLID, ID: "D1", Sender: dmLID, Timestamp: ts}},
		{dm, "D1", session.Message{Chat: dm, ID: "D1", Sender: dmLID, Timestamp: ts}}, // by the phone number too
		{dm, "D2", session.Message{Chat: dm, ID: "D2", Sender: ownJID.ToNonAD().String(), FromMe: true, Timestamp: ts}},
		{dm, "D3", session.Message{Chat: dm, ID: "D3", Sender: dmLID, Timestamp: ts}}, // device suffix dropped
		{grp, "G1", session.Message{Chat: grp, ID: "G1", Sender: lidMember.String(), Timestamp: ts}},
	} {
		got, err := s.ResolveMessage(ctx, tc.chat, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("ResolveMessage(%s, %s) = %+v, %v; want %+v", tc.chat, tc.id, got, err, tc.want)
		}
	}
	if _, err := s.ResolveMessage(ctx, dm, "nope"); !errors.Is(err, session.ErrMessageNotFound) {
		t.Errorf("unknown message: %v", err)
	}

	unread, _ := s.UnreadMessages(ctx, dm, 10)
	if ids := messageIDs(unread); !reflect.DeepEqual(ids, []string{"D1", "D3"}) {
		t.Errorf("unread = %v, want D1 D3 (D2 is our own)", ids)
	}
	if unread, _ := s.UnreadMessages(ctx, dm, 1); !reflect.DeepEqual(messageIDs(unread), []string{"D3"}) {
		t.Errorf("unread limit 1 = %v, want the newest, D3", messageIDs(unread))
	}
	// A receipt sent through the Session marks them read.
	if _, err := s.SendReceipt(ctx, rcpt(dm, "", session.ReceiptRead, "D1")); err != nil {
		t.Fatal(err)
	}
	if unread, _ := s.UnreadMessages(ctx, dm, 10); !reflect.DeepEqual(messageIDs(unread), []string{"D3"}) {
		t.Errorf("after a receipt for D1: unread = %v", messageIDs(unread))
	}
	// Reading on another of the account's devices does too.
	fc.emit(&events.Receipt{MessageSource: types.MessageSource{Chat: jid(dmLID), Sender: *dev.ID, IsFromMe: true},
		MessageIDs: []string{"D3"}, Type: types.ReceiptTypeRead})
	if unread, _ := s.UnreadMessages(ctx, dmLID, 10); len(unread) != 0 {
		t.Errorf("after reading on another device: unread = %v", messageIDs(unread))
	}

	// In the LID-addressed group, a phone-number sender is sent as its LID.
	if err := dev.LIDs.PutLIDMapping(ctx, lidMember, jid(member)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendReceipt(ctx, rcpt(grp, member, session.ReceiptRead, "G1")); err != nil {
		t.Fatal(err)
	}
	marks, _, _ := fc.recorded()
	if got := marks[len(marks)-1].sender; got != lidMember {
		t.Errorf("group receipt sender = %s, want the LID %s", got, lidMember)
	}
}

func messageIDs(ms []session.Message) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestIndexIsBounded(t *testing.T) {
	s, fc, _ := newSession(t, bwm.WithIndexSize(3))
	for i := range 5 {
		fc.emit(&events.Message{Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: jid(dm), Sender: jid(dm)}, ID: fmt.Sprintf("M%d", i), Timestamp: ts,
		}, Message: &waE2E.Message{Conversation: proto.String("hi")}})
	}
	for i := range 5 {
		_, err := s.ResolveMessage(context.Background(), dm, fmt.Sprintf("M%d", i))
		if known := err == nil; known != (i >= 2) {
			t.Errorf("M%d known = %v, want %v", i, known, i >= 2)
		}
	}
	off, fc2, _ := newSession(t, bwm.WithIndexSize(0))
	fc2.emit(&events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: jid(dm), Sender: jid(dm)}, ID: "X"}})
	if _, err := off.ResolveMessage(context.Background(), dm, "X"); !errors.Is(err, session.ErrMessageNotFound) {
		t.Errorf("index off: %v", err)
	}
}

func TestMarkChatReadNow(t *testing.T) {
	ctx := context.Background()
	t.Run("group", func(t *testing.T) {
		s, fc, _ := newSession(t)
		if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: grp, LastMessageID: "G9", LastSender: member, Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
		_, _, patches := fc.recorded()
		if len(patches) != 1 || len(patches[0].Mutations) != 1 {
			t.Fatalf("patches = %+v", patches)
		}
		mut := patches[0].Mutations[0]
		action := mut.Value.GetMarkChatAsReadAction()
		if !reflect.DeepEqual(mut.Index, []string{"markChatAsRead", grp}) || !action.GetRead() ||
			action.GetMessageRange().GetLastMessageTimestamp() != ts.Unix() ||
			action.GetMessageRange().GetMessages()[0].GetKey().GetID() != "G9" {
			t.Errorf("mutation = %+v", mut)
		}
		if fc.keys[0] != (msgKey{jid(grp), jid(member), "G9"}) {
			t.Errorf("BuildMessageKey(%+v)", fc.keys[0])
		}
	})
	t.Run("direct chat: the other party sent the message", func(t *testing.T) {
		s, fc, _ := newSession(t)
		if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: dm, LastMessageID: "D9", Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
		if fc.keys[0] != (msgKey{jid(dm), jid(dm), "D9"}) {
			t.Errorf("BuildMessageKey(%+v)", fc.keys[0])
		}
	})
	for _, tc := range []struct {
		name   string
		opts   []bwm.Option
		paired bool
		setup  func(*fakeClient)
		chat   string
		want   error
	}{
		{"off", []bwm.Option{bwm.WithMarkChatRead(false)}, true, nil, dm, errors.ErrUnsupported},
		{"channel", nil, true, nil, channel, errors.ErrUnsupported},
		{"never paired (whatsmeow would panic)", nil, false, nil, dm, session.ErrNotLoggedIn},
		{"not connected", nil, true, func(f *fakeClient) { f.connected = false }, dm, session.ErrNotConnected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeClient()
			if tc.setup != nil {
				fc.set(tc.setup)
			}
			s := mustNew(t, fc, newDevice(t, tc.paired), tc.opts...)
			defer s.Close()
			if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: tc.chat, LastMessageID: "X", Timestamp: ts}); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if _, _, patches := fc.recorded(); len(patches) != 0 {
				t.Errorf("sent %+v", patches)
			}
		})
	}
	t.Run("no last message: up to the newest known, or not found", func(t *testing.T) {
		s, fc, _ := newSession(t)
		if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: dm}); !errors.Is(err, session.ErrMessageNotFound) {
			t.Errorf("unknown chat: err = %v, want ErrMessageNotFound", err)
		}
		if _, _, patches := fc.recorded(); len(patches) != 0 {
			t.Errorf("sent %+v for a chat it knows nothing of", patches)
		}
		fc.emit(&events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: jid(dm), Sender: jid(dm)}, ID: "D7", Timestamp: ts},
			Message: &waE2E.Message{Conversation: proto.String("hi")}})
		if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: dm}); err != nil {
			t.Fatal(err)
		}
		if fc.keys[0] != (msgKey{jid(dm), jid(dm), "D7"}) {
			t.Errorf("BuildMessageKey(%+v)", fc.keys[0])
		}
	})
	t.Run("a panic in whatsmeow is an error", func(t *testing.T) {
		s, fc, _ := newSession(t)
		fc.set(func(f *fakeClient) { f.appPanic = true })
		if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: dm, LastMessageID: "X"}); err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no app-state keys yet", func(t *testing.T) {
		s, fc, _ := newSession(t)
		fc.set(func(f *fakeClient) { f.appErr = errors.New("no app state keys found") })
		if err := s.MarkChatReadNow(ctx, session.ChatRead{Chat: dm, LastMessageID: "X"}); err == nil {
			t.Error("err = nil")
		}
	})
}

func TestPrivacyWarmedOnConnect(t *testing.T) {
	fc := newFakeClient()
	fc.set(func(f *fakeClient) { f.loggedIn = false })
	s := mustNew(t, fc, newDevice(t, true))
	defer s.Close()
	fc.emit(&events.Connected{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		fc.mu.Lock()
		n := fc.privacyN
		fc.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("privacy settings not fetched after Connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatus(t *testing.T) {
	s, fc, _ := newSession(t)
	want := session.Status{Connected: true, LoggedIn: true, Paired: true, JID: "15550000001@s.whatsapp.net"}
	if got := s.Status(context.Background()); got != want {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
	fc.set(func(f *fakeClient) { f.connected, f.loggedIn = false, false })
	if got := s.Status(context.Background()); got.Connected || got.LoggedIn || !got.Paired {
		t.Errorf("disconnected Status = %+v", got)
	}
	unpaired := mustNew(t, newFakeClient(), newDevice(t, false))
	defer unpaired.Close()
	if got := unpaired.Status(context.Background()); got.Paired || got.JID != "" {
		t.Errorf("unpaired Status = %+v", got)
	}
}

// mustNew is bwm.New for options known to be good, with the defaults of a
// Manager's sessions (AsManaged), which most tests were written for.
func mustNew(t testing.TB, c bwm.Client, dev *store.Device, opts ...bwm.Option) *bwm.Session {
	t.Helper()
	s, err := bwm.New(c, dev, append([]bwm.Option{bwm.AsManaged()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Options with bad values are errors, never clamped silently.
func TestBadOptions(t *testing.T) {
	for name, opt := range map[string]bwm.Option{
		"negative index":      bwm.WithIndexSize(-1),
		"no chat-read window": bwm.WithChatReadWindow(0),
		"no view slot":        bwm.WithMaxPendingChannelViews(0),
		"nil logger":          bwm.WithLogger(nil),
	} {
		if _, err := bwm.New(newFakeClient(), newDevice(t, true), opt); err == nil {
			t.Errorf("%s: accepted by New", name)
		}
		if _, err := bwm.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), opt); err == nil {
			t.Errorf("%s: accepted by Open", name)
		}
	}
	// Good values, for a Manager: New, which runs none, refuses them.
	for name, opt := range map[string]bwm.Option{
		"pool":       bwm.WithDBPool(bwm.DBPool{MaxOpen: 4}),
		"hook":       bwm.WithClientHook(func(string, *whatsmeow.Client) {}),
		"pair retry": bwm.WithPairRetry(time.Second, time.Minute),
		"observer":   bwm.WithSessionObserver(func(bwm.SessionEvent) {}),
		"cache":      bwm.WithIndexCache(10),
	} {
		_, err := bwm.New(newFakeClient(), newDevice(t, true), bwm.WithIndexSize(5), opt)
		if err == nil || !strings.Contains(err.Error(), "give it to Open") {
			t.Errorf("%s: New answered %v, want an error saying it is Open's", name, err)
		}
	}
	for name, opt := range map[string]bwm.Option{
		"nil hook":               bwm.WithClientHook(nil),
		"no pair retry":          bwm.WithPairRetry(0, time.Second),
		"pair retry max < first": bwm.WithPairRetry(2*time.Second, time.Second),
	} {
		if _, err := bwm.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), opt); err == nil {
			t.Errorf("%s: accepted by Open", name)
		}
	}
}

// A receipt whose ids arrived in different forms of the chat goes out as
// one MarkRead per form, each with its ids in the request's order, the
// first form first; the request's ids are left as they were.
func TestSendReceiptSplitsByAddress(t *testing.T) {
	s, fc, _ := newSession(t)
	ctx := context.Background()
	for _, id := range []string{"L1", "L2"} { // arrived by LID
		fc.emit(&events.Message{Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: jid(dmLID), Sender: jid(dmLID), SenderAlt: jid(dm)}, ID: id, Timestamp: ts,
		}, Message: &waE2E.Message{Conversation: proto.String("hi")}})
	}
	for _, tc := range []struct {
		ids  []string
		want []markRead // ids, chat
	}{
		{[]string{"U1"}, []markRead{{ids: []string{"U1"}, chat: jid(dm)}}},
		{[]string{"U1", "U2"}, []markRead{{ids: []string{"U1", "U2"}, chat: jid(dm)}}},
		{[]string{"L1"}, []markRead{{ids: []string{"L1"}, chat: jid(dmLID)}}},
		{[]string{"U1", "L1", "U2", "L2", "U3"}, []markRead{
			{ids: []string{"U1", "U2", "U3"}, chat: jid(dm)}, {ids: []string{"L1", "L2"}, chat: jid(dmLID)}}},
		{[]string{"L1", "L2", "U1", "U2"}, []markRead{
			{ids: []string{"L1", "L2"}, chat: jid(dmLID)}, {ids: []string{"U1", "U2"}, chat: jid(dm)}}},
	} {
		before, _, _ := fc.recorded()
		r := rcpt(dm, "", session.ReceiptPlayed, tc.ids...) // played: L1 and L2 stay unread
		asked := slices.Clone(r.MessageIDs)
		if _, err := s.SendReceipt(ctx, r); err != nil {
			t.Fatal(err)
		}
		after, _, _ := fc.recorded()
		var got []markRead
		for _, m := range after[len(before):] {
			got = append(got, markRead{ids: m.ids, chat: m.chat})
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("receipt for %q: MarkRead calls %+v, want %+v", tc.ids, got, tc.want)
		}
		if !slices.Equal(r.MessageIDs, asked) {
			t.Errorf("receipt for %q: its ids became %q", asked, r.MessageIDs)
		}
	}
}
