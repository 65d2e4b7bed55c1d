package whatsmeow

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
)

// Defaults of [AutoRead].
const (
	DefaultAutoReadMinDelay = 3 * time.Second
	DefaultAutoReadMaxDelay = 30 * time.Second
	// DefaultAutoReadPhoneIdle is how long after the account was last
	// active on another device (a message sent or a chat read there)
	// auto-read waits before it marks messages read again.
	DefaultAutoReadPhoneIdle = 5 * time.Minute
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
	// [DefaultAutoReadMinDelay] (3 s) and DefaultAutoReadMaxDelay (30 s).
	MinDelay, MaxDelay time.Duration
	// Chats, when not empty, limits auto-read to these chats (JIDs as
	// package validate normalises them, either form of a direct chat).
	// Default: every direct chat.
	Chats []string
	// Groups includes group chats. Default: off. Channels and status
	// updates are never auto-read.
	Groups bool
	// PhoneIdle: no message is offered while the account was active on
	// another device (the phone sent a message or read a chat) within this
	// time — the person is there and reads for themselves. Default:
	// [DefaultAutoReadPhoneIdle] (5 min); negative: always offer.
	PhoneIdle time.Duration
	// Rand returns a number in [0, 1) for each delay; tests inject their
	// own. Default: math/rand/v2's Float64.
	Rand func() float64
}

// WithAutoRead makes the [Session] offer its incoming messages for
// auto-read as a [AutoRead] says, to whoever subscribed (see
// [Session.OnArrival], [Manager.SubscribeArrivals], and
// seenhandler.WithAutoRead, which sends them through the handler's path).
// Only readable messages from others are offered (not reactions, edits,
// protocol messages, the account's own). Default: off.
func WithAutoRead(a AutoRead) Option {
	return func(o *options) error {
		if a.MinDelay == 0 && a.MaxDelay == 0 {
			a.MinDelay, a.MaxDelay = DefaultAutoReadMinDelay, DefaultAutoReadMaxDelay
		}
		if a.MinDelay < 0 || a.MaxDelay < a.MinDelay {
			return errors.New("whatsmeow: WithAutoRead: need 0 <= MinDelay <= MaxDelay")
		}
		if a.PhoneIdle == 0 {
			a.PhoneIdle = DefaultAutoReadPhoneIdle
		}
		if a.Rand == nil {
			a.Rand = rand.Float64
		}
		a.Chats = slices.Clone(a.Chats)
		o.autoRead = &a
		return nil
	}
}

// arrivals holds the subscribers of a [Session]'s arrivals.
type arrivals struct {
	mu          sync.Mutex
	subs        map[int]func(session.Arrival)
	next        int
	phoneActive time.Time // the account's last activity on another device
}

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

// phoneActive notes that the account was active on another device.
func (s *Session) phoneActive() {
	a := &s.arrivals
	a.mu.Lock()
	a.phoneActive = s.opts.now()
	a.mu.Unlock()
}

// offer offers m, just arrived, for auto-read, if the policy takes it.
func (s *Session) offer(e *events.Message, m indexed) {
	ar := s.opts.autoRead
	if ar == nil {
		return
	}
	if e.Info.IsFromMe {
		s.phoneActive()
		return
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
	now := s.opts.now()
	a := &s.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	if ar.PhoneIdle > 0 && !a.phoneActive.IsZero() && now.Sub(a.phoneActive) < ar.PhoneIdle {
		s.opts.logger.Debug("auto-read: the account is active on another device; not marking", "chat", m.chat, "id", m.id)
		return
	}
	arr := session.Arrival{Chat: m.chat, Sender: m.sender, ID: m.id, Timestamp: m.timestamp,
		Due: now.Add(ar.delay(textLength(e)))}
	for _, f := range a.subs {
		f(arr)
	}
}

// delay is the time a person takes to read a message of n characters.
func (ar *AutoRead) delay(n int) time.Duration {
	d := ar.MinDelay + time.Duration(ar.Rand()*float64(ar.MaxDelay-ar.MinDelay)/2) + time.Duration(n)*autoReadCharTime
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
