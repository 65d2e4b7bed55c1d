package whatsmeow

import (
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
)

// Defaults of [AutoRead].
const (
	defaultAutoReadMinDelay = 3 * time.Second
	defaultAutoReadMaxDelay = 30 * time.Second
	// defaultAutoReadPhoneIdle is how long after the account was last
	// active on another device (a message sent, reacted to, edited or
	// deleted there, a chat read, archived, pinned …) auto-read waits
	// before it marks messages read again.
	defaultAutoReadPhoneIdle = 5 * time.Minute
	// autoReadCharTime is the reading time per character of a text (about
	// 200 words a minute).
	autoReadCharTime = 60 * time.Millisecond
)

// AutoRead configures auto-read (see [WithAutoRead]): which incoming
// messages a [Session] offers to be marked read by itself, and when. The
// zero value holds the defaults.
type AutoRead struct {
	// MinDelay and MaxDelay bound the delay from a message's arrival to
	// its receipt: MinDelay, plus up to half the window drawn at random,
	// plus the time to read its text (60 ms a character), at most
	// MaxDelay — a longer message is read later. Default:
	// 3 s and 30 s.
	MinDelay, MaxDelay time.Duration
	// Chats, when not empty, limits auto-read to these chats (JIDs as
	// package validate normalises them, either form of a direct chat).
	// Default: every direct chat.
	Chats []string
	// Groups includes group chats. Default: off. Channels and status
	// updates are never auto-read.
	Groups bool
	// PhoneIdle: no message is offered while the account was active on
	// another device within this time — the person is there and reads for
	// themselves. Activity is what the person does there: a message sent,
	// a reaction, an edit, a deletion, a poll vote; a chat read or a voice
	// note played (a read or played receipt from the account); a chat
	// marked read or unread, archived, pinned, muted, cleared or deleted, a
	// message starred or deleted for them, a label applied (app-state
	// changes from another device, not those of a full sync, nor the
	// Session's own "mark chat read" patches). Each counts from its own
	// time — the message's, the receipt's, the change's, at most now — so
	// that what the phone did long ago and arrives late (after the client
	// was offline) does not pause auto-read, and an older event never
	// moves a later one back. Default: 5 min;
	// negative: always offer.
	PhoneIdle time.Duration

	// rand returns a number in [0, 1) for each delay: math/rand/v2's
	// Float64 (the package's tests fix it).
	rand func() float64
}

// WithAutoRead makes the [Session] offer its incoming messages for
// auto-read as a [AutoRead] says, to whoever subscribed (see
// [Session.OnArrival], [Manager.SubscribeArrivals], and
// seenhandler/queue's Options.Arrivals, which sends them through the
// handler's path).
// Only readable messages from others are offered (not reactions, edits,
// protocol messages, the account's own), and a chat once until its offer is
// due: messages arriving meanwhile join it — the chat is read then, as
// WhatsApp Web reads a chat when it is opened (seenhandler reads every
// still-unread message of the chat when the offer is due). Default: off.
func WithAutoRead(a AutoRead) Option {
	return func(o *options) error {
		if a.MinDelay == 0 && a.MaxDelay == 0 {
			a.MinDelay, a.MaxDelay = defaultAutoReadMinDelay, defaultAutoReadMaxDelay
		}
		if a.MinDelay < 0 || a.MaxDelay < a.MinDelay {
			return errors.New("whatsmeow: WithAutoRead: need 0 <= MinDelay <= MaxDelay")
		}
		if a.PhoneIdle == 0 {
			a.PhoneIdle = defaultAutoReadPhoneIdle
		}
		if a.rand == nil {
			a.rand = rand.Float64
		}
		a.Chats = slices.Clone(a.Chats)
		o.autoRead = &a
		return nil
	}
}

