package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/session"
)

var _ session.Typist = (*Session)(nil)

// typingResend is how often WhatsApp Web sends <composing/> again while
// its user keeps typing (WhatsApp's apps stop showing typing after a
// timeout of their own).
const typingResend = 10 * time.Second

// typing holds the chats a [Session] shows the account typing in, and until
// when each.
type typing struct {
	mu    sync.Mutex
	until map[string]time.Time // by chat JID as sent; a goroutine each
}

// Typing shows the account typing in chat for d, as WhatsApp Web does while
// its user types: it sends <chatstate to=chat><composing/></chatstate> at
// once, again every 10 s while the time lasts, and <paused/> at its end. A
// later call for the same chat while it lasts makes it last at least d after
// that call, without a composing of its own (the next goes out on the 10 s
// rhythm). The later composings and the paused are sent by a goroutine that
// Close stops (a closed Session sends no paused; the apps stop showing
// typing after a while). A direct chat gets it in the form its newest known
// message arrived in (its LID or phone number), as the receipts. In
// [PresenceReading] the account goes available first. It returns an error
// wrapping errors.ErrUnsupported for channels and status updates.
func (s *Session) Typing(ctx context.Context, chat string, d time.Duration) error {
	if d <= 0 {
		return invalid("typing for %v", d)
	}
	jid, err := parseJID(chat)
	if err != nil {
		return invalid("chat: %v", err)
	}
	if jid.Server == types.NewsletterServer || jid.Server == types.BroadcastServer {
		return fmt.Errorf("nobody sees typing in channels and status updates: %w", errors.ErrUnsupported)
	}
	if err := s.ready(); err != nil {
		return err
	}
	if m, known, err := s.index.newest(ctx, chat); err == nil && known {
		if c, err := parseJID(m.chat); err == nil {
			jid = c
		}
	}
	if err := s.active(ctx); err != nil {
		return err
	}
	t := &s.typing
	key := jid.String()
	t.mu.Lock()
	if t.until == nil {
		t.until = make(map[string]time.Time)
	}
	until, running := t.until[key]
	if end := time.Now().Add(d); end.After(until) {
		t.until[key] = end
	}
	t.mu.Unlock()
	if running {
		return nil
	}
	// The chat's goroutine sends everything after this composing, and the
	// chat stays in t.until until it has sent the paused: the composing
	// that starts the next typing never overtakes that paused.
	err = guard("SendChatPresence", func() error {
		return s.client.SendChatPresence(ctx, jid, types.ChatPresenceComposing, types.ChatPresenceMediaText)
	})
	if err == nil {
		s.noteActed()
	}
	if err == nil && s.background(func() { s.keepTyping(jid) }) {
		return nil
	}
	t.mu.Lock()
	delete(t.until, key)
	t.mu.Unlock()
	return mapError(ctx, err) // nil when closed
}

// keepTyping sends composing to jid every typingResend, counted from the
// one Typing has just sent, while the chat's typing time lasts, and then
// paused. A Typing call that extends the time while the paused is being
// sent makes it start again with a composing.
func (s *Session) keepTyping(jid types.JID) {
	t := &s.typing
	key := jid.String()
	next := time.Now().Add(typingResend) // the next composing
	for {
		t.mu.Lock()
		wake := t.until[key]
		t.mu.Unlock()
		if next.Before(wake) {
			wake = next
		}
		timer := time.NewTimer(time.Until(wake))
		select {
		case <-s.ctx.Done():
			timer.Stop()
			t.mu.Lock()
			delete(t.until, key)
			t.mu.Unlock()
			return
		case <-timer.C:
		}
		t.mu.Lock()
		now, until := time.Now(), t.until[key]
		t.mu.Unlock()
		if now.Before(until) {
			if !now.Before(next) {
				s.sendChatState(jid, types.ChatPresenceComposing)
				next = now.Add(typingResend)
			}
			continue // or extended: sleep on
		}
		s.sendChatState(jid, types.ChatPresencePaused)
		t.mu.Lock()
		if now = time.Now(); now.Before(t.until[key]) {
			t.mu.Unlock()
			s.sendChatState(jid, types.ChatPresenceComposing)
			next = now.Add(typingResend)
			continue
		}
		delete(t.until, key)
		t.mu.Unlock()
		return
	}
}

// sendChatState sends state to jid from the background, logging a failure
// (a later composing or the paused may yet get through).
func (s *Session) sendChatState(jid types.JID, state types.ChatPresence) {
	ctx, cancel := context.WithTimeout(s.ctx, presenceTimeout)
	defer cancel()
	var err error
	if state == types.ChatPresenceComposing {
		// Typing is activity: the account stays available (the idle
		// countdown starts again), and types only while it is.
		err = s.active(ctx)
	}
	if err == nil {
		err = guard("SendChatPresence", func() error {
			return s.client.SendChatPresence(ctx, jid, state, types.ChatPresenceMediaText)
		})
	}
	if err != nil && s.ctx.Err() == nil {
		s.opts.logger.Warn("sending typing failed", "chat", jid.String(), "state", string(state), "error", err)
	}
}
