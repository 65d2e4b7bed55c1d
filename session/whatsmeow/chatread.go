package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/session"
)

const (
	// defaultChatReadWindow is how long a [Session] gathers the chats to
	// mark read before it sends their app-state patches (see
	// WithChatReadWindow).
	defaultChatReadWindow = 2 * time.Second
	// maxPendingChatReads bounds the chats waiting for the next window; a
	// chat beyond it is not marked (ChatReadUnavailable, logged).
	maxPendingChatReads = 4096
	// chatReadTimeout bounds sending one patch in the background.
	chatReadTimeout = 15 * time.Second
	// maxChatsPerPatch bounds the chats (mutations) of one patch.
	maxChatsPerPatch = 50
	// defaultChatReadRate is how many chat-read patches per second a
	// [Manager]'s sessions send together at most (see WithChatReadRate).
	defaultChatReadRate = 20
)

// WithChatReadWindow sets how long a [Session] gathers the chats marked
// unread that were read (MarkChatRead) before it marks them read: one
// mutation per chat, carrying the chat's newest message read, in one
// app-state patch for up to 50 chats. A chat read by many requests within
// a window costs one mutation; many chats cost one round trip and one new
// app-state version. d must be positive. Default: 2 s.
func WithChatReadWindow(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("whatsmeow: WithChatReadWindow: need a positive window")
		}
		o.chatReadWindow = d
		return nil
	}
}

// WithChatReadRate bounds the chat-read patches a [Manager]'s sessions send
// together: at most perSecond a second, in bursts of at most burst. Each
// session sends one patch per window for its chats (WithChatReadWindow);
// with many busy sessions the windows' patches would add up — at 1,000
// sessions, 500 patches a second, each an app-state version encoded,
// hashed and sent, more CPU than the receipts themselves. A session whose
// window has ended waits for its turn, gathering the chats read meanwhile
// into the same patch: the badges clear later, the receipts are not
// delayed. perSecond 0 (or +Inf) means no bound; it must not be negative,
// and burst must be at least 1. Default: 20 a
// second, burst 20 — 1 to 2 % of a core on the benchmark's machine.
func WithChatReadRate(perSecond float64, burst int) Option {
	return func(o *options) error {
		o.forOpen("WithChatReadRate")
		if perSecond < 0 || math.IsNaN(perSecond) || burst < 1 {
			return errors.New("whatsmeow: WithChatReadRate: need a rate of 0 or more and a burst of 1 or more")
		}
		o.chatReadRate, o.chatReadBurst = perSecond, burst
		return nil
	}
}

// keyState is what a [Session] knows of the device's app-state keys, which
// whatsmeow's SendAppState needs and the phone shares some time after
// pairing.
type keyState int

const (
	keysUnknown keyState = iota // not looked at since the last change
	keysMissing                 // none in the store: wait for them
	keysPresent
)

// chatReads holds the chats to mark read in the next window.
type chatReads struct {
	mu         sync.Mutex
	keys       keyState
	keysGen    uint64                      // counts forgetKeys
	keysLogged bool                        // "no keys" was logged
	pending    map[string]session.ChatRead // by chat; the newest read
	flushing   bool                        // a flusher goroutine is on
}

