package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Fake is a recording session backend for tests. One Fake serves any number
// of named sessions (see Session and Registry); it is safe for concurrent
// use, and its zero value is not usable: call New.
type Fake struct {
	mu              sync.Mutex
	maxRecords      int    // 0: keep every call
	seq             int    // calls so far, dropped ones included
	calls           []Call // the last maxRecords of them
	faults          []*faultState
	messages        map[messageKey]session.Message
	order           []messageKey // AddMessage order
	read            map[messageKey]bool
	readReceiptsOff bool
	chatReads       []ChatReadCall
	markChatErr     error
	markedUnread    map[messageKey]bool // chats (id "") their owner marked unread
	typings         []TypingCall
	typingErr       error
	statuses        map[string]session.Status
	acted           map[string]time.Time // by session: the last receipt or typing sent
	sessions        map[string]*Session
}

// ChatReadCall is one MarkChatRead call the Fake received.
type ChatReadCall struct {
	// Session is the name of the session called.
	Session string
	// ChatRead is what the caller passed.
	ChatRead session.ChatRead
	// State is the state the Fake returned.
	State session.ChatReadState
	// Err is what the Fake returned.
	Err error
}

// TypingCall is one Typing call the Fake received.
type TypingCall struct {
	// Session is the name of the session called.
	Session string
	// Chat and D are what the caller passed.
	Chat string
	D    time.Duration
	// Err is what the Fake returned.
	Err error
}

// Call is one SendReceipt call the Fake received.
type Call struct {
	// Seq numbers the calls to the Fake from 1, in the order they started.
	Seq int
	// Session is the name of the session called.
	Session string
	// Receipt is the receipt as the caller passed it.
	Receipt session.Receipt
	// Result is what the Fake returned; zero when Err is set.
	Result session.Result
	// Err is the error the Fake returned, nil on success.
	Err error
}

// Fault tells the Fake to misbehave on the calls it matches. Zero fields
// match everything: Fault{Err: e} fails every call.
type Fault struct {
	// Session limits the fault to one session name.
	Session string
	// Chat limits the fault to one chat JID (as in session.Receipt.Chat).
	Chat string
	// Sender limits the fault to one sender JID (as in
	// session.Receipt.Sender), e.g. one sender of a group.
	Sender string
	// Call, when positive, limits the fault to the Call-th call it matches
	// (1 is the first); zero matches every call.
	Call int
	// Latency delays the call; if the call's context ends first, the call
	// fails with the context's error and sends nothing.
	Latency time.Duration
	// Panic, when not nil, makes the call panic with this value (after
	// Latency).
	Panic any
	// Err, when not nil, makes the call fail with this error (after Latency)
	// and send nothing.
	Err error
}

type faultState struct {
	Fault
	matched int
}

type messageKey struct{ session, chat, id string }

// Option configures a Fake; see New.
type Option func(*Fake)

// WithMaxRecords makes the Fake remember only the last n SendReceipt calls
// (Calls, Receipts) and the last n MarkChatRead calls (ChatReads), so that a
// long-running demo backend does not grow without bound; Call.Seq still
// counts every call. n <= 0 keeps every call. Default: every call, as tests
// want.
func WithMaxRecords(n int) Option {
	return func(f *Fake) { f.maxRecords = max(n, 0) }
}

// New returns an empty Fake.
func New(opts ...Option) *Fake {
	f := &Fake{
		messages:     make(map[messageKey]session.Message),
		markedUnread: make(map[messageKey]bool),
		read:         make(map[messageKey]bool),
		statuses:     make(map[string]session.Status),
		acted:        make(map[string]time.Time),
		sessions:     make(map[string]*Session),
	}
	for _, opt := range opts {
		opt(f)
	}
	return f
}

// record appends c to the calls, dropping the oldest beyond maxRecords.
// f.mu must be held.
func (f *Fake) record(c Call) {
	f.calls = append(f.calls, c)
	if f.maxRecords > 0 && len(f.calls) > f.maxRecords {
		f.calls = f.calls[len(f.calls)-f.maxRecords:] // append copies the rest when it grows
	}
}

// call returns the record of call seq, or nil once it has been dropped.
// f.mu must be held.
func (f *Fake) call(seq int) *Call {
	i := len(f.calls) - (f.seq - seq) - 1
	if i < 0 || i >= len(f.calls) || f.calls[i].Seq != seq {
		return nil
	}
	return &f.calls[i]
}

