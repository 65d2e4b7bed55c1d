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

// typing holds the chats a [Session] shows the account typing in, and when
// each is to be cleared.
type typing struct {
	mu    sync.Mutex
	until map[string]time.Time // by chat JID as sent; a goroutine each
}

// Typing sends <chatstate to=chat><composing/></chatstate> and, d later
// (extended by a later call for the same chat), <paused/>, from a
// goroutine that Close stops (a closed Session sends no paused; the apps
// stop showing typing after a while). A direct chat gets it in the form
// its newest known message arrived in (its LID or phone number), as the
// receipts. In [PresenceReading] the account goes available first. It
// returns an error wrapping errors.ErrUnsupported for channels and status
// updates.
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
	err = guard("SendChatPresence", func() error {
		return s.client.SendChatPresence(ctx, jid, types.ChatPresenceComposing, types.ChatPresenceMediaText)
	})
	if err != nil {
		return mapError(err)
	}
	t := &s.typing
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.until == nil {
		t.until = make(map[string]time.Time)
	}
	key := jid.String()
	_, running := t.until[key]
	t.until[key] = s.opts.now().Add(d)
	if !running && !s.background(func() { s.clearTyping(jid, d) }) {
		delete(t.until, key) // closed
	}
	return nil
}

// clearTyping sends paused to jid once its typing time is over.
func (s *Session) clearTyping(jid types.JID, wait time.Duration) {
	t := &s.typing
	key := jid.String()
	for {
		timer := time.NewTimer(wait)
		fired := timer.C
		if s.opts.typingTicks != nil {
			timer.Stop()
			fired = s.opts.typingTicks
		}
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return
		case <-fired:
		}
		timer.Stop()
		t.mu.Lock()
		left := t.until[key].Sub(s.opts.now())
		if s.opts.typingTicks == nil && left > 0 {
			t.mu.Unlock()
			wait = left
			continue
		}
		delete(t.until, key)
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, presenceTimeout)
		err := guard("SendChatPresence", func() error {
			return s.client.SendChatPresence(ctx, jid, types.ChatPresencePaused, types.ChatPresenceMediaText)
		})
		cancel()
		if err != nil && s.ctx.Err() == nil {
			s.opts.logger.Warn("clearing typing failed", "chat", key, "error", err)
		}
		return
	}
}