// arrivals holds the subscribers of a [Session]'s arrivals, and what
// decides whether the account is active on another device.
type arrivals struct {
	mu          sync.Mutex
	subs        map[int]func(session.Arrival)
	next        int
	phoneActive time.Time // the account's last activity on another device
	// ownPatches are the stamps (Unix ms) of the Session's last app-state
	// patches, oldest first: whatsmeow dispatches a patch's mutations back
	// as events once it has sent it, stamped so (see sendAppState).
	ownPatches []int64
	// due holds, by chat, when the chat's offered arrival is due: a
	// message arriving before then joins it (the chat is read then, as
	// WhatsApp Web reads a chat when it is opened), and is not offered.
	due map[string]time.Time
}

// ownPatchesKept is how many of its app-state patches' stamps a Session
// remembers: whatsmeow dispatches a patch back right after sending it, and
// a Session sends at most a patch a window.
const ownPatchesKept = 16

// OnArrival calls f for each incoming message offered for auto-read (see
// [WithAutoRead]), from whatsmeow's event dispatch, until stop is called:
// f must not block.
func (s *Session) OnArrival(f func(session.Arrival)) (stop func()) {
	a := &s.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subs == nil {
		a.subs = make(map[int]func(session.Arrival))
	}
	id := a.next
	a.next++
	a.subs[id] = f
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.subs, id)
	}
}

// noteActivity notes, from evt, when the account was last active on
// another device: see AutoRead.PhoneIdle for what counts.
func (s *Session) noteActivity(evt any) {
	if s.opts.autoRead == nil {
		return // nobody asks
	}
	var at time.Time
	switch e := evt.(type) {
	case *events.Message:
		if !e.Info.IsFromMe || !readable(e) && !personAction(e) {
			return
		}
		at = e.Info.Timestamp
	case *events.Receipt:
		if !e.IsFromMe || !readOrPlayed(e.Type) {
			return
		}
		at = e.Timestamp
	default:
		var ok bool
		if at, ok = appStateAction(evt); !ok || s.ownPatch(at) {
			return
		}
	}
	s.phoneActive(at)
}

// personAction reports whether e, a message readable rejects, is something
// the person did to a message: a reaction, an edit, a deletion (revoke), a
// poll vote, an event response, a pin or keep-in-chat. Other protocol
// messages (history sync notifications, app-state key shares …) are what
// the account's devices exchange by themselves.
func personAction(e *events.Message) bool {
	m := e.Message
	if m == nil {
		return false
	}
	switch {
	case e.IsEdit, e.Info.Edit != types.EditAttributeEmpty,
		m.GetReactionMessage() != nil, m.GetEncReactionMessage() != nil,
		m.GetPollUpdateMessage() != nil, m.GetEncEventResponseMessage() != nil,
		m.GetPinInChatMessage() != nil, m.GetKeepInChatMessage() != nil:
		return true
	}
	pm := m.GetProtocolMessage()
	return pm != nil && pm.Type != nil &&
		(pm.GetType() == waE2E.ProtocolMessage_REVOKE || pm.GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT)
}

// appStateAction returns when the account changed a chat or message on
// another device, for the app-state events whatsmeow dispatches as that
// device's patches arrive; ok is false for other events and for those of a
// full sync (the state as it is, not something done now). Contacts and
// settings are left out: the phone syncs its address book by itself.
func appStateAction(evt any) (at time.Time, ok bool) {
	switch e := evt.(type) {
	case *events.MarkChatAsRead:
		return e.Timestamp, !e.FromFullSync
	case *events.Archive:
		return e.Timestamp, !e.FromFullSync
	case *events.Pin:
		return e.Timestamp, !e.FromFullSync
	case *events.Mute:
		return e.Timestamp, !e.FromFullSync
	case *events.Star:
		return e.Timestamp, !e.FromFullSync
	case *events.DeleteForMe:
		return e.Timestamp, !e.FromFullSync
	case *events.ClearChat:
		return e.Timestamp, !e.FromFullSync
	case *events.DeleteChat:
		return e.Timestamp, !e.FromFullSync
	case *events.LabelAssociationChat:
		return e.Timestamp, !e.FromFullSync
	case *events.LabelAssociationMessage:
		return e.Timestamp, !e.FromFullSync
	}
	return time.Time{}, false
}