// Session returns the session called name, creating it on first use. The
// same name always returns the same *Session.
func (f *Fake) Session(name string) *Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[name]
	if !ok {
		s = &Session{fake: f, name: name}
		f.sessions[name] = s
	}
	return s
}

// Registry returns a new session.MemoryRegistry holding the named sessions.
func (f *Fake) Registry(names ...string) *session.MemoryRegistry {
	reg := session.NewMemoryRegistry()
	for _, name := range names {
		reg.Set(name, f.Session(name))
	}
	return reg
}

// Inject adds a fault; the returned function removes it.
func (f *Fake) Inject(fault Fault) (remove func()) {
	st := &faultState{Fault: fault}
	f.mu.Lock()
	f.faults = append(f.faults, st)
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.faults = slices.DeleteFunc(f.faults, func(x *faultState) bool { return x == st })
	}
}

// AddMessage makes the named session know message m, as if it had seen it
// arrive: the session's ResolveMessage then returns it, and until it is
// read UnreadMessages lists it (unless FromMe). It is read once a receipt
// for it is sent (read or played, as a real backend counts them), or when
// m.Read is set: adding a known message again with Read set emulates the
// account reading it on another of its devices. Read stays read. Chat and
// sender must be normalised JIDs.
func (f *Fake) AddMessage(sessionName string, m session.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := messageKey{sessionName, m.Chat, m.ID}
	if _, ok := f.messages[k]; !ok {
		f.order = append(f.order, k)
	}
	if m.Read {
		f.read[k] = true
	}
	m.Read = false // f.read says
	f.messages[k] = m
}

// MarkUnread emulates the account's owner marking chat (a normalised JID)
// unread on another device: the named session's next read of the chat
// then needs more than its receipts, and MarkChatRead answers
// session.ChatReadScheduled for it, once (see Session.MarkChatRead).
func (f *Fake) MarkUnread(sessionName, chat string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markedUnread[messageKey{session: sessionName, chat: chat}] = true
}

// SetMarkChatReadError makes MarkChatRead return err for a chat marked
// unread: nil (the default) for success, an error wrapping
// errors.ErrUnsupported to act like a backend that does not clear unread
// badges (MarkChatRead then returns it for every chat), anything else for
// a failure (with session.ChatReadUnavailable, as the real backend answers
// until the phone has shared its app-state keys).
func (f *Fake) SetMarkChatReadError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markChatErr = err
}

// SetStatus sets what the named session's Status reports. Default: connected,
// logged in and paired. It does not make SendReceipt fail: inject a Fault
// with session.ErrNotConnected for that (Status then agrees).
func (f *Fake) SetStatus(sessionName string, st session.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[sessionName] = st
}

// SetTypingError makes Typing return err: nil (the default) for success,
// an error wrapping errors.ErrUnsupported to act like a chat nobody sees
// typing in, anything else for a failure.
func (f *Fake) SetTypingError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typingErr = err
}

// Typings returns every Typing call so far, in order (the last ones, with
// WithMaxRecords).
func (f *Fake) Typings() []TypingCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.typings)
}

// ChatReads returns every MarkChatRead call so far, in order.
func (f *Fake) ChatReads() []ChatReadCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.chatReads)
}

// SetReadReceiptsOff emulates an account whose read-receipt privacy is
// "nobody": outside groups, read and played receipts are then sent, and
// reported, as read-self and played-self; groups keep read and played, as
// WhatsApp Web sends them ("read receipts are always sent for group chats").
func (f *Fake) SetReadReceiptsOff(off bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readReceiptsOff = off
}

// Calls returns every call so far (the last ones, with WithMaxRecords),
// failed ones included, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Receipts returns the receipts sent so far by every session, in order: the
// calls that succeeded, each with Type set to the type as sent.
func (f *Fake) Receipts() []session.Receipt {
	return f.receipts("")
}

func (f *Fake) receipts(name string) []session.Receipt {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []session.Receipt
	for _, c := range f.calls {
		if c.Err == nil && (name == "" || c.Session == name) {
			r := c.Receipt
			r.Type = c.Result.Type
			out = append(out, r)
		}
	}
	return out
}

// Reset forgets the calls, faults, messages and settings; sessions handed
// out stay valid.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.faults, f.order, f.chatReads, f.typings, f.seq = nil, nil, nil, nil, nil, 0
	f.readReceiptsOff, f.markChatErr, f.typingErr = false, nil, nil
	clear(f.messages)
	clear(f.markedUnread)
	clear(f.read)
	clear(f.statuses)
	clear(f.acted)
}

