package whatsmeow_test

import (
	"context"
	"reflect"
	"testing"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// A Session made by New indexes a history sync too: per
// conversation, the newest UnreadCount incoming messages as unread, older
// ones as read (within the tail kept), not what WhatsApp does not mark
// read (a reaction, a system message without content); a LID sender makes
// the group LID-addressed; a direct chat is found by its other JID form.
func TestIndexHistorySync(t *testing.T) {
	s, fc, _ := newSession(t)
	ctx := context.Background()
	msg := func(chat, id, participant string, fromMe bool, ts uint64, m *waE2E.Message) *waHistorySync.HistorySyncMsg {
		key := &waCommon.MessageKey{RemoteJID: proto.String(chat), FromMe: proto.Bool(fromMe), ID: proto.String(id)}
		if participant != "" {
			key.Participant = proto.String(participant)
		}
		return &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{Key: key, MessageTimestamp: proto.Uint64(ts), Message: m}}
	}
	hi := &waE2E.Message{Conversation: proto.String("hi")}
	react := &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍")}}
	const lidMember = "987654321098765@lid"
	fc.emit(&events.HistorySync{Data: &waHistorySync.HistorySync{Conversations: []*waHistorySync.Conversation{
		{ID: proto.String(dmLID), PnJID: proto.String(dm), UnreadCount: proto.Uint32(2), Messages: []*waHistorySync.HistorySyncMsg{
			msg(dmLID, "H1", "", false, 100, hi),
			msg(dmLID, "H5", "", false, 500, react),
			msg(dmLID, "H4", "", false, 400, hi),
			msg(dmLID, "H3", "", true, 300, hi),
			msg(dmLID, "H2", "", false, 200, hi),
			msg(dmLID, "H0", "", false, 50, nil), // a system message: no content
		}},
		{ID: proto.String(grp), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
			msg(grp, "G1", lidMember, false, 100, hi),
		}},
	}}})
	unread, err := s.UnreadMessages(ctx, dm, 10)
	if err != nil || !reflect.DeepEqual(messageIDs(unread), []string{"H2", "H4"}) {
		t.Errorf("unread = %v, %v; want H2 H4", messageIDs(unread), err)
	}
	if m, err := s.ResolveMessage(ctx, dm, "H1"); err != nil || m.Sender != dmLID {
		t.Errorf("H1 (read, kept) = %+v, %v", m, err)
	}
	if _, err := s.ResolveMessage(ctx, dm, "H5"); err == nil {
		t.Error("the reaction was indexed")
	}
	if m, err := s.ResolveMessage(ctx, grp, "G1"); err != nil || m.Sender != lidMember {
		t.Errorf("G1 = %+v, %v", m, err)
	}
}