// phoneActive notes that the account was active on another device at at:
// now when at is zero or later (a clock ahead of ours must not pause
// auto-read longer); an earlier time than the one noted changes nothing.
func (s *Session) phoneActive(at time.Time) {
	if now := time.Now(); at.IsZero() || at.After(now) {
		at = now
	}
	a := &s.arrivals
	a.mu.Lock()
	if at.After(a.phoneActive) {
		a.phoneActive = at
	}
	a.mu.Unlock()
}

// stampPatch returns the time to stamp a patch of the Session's own with
// (now) and remembers it, so that ownPatch knows it when whatsmeow
// dispatches the patch back.
func (s *Session) stampPatch() time.Time {
	at := time.Now()
	a := &s.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ownPatches) == ownPatchesKept {
		a.ownPatches = append(a.ownPatches[:0], a.ownPatches[1:]...)
	}
	a.ownPatches = append(a.ownPatches, at.UnixMilli())
	return at
}

// ownPatch reports whether at is the stamp of one of the Session's own
// recent app-state patches (whatsmeow reads it back to the millisecond).
func (s *Session) ownPatch(at time.Time) bool {
	a := &s.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.ownPatches, at.UnixMilli())
}

// offer offers m, just arrived, for auto-read, if the policy takes it.
func (s *Session) offer(e *events.Message, m indexed) {
	ar := s.opts.autoRead
	if ar == nil {
		return
	}
	if e.Info.IsFromMe {
		return // activity on another device: see noteActivity
	}
	chat := e.Info.Chat
	switch {
	case chat.Server == types.NewsletterServer, chat.Server == types.BroadcastServer:
		return
	case chat.Server == types.GroupServer && !ar.Groups:
		return
	case len(ar.Chats) > 0 && !slices.Contains(ar.Chats, m.chat) && (m.chatAlt == "" || !slices.Contains(ar.Chats, m.chatAlt)):
		return
	}
	now := time.Now()
	a := &s.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	if ar.PhoneIdle > 0 && !a.phoneActive.IsZero() && now.Sub(a.phoneActive) < ar.PhoneIdle {
		s.opts.logger.Debug("auto-read: the account is active on another device; not marking", "chat", m.chat, "id", m.id)
		return
	}
	if due, ok := a.due[m.chat]; ok && now.Before(due) {
		s.opts.logger.Debug("auto-read: the chat is read soon; the message joins", "chat", m.chat, "id", m.id, "due", due)
		return
	}
	arr := session.Arrival{Chat: m.chat, Sender: m.sender, ID: m.id, Timestamp: m.timestamp,
		Due: now.Add(ar.delay(textLength(e)))}
	if len(a.due) >= maxDueChats {
		maps.DeleteFunc(a.due, func(_ string, due time.Time) bool { return !now.Before(due) })
	}
	if a.due == nil {
		a.due = make(map[string]time.Time)
	}
	if len(a.due) < maxDueChats {
		a.due[m.chat] = arr.Due
	}
	for _, f := range a.subs {
		f(arr)
	}
}

// maxDueChats bounds the chats whose auto-read a Session remembers as due;
// beyond it (chats all due later) a message is offered on its own.
const maxDueChats = 4096

// delay is the time a person takes to read a message of n characters.
func (ar *AutoRead) delay(n int) time.Duration {
	d := ar.MinDelay + time.Duration(ar.rand()*float64(ar.MaxDelay-ar.MinDelay)/2) + time.Duration(n)*autoReadCharTime
	return min(d, ar.MaxDelay)
}

// textLength counts the characters of e's text or caption.
func textLength(e *events.Message) int {
	m := e.Message
	for _, t := range []string{m.GetConversation(), m.GetExtendedTextMessage().GetText(),
		m.GetImageMessage().GetCaption(), m.GetVideoMessage().GetCaption(), m.GetDocumentMessage().GetCaption()} {
		if t != "" {
			return utf8.RuneCountInString(t)
		}
	}
	return 0
}