// Session is one named session of a Fake. It implements session.Session,
// session.Resolver, session.UnreadLister, session.ChatReadMarker,
// session.StatusReporter and session.Typist, as
// the whatsmeow backend's Session does.
type Session struct {
	fake *Fake
	name string
}

var (
	_ session.Session        = (*Session)(nil)
	_ session.Resolver       = (*Session)(nil)
	_ session.UnreadLister   = (*Session)(nil)
	_ session.ChatReadMarker = (*Session)(nil)
	_ session.StatusReporter = (*Session)(nil)
	_ session.Typist         = (*Session)(nil)
	_ session.ContextBound   = (*Session)(nil)
)

// BoundByContext reports true: SendReceipt returns as soon as its context
// ends, a Latency fault included (see session.ContextBound).
func (s *Session) BoundByContext() bool { return true }

// Receipts returns the receipts this session sent so far, like
// Fake.Receipts.
func (s *Session) Receipts() []session.Receipt {
	return s.fake.receipts(s.name)
}

// Name returns the session's name.
func (s *Session) Name() string { return s.name }

// SendReceipt records r and reports it sent, unless a Fault says otherwise.
// Like the whatsmeow backend it refuses, sending nothing, a cancelled
// context and an invalid receipt (session.ErrInvalidReceipt): no chat, no
// ids, a group or status receipt with neither a sender nor messages added
// with one, a channel id that is neither a numeric server id nor a message
// added with AddMessage. As that backend reports them, read and played
// receipts come back as read-self and played-self outside groups when
// SetReadReceiptsOff is on; receipts for channels as view; and in groups
// and status updates, when r's first id is a message added with another
// sender, with that sender (the one a real receipt must name) in
// Result.Sender.
func (s *Session) SendReceipt(ctx context.Context, r session.Receipt) (session.Result, error) {
	f := s.fake
	r.MessageIDs = slices.Clone(r.MessageIDs)

	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.record(Call{Seq: seq, Session: s.name, Receipt: r, Err: errPending})
	var apply []Fault
	for _, st := range f.faults {
		if (st.Session != "" && st.Session != s.name) || (st.Chat != "" && st.Chat != r.Chat) ||
			(st.Sender != "" && st.Sender != r.Sender) {
			continue
		}
		st.matched++
		if st.Call == 0 || st.Call == st.matched {
			apply = append(apply, st.Fault)
		}
	}
	readSelf := f.readReceiptsOff
	var known map[string]session.Message // what channels, groups and status updates need
	if !strings.HasSuffix(r.Chat, "@s.whatsapp.net") && !strings.HasSuffix(r.Chat, "@lid") {
		for _, id := range r.MessageIDs {
			if m, ok := f.messages[messageKey{s.name, r.Chat, id}]; ok {
				if known == nil {
					known = make(map[string]session.Message)
				}
				known[id] = m
			}
		}
	}
	f.mu.Unlock()

	var (
		res session.Result
		err = errPanicked
	)
	defer func() {
		f.mu.Lock()
		if c := f.call(seq); c != nil {
			c.Result, c.Err = res, err
		}
		f.mu.Unlock()
	}()
	res, err = s.send(ctx, r, apply, readSelf, known)
	if err == nil {
		f.mu.Lock()
		for _, id := range r.MessageIDs {
			if k := (messageKey{s.name, r.Chat, id}); f.messages[k].ID != "" {
				f.read[k] = true // only known messages can be unread
			}
		}
		f.acted[s.name] = time.Now()
		f.mu.Unlock()
	}
	return res, err
}

// Errors recorded in Calls for calls that have not returned.
var (
	errPending  = errors.New("sessiontest: call in progress")
	errPanicked = errors.New("sessiontest: call panicked")
)

