package whatsmeow_test

// Wire tests of add-ons, messages about another message that WhatsApp Web
// marks read with it: never indexed as messages of their own.

import (
	"bytes"
	"context"
	"testing"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/session"
)

// In an announcement group, posts and comments on them: one that came in a
// history sync (a message with CommentMetadata), and two live, as they
// arrive (EncCommentMessage, encrypted with the post's secret) and
// decrypted (CommentMessage). Comments are add-ons of their post, like
// reactions (WhatsApp Web's WAWebMarkAddOnsAsReadAction): the chat's newest
// message is the last post, which the "mark chat read" patch names, and a
// chat-only request reads the posts alone.
//
// Before: the patch named the newest comment (3EB0COMMENT2, 15557654329),
// and the chat-only request read the history comment in place of the older
// post, and the live comments:
// <receipt id="3EB0POST" participant="15557654321@s.whatsapp.net" t="…" to="120363012345678901@g.us" type="read"/>
// <receipt id="3EB0COMMENT0" participant="15557654329@s.whatsapp.net" t="…" to="120363012345678901@g.us" type="read"><list><item id="3EB0COMMENT1"/><item id="3EB0COMMENT2"/></list></receipt>
func TestWireCommentsAreAddOns(t *testing.T) {
	const commenter = "15557654329@s.whatsapp.net"
	forEachIndex(t, func(t *testing.T, w *wire, chatOnly chatOnlyFunc) {
		ctx := context.Background()
		postKey := func(id string) *waCommon.MessageKey {
			return &waCommon.MessageKey{RemoteJID: proto.String(grp), FromMe: proto.Bool(false), ID: proto.String(id), Participant: proto.String(member)}
		}
		comment := webMsg(grp, "3EB0COMMENT0", commenter, false, 1767225490)
		comment.Message.CommentMetadata = &waWeb.CommentMetadata{CommentParentKey: postKey("3EB0POST0")}
		historySync(t, w, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(grp), UnreadCount: proto.Uint32(1), Messages: []*waHistorySync.HistorySyncMsg{
					comment,
					webMsg(grp, "3EB0POST0", member, false, 1767225480),
				}},
			},
		})
		w.deliver(t, text("news"), "from", grp, "participant", member, "id", "3EB0POST", "t", "1767225500")
		w.deliver(t, &waE2E.Message{EncCommentMessage: &waE2E.EncCommentMessage{
			TargetMessageKey: postKey("3EB0POST"), EncPayload: []byte("ciphertext"), EncIV: bytes.Repeat([]byte{1}, 12),
		}}, "from", grp, "participant", commenter, "id", "3EB0COMMENT1", "t", "1767225510")
		w.deliver(t, &waE2E.Message{CommentMessage: &waE2E.CommentMessage{
			Message: text("thanks"), TargetMessageKey: postKey("3EB0POST"),
		}}, "from", grp, "participant", commenter, "id", "3EB0COMMENT2", "t", "1767225520")

		w.shareAppStateKey(t)
		if err := w.session.MarkChatReadNow(ctx, session.ChatRead{Chat: grp}); err != nil {
			t.Fatal(err)
		}
		sameLines(t, "patches", chatReadPatches(t, w),
			"markChatAsRead 120363012345678901@g.us read=true last=1767225500 key={120363012345678901@g.us 3EB0POST fromMe=false participant=15557654321@s.whatsapp.net} t=1767225500")
		sameLines(t, "receipts", chatOnly(t, grp),
			`<receipt id="3EB0POST0" participant="15557654321@s.whatsapp.net" t="…" to="120363012345678901@g.us" type="read"><list><item id="3EB0POST"/></list></receipt>`)
	})
}
