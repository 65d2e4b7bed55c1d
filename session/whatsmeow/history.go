package whatsmeow

import (
	"slices"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// historyReadTail is how many of a conversation's newest messages a history
// sync indexes beyond its unread ones: enough to know the chat (its newest
// message, for the "mark chat read" patch), its group's addressing, and
// the senders of the messages a client may still name.
const historyReadTail = 20

// indexHistory indexes what a history sync tells of each conversation: its
// unread tail — the newest UnreadCount incoming messages, which WhatsApp
// counts as unread — and the historyReadTail newest messages beyond, marked
// read. History syncs are the only way to learn what is unread after
// pairing, or what arrived while no client was connected.
//
// Only a chunk that holds each conversation's newest messages can say which
// are unread (see tellsUnread). The others carry older history, where the
// conversation's unread count says nothing of the messages the chunk holds:
// their messages are indexed read, and only if the index does not know
// them yet (a message it knows keeps what it knows, its read mark first).
//
// Messages come through whatsmeow's ParseWebMessage, as live ones do
// through its decryption; what readable rejects (reactions, edits,
// protocol and system messages) is neither indexed nor counted, nor is an
// edit that ParseWebMessage has made look like a message (see
// parseHistoryMessage).
func (s *Session) indexHistory(e *events.HistorySync) {
	var batch []indexed
	newest := tellsUnread(e.Data.GetSyncType())
	for _, conv := range e.Data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil || chat.Server == types.BroadcastServer {
			continue
		}
		var evts []*events.Message
		for _, hm := range conv.GetMessages() {
			if evt, ok := s.parseHistoryMessage(chat, hm.GetMessage()); ok && readable(evt) {
				evts = append(evts, evt)
			}
		}
		// Newest first, whatever order the sync used.
		slices.SortStableFunc(evts, func(a, b *events.Message) int { return b.Info.Timestamp.Compare(a.Info.Timestamp) })
		unread := 0
		if newest {
			unread = int(conv.GetUnreadCount())
		}
		keep := unread + historyReadTail
		alt := historyChatAlt(chat, conv.GetPnJID(), conv.GetLidJID())
		var conversation []indexed
		for _, evt := range evts {
			if len(conversation) >= keep {
				break
			}
			m := indexedFrom(evt)
			m.chatAlt, m.olderHistory = alt, !newest
			if m.lidGroup = evt.Info.IsGroup && evt.Info.Sender.Server == types.HiddenUserServer; !m.fromMe {
				m.read = unread <= 0
				unread--
			}
			conversation = append(conversation, m)
		}
		slices.Reverse(conversation) // oldest first, as they arrived
		batch = append(batch, conversation...)
	}
	if len(batch) > 0 {
		s.index.addHistory(batch)
	}
}

// parseHistoryMessage parses wm, a message of chat in a history sync, with
// whatsmeow's ParseWebMessage, and reports false for what is not a message
// of its own: one that does not parse, and an edit. ParseWebMessage turns a
// MESSAGE_EDIT protocol message into the edited content under the original
// message's id and flags nothing (neither IsEdit nor Info.Edit): only the
// id, no longer the one of wm's key, tells. Taken for a message, the edit
// would be counted as the original, newer, and take an unread place.
func (s *Session) parseHistoryMessage(chat types.JID, wm *waWeb.WebMessageInfo) (*events.Message, bool) {
	evt, err := s.client.ParseWebMessage(chat, wm)
	if err != nil || evt.Info.ID != wm.GetKey().GetID() {
		return nil, false
	}
	return evt, true
}

// tellsUnread reports whether a history sync of type t holds its
// conversations' newest messages, to which their unread counts refer: the
// initial bootstrap after pairing and the recent messages. Full history and
// on-demand chunks (what the phone sends of older history) do not.
func tellsUnread(t waHistorySync.HistorySync_HistorySyncType) bool {
	return t == waHistorySync.HistorySync_INITIAL_BOOTSTRAP || t == waHistorySync.HistorySync_RECENT
}

// historyChatAlt returns the other form of a direct chat's JID from its
// conversation's phone-number and LID JIDs, or "".
func historyChatAlt(chat types.JID, pn, lid string) string {
	var other string
	switch chat.Server {
	case types.DefaultUserServer:
		other = lid
	case types.HiddenUserServer:
		other = pn
	}
	if other == "" {
		return ""
	}
	j, err := types.ParseJID(other)
	if err != nil || j.ToNonAD() == chat.ToNonAD() {
		return ""
	}
	return j.ToNonAD().String()
}