// send is SendReceipt once r is recorded: the faults that apply, then the
// checks and the result of a real backend. known holds the messages added
// with AddMessage among r's ids.
func (s *Session) send(ctx context.Context, r session.Receipt, faults []Fault, readSelf bool, known map[string]session.Message) (session.Result, error) {
	for _, fl := range faults {
		if fl.Latency > 0 {
			t := time.NewTimer(fl.Latency)
			select {
			case <-ctx.Done():
				t.Stop()
				return session.Result{}, ctx.Err()
			case <-t.C:
			}
		}
	}
	for _, fl := range faults {
		if fl.Panic != nil {
			panic(fl.Panic)
		}
	}
	for _, fl := range faults {
		if fl.Err != nil {
			return session.Result{}, fl.Err
		}
	}
	if err := ctx.Err(); err != nil {
		return session.Result{}, err
	}
	if r.Chat == "" || len(r.MessageIDs) == 0 || slices.Contains(r.MessageIDs, "") {
		return session.Result{}, fmt.Errorf("%w: a receipt needs a chat and message ids", session.ErrInvalidReceipt)
	}
	typ := r.Type
	if typ != session.ReceiptRead && typ != session.ReceiptPlayed {
		return session.Result{}, fmt.Errorf("%w: receipt type %q", session.ErrInvalidReceipt, typ)
	}
	if strings.HasSuffix(r.Chat, "@newsletter") {
		// Channel messages are addressed by their numeric server ids.
		for _, id := range r.MessageIDs {
			if n, err := strconv.Atoi(id); (err != nil || n <= 0) && known[id].ID == "" {
				return session.Result{}, fmt.Errorf("%w: channel message %q: not a numeric server id, nor a known message", session.ErrInvalidReceipt, id)
			}
		}
		return session.Result{Type: session.ReceiptView}, nil
	}
	var res session.Result
	if strings.HasSuffix(r.Chat, "@g.us") || strings.HasSuffix(r.Chat, "@broadcast") {
		// The sender a message was added with wins, as a real receipt
		// naming anyone else would reach nobody.
		for i, id := range r.MessageIDs {
			sender := nonAD(known[id].Sender)
			switch {
			case sender == "" && r.Sender == "":
				return session.Result{}, fmt.Errorf("%w: a group receipt needs its sender", session.ErrInvalidReceipt)
			case i == 0 && sender != "" && sender != r.Sender:
				res.Sender = sender
			}
		}
	}
	switch {
	case !readSelf || strings.HasSuffix(r.Chat, "@g.us"): // as asked
	case typ == session.ReceiptRead:
		typ = session.ReceiptReadSelf
	case typ == session.ReceiptPlayed:
		typ = session.ReceiptPlayedSelf
	}
	res.Type = typ
	return res, nil
}

// nonAD drops a JID's device suffix ("123:4@s.whatsapp.net" is
// "123@s.whatsapp.net"), as a real receipt names the sender.
func nonAD(jid string) string {
	user, server, ok := strings.Cut(jid, "@")
	if !ok {
		return jid
	}
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user = user[:i]
	}
	return user + "@" + server
}

// ResolveMessage returns a message added with AddMessage, Read once it is
// read (see AddMessage), or an error wrapping session.ErrMessageNotFound.
func (s *Session) ResolveMessage(_ context.Context, chat, id string) (session.Message, error) {
	f := s.fake
	f.mu.Lock()
	defer f.mu.Unlock()
	k := messageKey{s.name, chat, id}
	m, ok := f.messages[k]
	if !ok {
		return session.Message{}, session.ErrMessageNotFound // the common case: no message text to format
	}
	m.Read = f.read[k]
	return m, nil
}