// MarkChatRead is called after read receipts went out for chat c.Chat,
// read up to c.LastMessageID (or, without one, up to the chat's newest known
// message), and returns at once. As WhatsApp Web, the Session marks a chat
// read on the account's other devices with the read receipts alone — those
// devices clear the badge themselves — and sends a markChatAsRead app-state
// patch only for a chat the account's owner marked unread (see
// unreadMarks): then it returns session.ChatReadScheduled, and a background
// goroutine (owned by the Session, stopped by Close) sends the patch at the
// end of the current window (WithChatReadWindow), with every chat noted
// meanwhile, one mutation per chat, in one patch for up to 50 chats. For
// any other chat it sends nothing and returns "" (nothing to report).
//
// The patch names the chat in the form the mark came in (the app-state
// index the other devices know it by) and its newest message in the form
// it arrived in: a chat read under both its phone number and its LID within
// one window is one mutation, never two of the same index, which another
// device would reject.
//
// Until the phone has shared its app-state keys, which can take a while
// after pairing, no patch can be sent: the Session remembers that the
// store has none and answers session.ChatReadUnavailable without asking
// again until whatsmeow reports an app-state sync (events.AppStateSyncComplete,
// which follows the keys' arrival) or a new connection. A chat noted
// while the keys were thought present but found missing at the window's
// end is not marked (logged).
//
// Like MarkChatReadNow, it returns an error wrapping errors.ErrUnsupported for
// channels and status updates and when [WithMarkChatRead](false) is set,
// session.ErrMessageNotFound when c names no message and none of the chat is
// known, and session.ErrNotConnected or session.ErrNotLoggedIn when the
// session cannot send.
func (s *Session) MarkChatRead(ctx context.Context, c session.ChatRead) (session.ChatReadState, error) {
	chat, err := s.chatReadable(c.Chat)
	if err != nil {
		return session.ChatReadUnavailable, err
	}
	if err := s.ready(); err != nil {
		return session.ChatReadUnavailable, err
	}
	if c.LastMessageID == "" { // up to the newest message known: is there one?
		if _, known, err := s.index.newest(ctx, c.Chat); err != nil {
			return session.ChatReadUnavailable, err
		} else if !known {
			return "", fmt.Errorf("%w: no message of %s is known", session.ErrMessageNotFound, c.Chat)
		}
	}
	target, err := s.markedForm(ctx, c.Chat, chat)
	if err != nil || target == "" {
		return "", err
	}
	keys, err := s.appStateKeys(ctx)
	if err != nil {
		return session.ChatReadUnavailable, err
	}
	if keys == keysMissing {
		return session.ChatReadUnavailable, nil
	}
	cr := &s.chatReads
	cr.mu.Lock()
	defer cr.mu.Unlock()
	old, ok := cr.pending[target]
	switch {
	case ok && c.Timestamp.Before(old.Timestamp):
		// an older message than the one noted: nothing to change
	case !ok && len(cr.pending) >= maxPendingChatReads:
		s.opts.logger.Warn("too many chats waiting to be marked read; not marking this one", "chat", c.Chat)
		return session.ChatReadUnavailable, nil
	default:
		if cr.pending == nil {
			cr.pending = make(map[string]session.ChatRead)
		}
		cr.pending[target] = c
	}
	if !cr.flushing && s.background(s.flushChatReads) {
		cr.flushing = true
	}
	if !cr.flushing { // closed
		return session.ChatReadUnavailable, nil
	}
	return session.ChatReadScheduled, nil
}

// markedForm returns the form in which chat (asked as name) is marked
// unread — its phone number or LID, as the request, the index's newest
// message or whatsmeow's LID map name it — or "" when it is not. With no
// chat marked unread it asks nothing of the index.
func (s *Session) markedForm(ctx context.Context, name string, chat types.JID) (string, error) {
	if marked, err := s.markedUnread(ctx); err != nil || marked == "" {
		return "", err
	}
	forms := []string{name, s.otherForm(ctx, chat)}
	if m, known, err := s.index.newest(ctx, name); err != nil {
		return "", err
	} else if known {
		forms = append(forms, m.chat, m.chatAlt)
	}
	return s.markedUnread(ctx, forms...)
}

// chatReadable parses chat and checks that its badge is one to clear.
func (s *Session) chatReadable(chat string) (types.JID, error) {
	if !s.opts.markChatRead {
		return types.EmptyJID, fmt.Errorf("marking chats read is off: %w", errors.ErrUnsupported)
	}
	j, err := parseJID(chat)
	if err != nil {
		return types.EmptyJID, invalid("chat: %v", err)
	}
	if j.Server == types.NewsletterServer || j.Server == types.BroadcastServer {
		return types.EmptyJID, fmt.Errorf("channels and status updates have no unread badge: %w", errors.ErrUnsupported)
	}
	return j, nil
}

// appStateKeys returns what the Session knows of the device's app-state
// keys, looking in the store only when it does not know (once after each
// connection or app-state sync, not once per request).
func (s *Session) appStateKeys(ctx context.Context) (keyState, error) {
	cr := &s.chatReads
	cr.mu.Lock()
	keys := cr.keys
	cr.mu.Unlock()
	if keys != keysUnknown {
		return keys, nil
	}
	s.keysMu.Lock() // one look at a time
	defer s.keysMu.Unlock()
	cr.mu.Lock()
	keys, gen := cr.keys, cr.keysGen
	cr.mu.Unlock()
	if keys != keysUnknown {
		return keys, nil
	}
	keys = keysPresent // a store without app-state keys: SendAppState will tell
	if s.device.AppStateKeys != nil {
		id, err := s.device.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
		if err != nil {
			return keysUnknown, fmt.Errorf("looking for app-state keys: %w", err)
		}
		if id == nil {
			keys = keysMissing
		}
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.keysGen == gen { // no event meanwhile said to look again
		if keys == keysMissing && !cr.keysLogged {
			s.opts.logger.Info("no app-state keys yet: chats are not marked read on other devices until the phone shares them")
			cr.keysLogged = true
		}
		cr.keys = keys
	}
	return keys, nil
}

// forgetKeys makes the next MarkChatRead look at the store again: the
// keys may have arrived or, when even present ones are forgotten (after a
// failure), gone. Events forget only missing keys: every patch sent is
// followed by an app-state sync, and looking again after each would put a
// store query back on the request path. It runs inside whatsmeow's event
// dispatch and does not block.
func (s *Session) forgetKeys(present bool) {
	cr := &s.chatReads
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.keys == keysPresent && !present {
		return
	}
	cr.keysGen++
	cr.keys = keysUnknown
}

// flushChatReads sends the pending chats' patches at the end of each
// window until none is left; Close stops it, and the chats still pending
// are not marked.
func (s *Session) flushChatReads() {
	cr := &s.chatReads
	timer := time.NewTimer(s.opts.chatReadWindow)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			cr.mu.Lock()
			if n := len(cr.pending); n > 0 {
				s.opts.logger.Debug("closing: chats left unmarked", "chats", n)
			}
			cr.pending, cr.flushing = nil, false
			cr.mu.Unlock()
			return
		case <-timer.C:
		}
		if s.waitChatReadTurn() != nil { // closed
			continue
		}
		cr.mu.Lock()
		batch := cr.pending
		cr.pending = nil
		cr.mu.Unlock()
		s.sendChatReads(batch)
		cr.mu.Lock()
		if len(cr.pending) == 0 {
			cr.flushing = false
			cr.mu.Unlock()
			return
		}
		cr.mu.Unlock()
		timer.Reset(s.opts.chatReadWindow)
	}
}

