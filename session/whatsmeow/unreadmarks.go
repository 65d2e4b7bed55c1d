package whatsmeow

import (
	"context"
	"sync"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// maxUnreadMarks bounds the chats a [Session] remembers as marked unread; a
// mark beyond it is not remembered (logged): its chat then gets no
// app-state patch when read, as for any other chat.
const maxUnreadMarks = 10_000

// unreadMarks remembers the chats the account's owner marked unread ("mark
// as unread" on the phone or another device): WhatsApp Web sends a
// markChatAsRead app-state patch only for such chats — every other chat is
// marked read on the account's other devices by the read receipts alone.
// A mark comes from app state (events.MarkChatAsRead with read false, set;
// read true, cleared — also the echo of the Session's own patch) and from
// history syncs (a conversation's markedAsUnread); it is kept in the form
// WhatsApp named the chat (its LID or phone number).
//
// A [Manager]'s sessions keep their marks in the store
// (bluetick_marked_unread, written by the message index's writer), loaded
// on first use; a Session made by [New] alone keeps them in memory. It is
// safe for concurrent use.
type unreadMarks struct {
	mu     sync.Mutex
	chats  map[string]struct{}
	loaded bool // chats holds what the store holds (always, without a store)
	full   bool // "too many marks" was logged
}

// noteMarkEvent records what evt, an event of whatsmeow's dispatch, says
// of chats marked unread.
func (s *Session) noteMarkEvent(evt any) {
	switch e := evt.(type) {
	case *events.MarkChatAsRead:
		s.setUnreadMark(e.JID.ToNonAD().String(), !e.Action.GetRead())
	case *events.HistorySync:
		for _, conv := range e.Data.GetConversations() {
			if !conv.GetMarkedAsUnread() {
				continue
			}
			if chat, err := types.ParseJID(conv.GetID()); err == nil {
				s.setUnreadMark(chat.ToNonAD().String(), true)
			}
		}
	}
}

// setUnreadMark records that chat is marked unread (on) or no longer.
func (s *Session) setUnreadMark(chat string, on bool) {
	um := &s.unreadMarks
	um.mu.Lock()
	defer um.mu.Unlock()
	_, had := um.chats[chat]
	switch {
	case on && !had && len(um.chats) >= maxUnreadMarks:
		if !um.full {
			um.full = true
			s.opts.logger.Warn("too many chats marked unread to remember; not remembering more", "chat", chat)
		}
		return
	case on && !had:
		if um.chats == nil {
			um.chats = make(map[string]struct{})
		}
		um.chats[chat] = struct{}{}
	case !on && had:
		delete(um.chats, chat)
	case um.loaded:
		return // nothing changes
	}
	// Until loaded, the store may hold what memory does not: write anyway.
	s.index.markUnread(chat, on)
}

// markedUnread returns the first of chats that is marked unread, or ""; with
// no chats, whether any chat is ("*" or ""). Without marks (the common case)
// it costs a look at an empty map; the first call of a Manager's session
// loads the marks from the store.
func (s *Session) markedUnread(ctx context.Context, chats ...string) (string, error) {
	um := &s.unreadMarks
	um.mu.Lock()
	defer um.mu.Unlock()
	if !um.loaded {
		stored, ok, err := s.index.unreadMarks(ctx)
		if err != nil {
			return "", err
		}
		if ok {
			// Marks noted since the Session started were queued before
			// the load, which waits for the writer: the store has them.
			um.chats = make(map[string]struct{}, len(stored))
			for _, c := range stored {
				um.chats[c] = struct{}{}
			}
		}
		um.loaded = true
	}
	switch {
	case len(um.chats) == 0:
		return "", nil
	case len(chats) == 0:
		return "*", nil
	}
	for _, c := range chats {
		if _, ok := um.chats[c]; ok && c != "" {
			return c, nil
		}
	}
	return "", nil
}

// otherForm returns the other form of a direct chat's JID (its LID for a
// phone number, and the reverse) as whatsmeow's LID map knows it, or "".
func (s *Session) otherForm(ctx context.Context, chat types.JID) string {
	if s.device.LIDs == nil {
		return ""
	}
	var (
		other types.JID
		err   error
	)
	switch chat.Server {
	case types.DefaultUserServer:
		other, err = s.device.LIDs.GetLIDForPN(ctx, chat)
	case types.HiddenUserServer:
		other, err = s.device.LIDs.GetPNForLID(ctx, chat)
	default:
		return ""
	}
	if err != nil || other.IsEmpty() {
		return ""
	}
	return other.ToNonAD().String()
}

// markUnread queues recording, in the store, that chat is marked unread
// or no longer; without a store it does nothing.
func (x *messages) markUnread(chat string, on bool) {
	if d := x.deviceKey(); d != "" {
		x.store.markUnread(d, chat, on)
	}
}

// unreadMarks returns the chats marked unread in the store; ok is false
// without one (or before pairing).
func (x *messages) unreadMarks(ctx context.Context) (chats []string, ok bool, err error) {
	d := x.deviceKey()
	if d == "" {
		return nil, false, nil
	}
	chats, err = x.store.markedUnread(ctx, d)
	return chats, err == nil, err
}