// UnreadMessages lists the messages added with AddMessage to chat that are
// not FromMe and not read (see AddMessage): the newest limit, oldest first.
func (s *Session) UnreadMessages(_ context.Context, chat string, limit int) ([]session.Message, error) {
	f := s.fake
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []session.Message
	for _, k := range f.order {
		if m := f.messages[k]; k.session == s.name && k.chat == chat && !m.FromMe && !f.read[k] {
			out = append(out, m)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// recordChatRead appends c to the chat reads, dropping the oldest beyond
// maxRecords. f.mu must be held.
func (f *Fake) recordChatRead(c ChatReadCall) {
	f.chatReads = append(f.chatReads, c)
	if f.maxRecords > 0 && len(f.chatReads) > f.maxRecords {
		f.chatReads = f.chatReads[len(f.chatReads)-f.maxRecords:]
	}
}

// MarkChatRead records c and decides as the whatsmeow backend does
// whether the chat needs more than its read receipts: only a chat marked
// unread with MarkUnread does. For it, it returns
// session.ChatReadScheduled and the chat is no longer marked unread (the
// real backend sends the patch at the end of its window, and until then
// answers scheduled for the chat again); for any other chat "" (the
// receipts suffice). Like that backend, it returns an error wrapping
// errors.ErrUnsupported for channels and status updates (and the error set
// with SetMarkChatReadError when it wraps errors.ErrUnsupported), one
// wrapping session.ErrNotConnected or session.ErrNotLoggedIn, with
// session.ChatReadUnavailable, while Status says the session cannot send,
// one wrapping session.ErrMessageNotFound when c names no message and
// none of the chat was added with AddMessage, and, for a chat marked
// unread, session.ChatReadUnavailable with any other error set with
// SetMarkChatReadError.
func (s *Session) MarkChatRead(_ context.Context, c session.ChatRead) (session.ChatReadState, error) {
	f := s.fake
	f.mu.Lock()
	defer f.mu.Unlock()
	state, err := f.scheduleChatRead(s.name, c)
	f.recordChatRead(ChatReadCall{Session: s.name, ChatRead: c, State: state, Err: err})
	return state, err
}

// scheduleChatRead decides MarkChatRead's answer. f.mu must be held.
func (f *Fake) scheduleChatRead(name string, c session.ChatRead) (session.ChatReadState, error) {
	switch {
	case strings.HasSuffix(c.Chat, "@newsletter") || strings.HasSuffix(c.Chat, "@broadcast"):
		return "", fmt.Errorf("%w: channels and status updates have no unread badge", errors.ErrUnsupported)
	case errors.Is(f.markChatErr, errors.ErrUnsupported):
		return "", f.markChatErr
	}
	if st := f.statusLocked(name); !st.Paired || !st.LoggedIn {
		return session.ChatReadUnavailable, fmt.Errorf("%w: the session is not logged in", session.ErrNotLoggedIn)
	} else if !st.Connected {
		return session.ChatReadUnavailable, fmt.Errorf("%w: the session is not connected", session.ErrNotConnected)
	}
	if c.LastMessageID == "" && !slices.ContainsFunc(f.order, func(k messageKey) bool { return k.session == name && k.chat == c.Chat }) {
		return "", fmt.Errorf("%w: no message of chat %s", session.ErrMessageNotFound, c.Chat)
	}
	k := messageKey{session: name, chat: c.Chat}
	switch {
	case !f.markedUnread[k]:
		return "", nil
	case f.markChatErr != nil:
		return session.ChatReadUnavailable, f.markChatErr
	}
	delete(f.markedUnread, k)
	return session.ChatReadScheduled, nil
}

// Typing records the call and returns the error set with SetTypingError
// (nil by default), or, as the whatsmeow backend, an error wrapping
// errors.ErrUnsupported for channels and status updates, where nobody
// sees typing. It shows nothing anywhere and clears nothing.
func (s *Session) Typing(_ context.Context, chat string, d time.Duration) error {
	f := s.fake
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.typingErr
	if strings.HasSuffix(chat, "@newsletter") || strings.HasSuffix(chat, "@broadcast") {
		err = fmt.Errorf("nobody sees typing in channels and status updates: %w", errors.ErrUnsupported)
	}
	f.typings = append(f.typings, TypingCall{Session: s.name, Chat: chat, D: d, Err: err})
	if f.maxRecords > 0 && len(f.typings) > f.maxRecords {
		f.typings = f.typings[len(f.typings)-f.maxRecords:]
	}
	if err == nil {
		f.acted[s.name] = time.Now()
	}
	return err
}

// Status returns what SetStatus set, or connected, logged in and paired,
// with Activity, unless set, when the session last sent a receipt or
// showed typing; then, as a real backend's state would, it agrees with the
// faults that fail every call of the session (no Chat, Sender or Call):
// one wrapping session.ErrNotConnected makes it not connected (but not one
// wrapping session.ErrNotReady: connected, waiting for WhatsApp), one
// wrapping session.ErrNotLoggedIn not logged in.
func (s *Session) Status(context.Context) session.Status {
	f := s.fake
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusLocked(s.name)
}

// statusLocked is Status of the named session. f.mu must be held.
func (f *Fake) statusLocked(name string) session.Status {
	st, ok := f.statuses[name]
	if !ok {
		st = session.Status{Connected: true, LoggedIn: true, Paired: true}
	}
	if st.Activity.IsZero() {
		st.Activity = f.acted[name]
	}
	for _, fl := range f.faults {
		if (fl.Session != "" && fl.Session != name) || fl.Chat != "" || fl.Sender != "" || fl.Call != 0 || fl.Err == nil {
			continue
		}
		switch {
		case errors.Is(fl.Err, session.ErrNotReady): // connected, waiting for WhatsApp
		case errors.Is(fl.Err, session.ErrNotConnected):
			st.Connected = false
		case errors.Is(fl.Err, session.ErrNotLoggedIn):
			st.LoggedIn = false
		}
	}
	return st
}