// sendChatReads sends the chats of batch (by the form they are marked
// unread in), in the order of their names, in patches of at most
// maxChatsPerPatch mutations: one app-state round trip per window rather
// than one per chat (whatsmeow's own BuildArchive puts two mutations in one
// patch; each chat still gets one mutation).
func (s *Session) sendChatReads(batch map[string]session.ChatRead) {
	targets := slices.Sorted(maps.Keys(batch))
	for i := 0; i < len(targets); i += maxChatsPerPatch {
		chunk := targets[i:min(i+maxChatsPerPatch, len(targets))]
		if i > 0 && s.waitChatReadTurn() != nil { // the first waited in flushChatReads
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, chatReadTimeout)
		err := s.sendChatReadPatch(ctx, chunk, batch)
		cancel()
		if err == nil {
			continue
		}
		// SendAppState fails without keys: look whether that is why.
		s.forgetKeys(true)
		if keys, kerr := s.appStateKeys(s.ctx); kerr == nil && keys == keysMissing {
			s.opts.logger.Debug("no app-state keys: chats left unmarked", "chats", len(targets))
			return
		}
		if s.ctx.Err() == nil {
			s.opts.logger.Warn("marking chats read failed", "chats", len(chunk), "error", err)
		}
	}
}

// waitChatReadTurn waits until the Manager's patch budget lets the Session
// send a patch (at once without a budget). It fails once the Session is
// closed.
func (s *Session) waitChatReadTurn() error {
	if s.opts.chatReadBudget == nil {
		return s.ctx.Err()
	}
	return s.opts.chatReadBudget.Wait(s.ctx)
}

// sendChatReadPatch sends one patch marking the chats targets (keys of
// reads) read, which are then no longer marked unread; a chat whose
// mutation cannot be built is left out (logged). Should two mutations
// still share an index, only the one for the newer message goes: another
// device rejects a patch that carries two (whatsmeow's encoder takes each
// index's previous value from the store only, a receiver from the same
// patch first: the LTHash would not match).
func (s *Session) sendChatReadPatch(ctx context.Context, targets []string, reads map[string]session.ChatRead) error {
	var (
		patch appstate.PatchInfo
		sent  []string
		index = make(map[string]int) // mutation by its index
	)
	for _, target := range targets {
		c := reads[target]
		p, err := s.chatReadPatch(ctx, c, target)
		if err != nil {
			if s.ctx.Err() == nil {
				s.opts.logger.Warn("marking a chat read failed", "chat", c.Chat, "error", err)
			}
			continue
		}
		patch.Type = p.Type
		sent = append(sent, target)
		for _, m := range p.Mutations {
			k := strings.Join(m.Index, "\x00")
			if i, dup := index[k]; dup {
				if newerRange(m, patch.Mutations[i]) {
					patch.Mutations[i] = m
				}
				continue
			}
			index[k] = len(patch.Mutations)
			patch.Mutations = append(patch.Mutations, m)
		}
	}
	if len(patch.Mutations) == 0 {
		return nil
	}
	// No longer marked unread once the patch is on its way: a read
	// meanwhile needs no patch of its own. Marked again if it fails.
	for _, target := range sent {
		s.setUnreadMark(target, false)
	}
	err := s.sendAppState(ctx, patch)
	if err != nil {
		for _, target := range sent {
			s.setUnreadMark(target, true)
		}
	}
	return err
}

// newerRange reports whether mutation a marks a chat read up to a newer
// message than b.
func newerRange(a, b appstate.MutationInfo) bool {
	ra := a.Value.GetMarkChatAsReadAction().GetMessageRange()
	rb := b.Value.GetMarkChatAsReadAction().GetMessageRange()
	return ra.GetLastMessageTimestamp() > rb.GetLastMessageTimestamp()
}
