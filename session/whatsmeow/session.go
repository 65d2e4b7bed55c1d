package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/session"
)

// privacyWarmTimeout bounds the privacy-settings query made after each
// connection of a Manager's session.
const privacyWarmTimeout = 15 * time.Second

// WithIndexSize sets how many incoming messages a [Session] made by [New]
// remembers in memory (to find a group message's sender, skip the
// account's own messages, find a channel message's server id and list a
// chat's unread messages); the oldest is forgotten first. Each message
// costs about 500 bytes. 0 turns the index off, also for a [Manager]'s
// sessions; any other n is ignored there: a
// Manager's sessions keep their index in the store and share one memory
// cache ([WithIndexCache], [WithIndexRetention]). A negative n is an
// error. Default: 10,000.
func WithIndexSize(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return errors.New("whatsmeow: WithIndexSize: negative size")
		}
		o.indexSize = n
		return nil
	}
}

// WithMarkChatRead turns on or off clearing, after read receipts, the
// "marked as unread" mark of a chat the account's owner marked unread on
// another device (an app-state patch, sent in the background: see
// [Session.MarkChatRead]; other chats need none, their receipts clear
// the badge), and [Session.MarkChatReadNow]. Off, such a chat stays marked
// unread on the account's devices until its owner opens it. Default: on
// for a [Manager]'s sessions; off for a [Session] made by [New], which
// sends no app-state patch the program did not ask for (MarkChatRead and
// MarkChatReadNow then answer errors.ErrUnsupported).
func WithMarkChatRead(on bool) Option {
	return func(o *options) error { o.markChatRead = on; return nil }
}

// WithMaxPendingChannelViews bounds how many channel view receipts may wait
// at once for WhatsApp's answer: whatsmeow's NewsletterMarkViewed waits
// without a deadline, so a [Session] stops waiting when the request's context
// ends but the call lingers until the server answers or the connection
// drops. Further views wait for a free slot within their own deadline.
// n must be at least 1. Default: 8.
func WithMaxPendingChannelViews(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return errors.New("whatsmeow: WithMaxPendingChannelViews: need at least 1")
		}
		o.maxViews = n
		return nil
	}
}

// Session sends receipts through one whatsmeow client. It implements
// session.Session, session.Resolver, session.UnreadLister,
// session.ChatReadMarker, session.StatusReporter and session.Typist, and is safe for concurrent use.
type Session struct {
	client    Client
	device    *store.Device
	index     *messages
	groups    *groupModes // addressing modes WhatsApp told (GetGroupInfo)
	opts      options
	views     chan struct{} // slots for pending channel views
	handlerID uint32

	// Background work (the privacy warm-up) runs under ctx; Close cancels
	// it and waits for it.
	ctx    context.Context
	cancel context.CancelFunc
	bgMu   sync.Mutex // orders background's Add before Close's Wait
	closed bool
	bg     sync.WaitGroup

	// privMu guards connects (events.Connected seen) and privacyAt (the
	// value of connects when the privacy settings were last fetched
	// bypassing whatsmeow's cache).
	privMu    sync.Mutex
	connects  uint64
	privacyAt uint64

	connWork    connWork    // see onConnection
	presence    presence    // see WithPresence
	typing      typing      // see Typing
	arrivals    arrivals    // see OnArrival
	chatReads   chatReads   // see MarkChatRead
	unreadMarks unreadMarks // chats marked unread, which alone get a chat-read patch
	keysMu      sync.Mutex  // one look at the app-state keys at a time
	// replaced: WhatsApp replaced the connection with another of the
	// device (events.StreamReplaced) and none has been made since.
	replaced atomic.Bool
	// acted is when a receipt or typing indicator last went out, in Unix
	// milliseconds (session.Status.Activity); 0 before the first.
	acted atomic.Int64
	// sending counts the SendReceipt calls running; progressed is when one
	// last ended or, when none ran, when the first of those running began
	// (monotonic: see sinceStart). See BoundByContext.
	sending    atomic.Int32
	progressed atomic.Int64

	// nextPairing is when the Manager next tries to reach WhatsApp to pair
	// this session (Pair), or zero.
	pairMu      sync.Mutex
	nextPairing time.Time
}

var (
	_ session.Session        = (*Session)(nil)
	_ session.Resolver       = (*Session)(nil)
	_ session.UnreadLister   = (*Session)(nil)
	_ session.ChatReadMarker = (*Session)(nil)
	_ session.StatusReporter = (*Session)(nil)
	_ session.ContextBound   = (*Session)(nil)
)

// stuckAfter is how long the calls to a Session's SendReceipt may all go
// on without one ending before the Session stops saying it is bound by its
// context (BoundByContext): far longer than a write or a query takes on a
// live connection.
const stuckAfter = time.Second

// BoundByContext reports whether SendReceipt returns soon after its context
// ends (see session.ContextBound), which group commit relies on to send a
// receipt alone from its caller's goroutine. It does: every wait in it —
// the message index, the queries, whatsmeow's write of the stanza — ends
// with its context, but one: whatsmeow's lock on the connection's writes,
// which a write of whatsmeow's own (a keep-alive, an acknowledgement) holds
// for as long as the connection takes it, with no deadline. On a live
// connection that is microseconds. On a stalled one (nothing acknowledged,
// the socket's buffer full) the lock can be held until the connection dies,
// so BoundByContext reports false once calls have been running for
// stuckAfter (1 s) with none ending: group commit then sends from goroutines
// of its own, and callers answer at their deadlines. The first call and
// those that began in that second wait with the connection: until its write
// fails, which on a peer that stopped reading is when TCP gives up
// (minutes). That is the price of sending a lone receipt without a
// hand-off, which saves ~4.5 µs of CPU a request (BenchmarkEndToEnd,
// spread).
func (s *Session) BoundByContext() bool {
	return s.sending.Load() == 0 || sinceStart()-time.Duration(s.progressed.Load()) < stuckAfter
}

// started and ended bracket a SendReceipt call, for BoundByContext.
func (s *Session) started() {
	if s.sending.Add(1) == 1 {
		s.progressed.Store(int64(sinceStart()))
	}
}

func (s *Session) ended() {
	// The last call running leaves progressed alone: with none running
	// BoundByContext does not read it, and the next call's started sets
	// it. A lone request so reads the clock once, not twice.
	if s.sending.CompareAndSwap(1, 0) {
		return
	}
	s.progressed.Store(int64(sinceStart()))
	s.sending.Add(-1)
}

// processStart is the origin of sinceStart.
var processStart = time.Now()

// sinceStart is the time since the package was loaded, from the monotonic
// clock: a step of the wall clock (NTP, a VM resumed) neither makes a
// stalled connection look live nor a live one stalled.
func sinceStart() time.Duration { return time.Since(processStart) }

// New returns a [Session] over client, a whatsmeow client the program
// manages itself (connects, pairs, closes), whose device store is device
// (for a real client, client.Store). It registers an event handler on
// client to index incoming messages and to notice app-state keys arriving;
// Close removes it and stops the Session's goroutines. With the default
// options it sends nothing on its own: the package documentation lists
// what goes out. A bad option, or one that only [Open] takes, is an
// error, and nothing is registered then.
func New(client Client, device *store.Device, opts ...Option) (*Session, error) {
	o, err := newOptions(wrappedDefaults(), opts)
	if err != nil {
		return nil, err
	}
	if o.openOnly != "" {
		return nil, fmt.Errorf("whatsmeow: %s configures a Manager: give it to Open, not New", o.openOnly)
	}
	return newSession(client, device, o), nil
}

// newSession returns a [Session] over client with o, checked.
func newSession(client Client, device *store.Device, o options) *Session {
	s := &Session{
		client: client,
		device: device,
		index:  newMessages(o, device),
		groups: newGroupModes(),
		opts:   o,
		views:  make(chan struct{}, o.maxViews),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handlerID = client.AddEventHandler(s.handleEvent)
	if client.IsLoggedIn() {
		if o.warmPrivacy {
			s.onConnection(s.warmPrivacy)
		}
		s.announce()
	}
	return s
}

// Close stops indexing the client's events and waits for the [Session]'s
// background work to stop: the privacy warm-up, and the chats' read
// patches (those still waiting for their window are not sent). It does not
// disconnect the client. It must not
// be called from inside one of the client's event handlers: whatsmeow runs
// them under the lock that RemoveEventHandler takes, so Close would
// deadlock the client's event dispatch ([Manager] closes a logged-out
// session from a goroutine of its own for this reason).
func (s *Session) Close() {
	s.client.RemoveEventHandler(s.handlerID)
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.cancel()
	s.bg.Wait()
	s.index.close()
}

// connWork is the Session's work for one connection: the privacy warm-up
// and the presence announcement after connecting (see onConnection).
type connWork struct {
	mu     sync.Mutex
	ctx    context.Context // nil: none started since the last quiesce
	cancel context.CancelFunc
	wg     *sync.WaitGroup // this connection's; a fresh one after quiesce
}

// onConnection runs f in the background (see background) with the context
// of the current connection's work, which quiesce cancels and waits for.
func (s *Session) onConnection(f func(ctx context.Context)) {
	w := &s.connWork
	w.mu.Lock()
	if w.ctx == nil {
		w.ctx, w.cancel = context.WithCancel(s.ctx)
		w.wg = new(sync.WaitGroup)
	}
	ctx, wg := w.ctx, w.wg
	wg.Add(1)
	w.mu.Unlock()
	if !s.background(func() { defer wg.Done(); f(ctx) }) {
		wg.Done()
	}
}

// quiesceGrace is how long quiesce lets the current connection's work
// finish before it cancels it.
const quiesceGrace = time.Second

// quiesce waits for the Session's work for the current connection to end,
// cancelling it after quiesceGrace. A Manager calls it before disconnecting
// the client: whatsmeow's FrameSocket reads its connection unlocked in
// SendFrame while Close clears it, so a warm-up still writing as the socket
// closes is a data race inside whatsmeow (-race reported it); ordered this
// way, none is. It waits before it cancels because cancelling a query whose
// answer is arriving is another race inside whatsmeow (cancelResponse
// closes the channel receiveResponse may be sending on).
func (s *Session) quiesce() {
	w := &s.connWork
	w.mu.Lock()
	wg, cancel := w.wg, w.cancel
	w.ctx, w.cancel, w.wg = nil, nil, nil
	w.mu.Unlock()
	if wg == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(quiesceGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	cancel()
	<-done
}

// background runs f in a goroutine that Close waits for and reports true;
// after Close it does nothing and reports false.
func (s *Session) background(f func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// paired reports whether the device has ever been paired (and not logged
// out since).
func (s *Session) paired() bool {
	return s.device != nil && s.device.ID != nil
}

// ready checks, before anything is sent, what whatsmeow itself does not.
func (s *Session) ready() error {
	switch {
	case !s.paired():
		err := fmt.Errorf("%w: the device is not paired", session.ErrNotLoggedIn)
		if wait := time.Until(s.nextPairingAttempt()); wait > 0 {
			err = session.RetryLater(fmt.Errorf("%w; WhatsApp is unreachable, pairing tries again in %v", err, wait), wait)
		}
		return err
	case !s.client.IsConnected():
		return session.ErrNotConnected
	case !s.client.IsLoggedIn():
		return fmt.Errorf("%w: connected, not yet authenticated", session.ErrNotConnected)
	}
	return nil
}

// setNextPairing records when the [Manager] next tries to reach WhatsApp to
// pair the session; zero when it is not waiting.
func (s *Session) setNextPairing(at time.Time) {
	s.pairMu.Lock()
	defer s.pairMu.Unlock()
	s.nextPairing = at
}

func (s *Session) nextPairingAttempt() time.Time {
	s.pairMu.Lock()
	defer s.pairMu.Unlock()
	return s.nextPairing
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{session.ErrInvalidReceipt}, args...)...)
}

// SendReceipt sends r: a read or played receipt through MarkRead (or, for a
// group read with the account's read receipts off, the same node with type
// read, see typeAsSent), or, for a channel, a view receipt through
// NewsletterMarkViewed with the messages' numeric server ids. It reports
// the type as sent. The fences of ctx (session.WithFence) are checked
// right before each write: one that fails stops the call with its error.
// The package documentation lists the errors it returns.
func (s *Session) SendReceipt(ctx context.Context, r session.Receipt) (session.Result, error) {
	if err := ctx.Err(); err != nil {
		return session.Result{}, err
	}
	s.started()
	defer s.ended()
	if len(r.MessageIDs) == 0 || slices.Contains(r.MessageIDs, "") {
		return session.Result{}, invalid("no message ids")
	}
	if r.Type != session.ReceiptRead && r.Type != session.ReceiptPlayed {
		return session.Result{}, invalid("receipt type %q", r.Type)
	}
	chat, err := parseJID(r.Chat)
	if err != nil {
		return session.Result{}, invalid("chat: %v", err)
	}
	if err := s.ready(); err != nil {
		return session.Result{}, err
	}
	if err := s.active(ctx); err != nil {
		return session.Result{}, err
	}
	if chat.Server == types.NewsletterServer {
		name := r.Chat // the index's name of the chat: chat.String(), without making it
		if !isJID(chat, name) {
			name = chat.String()
		}
		return s.viewChannel(ctx, chat, name, r.MessageIDs)
	}
	var first [1]stanza // nearly every receipt has one address: no allocation for it
	stanzas, err := s.address(ctx, r, chat, first[:0])
	if err != nil {
		return session.Result{}, err
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	typ, own, err := s.typeAsSent(ctx, r.Type, chat)
	if err != nil {
		return session.Result{}, err
	}
	for _, st := range stanzas {
		// One <receipt> per session.MaxReceiptIDs ids: WhatsApp Web never
		// sends a longer aggregate receipt. A failure stops the rest; the
		// stanzas already written stay sent.
		for ids := range slices.Chunk(st.ids, session.MaxReceiptIDs) {
			// Right before the write: a cluster node that may have lost
			// the session's lease since the call began writes nothing.
			if err := session.Fence(ctx); err != nil {
				return session.Result{}, err
			}
			if own {
				err = guard("SendNode", func() error {
					return s.client.DangerousInternals().SendNode(ctx, receiptNode(ids, ts, st.chat, st.sender, typ))
				})
			} else {
				err = guard("MarkRead", func() error {
					return s.client.MarkRead(ctx, slices.Clone(ids), ts, st.chat, st.sender, typeArg(typ)...)
				})
			}
			if err != nil {
				return session.Result{}, mapError(ctx, err)
			}
			s.index.markRead(r.Chat, ids)
			s.noteActed()
		}
	}
	res := session.Result{Type: session.ReceiptType(typ)}
	if c := stanzas[0].chat; !isJID(c, r.Chat) {
		res.Chat = c.String()
	}
	if sd := stanzas[0].sender; !sd.IsEmpty() && !isJID(sd, r.Sender) {
		res.Sender = sd.String()
	}
	return res, nil
}

// receiptTypes are the receipt types typeAsSent asks MarkRead for, each
// to be passed as its variadic argument (see typeArg). Nothing writes them.
var receiptTypes = [...]types.ReceiptType{
	types.ReceiptTypeRead, types.ReceiptTypeReadSelf, types.ReceiptTypePlayed, types.ReceiptTypePlayedSelf,
}

// typeArg returns typ as MarkRead's variadic argument, which MarkRead reads
// and does not keep: a slice of receiptTypes, where one made for the call,
// through the Client interface, would be allocated every time.
func typeArg(typ types.ReceiptType) []types.ReceiptType {
	if i := slices.Index(receiptTypes[:], typ); i >= 0 {
		return receiptTypes[i : i+1 : i+1]
	}
	return []types.ReceiptType{typ}
}

// stanza is the ids of a receipt that go out with one address.
type stanza struct {
	chat, sender types.JID // sender: empty in direct chats
	ids          []string
}

// hasParticipant reports whether receipts to chat name the message's
// sender: groups and status updates (status@broadcast).
func hasParticipant(chat types.JID) bool {
	return chat.Server == types.GroupServer || chat.Server == types.BroadcastServer
}

// address decides where each id of r goes, as WhatsApp expects it: a
// message the index knows is answered in the form it arrived in — its chat
// JID (a direct chat's LID or phone number, whichever it came from, as
// whatsmeow's own delivery receipts answer the message's from) and, in
// groups and status, its sender as the server named it. The indexed sender
// wins over r.Sender: a receipt naming another participant would reach
// nobody. Other ids go to r.Chat and, in groups, to r.Sender (mapped to its
// LID in a LID-addressed group). The stanzas keep the order of r's ids.
// They are appended to out; when there is one, its ids are r.MessageIDs
// itself, which nothing that sends them modifies.
func (s *Session) address(ctx context.Context, r session.Receipt, chat types.JID, out []stanza) ([]stanza, error) {
	group := hasParticipant(chat)
	var (
		asked     = types.EmptyJID
		askedErr  error
		askedDone bool
	)
	for n, id := range r.MessageIDs {
		st := stanza{chat: chat}
		m, known, err := s.index.get(ctx, r.Chat, id)
		if err != nil {
			return nil, err
		}
		if known {
			if c, err := parseJID(m.chat); err == nil {
				st.chat = c
			}
		}
		if group {
			if known && m.sender != "" {
				st.sender, _ = parseJID(m.sender)
			}
			if st.sender.IsEmpty() {
				if !askedDone {
					askedDone = true
					if asked, askedErr = parseJID(r.Sender); askedErr == nil {
						asked = s.groupSender(ctx, r.Chat, asked)
					}
				}
				if askedErr != nil {
					return nil, invalid("a group receipt needs its sender: %v", askedErr)
				}
				st.sender = asked
			}
		}
		i := slices.IndexFunc(out, func(o stanza) bool { return o.chat == st.chat && o.sender == st.sender })
		if i < 0 {
			if len(out) == 1 {
				// A second address: the ids so far are the first's,
				// capped so that appending to them copies them.
				out[0].ids = r.MessageIDs[:n:n]
			}
			i = len(out)
			out = append(out, st)
		}
		if len(out) > 1 {
			out[i].ids = append(out[i].ids, id)
		}
	}
	if len(out) == 1 {
		out[0].ids = r.MessageIDs
	}
	return out, nil
}

// typeAsSent decides, as WhatsApp Web does, the type that a receipt of the
// asked type goes out with in chat, and whether the Session builds its node
// itself (own) because MarkRead would send another type. With the account's
// read receipts off WhatsApp Web sends read in groups ("read receipts are
// always sent for group chats"), and read-self and played-self in direct
// chats and status updates (whose authors then do not see them viewed, as
// WhatsApp's FAQ says). MarkRead turns read into read-self in groups too (so
// a group read is sent as MarkRead's node with type read: own) and never
// changes played (so it is asked for played-self).
//
// Played in a group goes out as asked whatever the setting. Every other
// receipt waits for the setting: whatsmeow's MarkRead reads it through
// GetPrivacySettings, which swallows a failed query and returns empty
// settings, and then sends read: an account with read receipts off would
// leak blue ticks. So the settings are fetched (again, bypassing
// whatsmeow's cache, after each reconnection) and, if still unknown, the
// receipt is refused with session.ErrNotConnected (HTTP 503 with
// Retry-After); nothing is sent. A successful fetch fills whatsmeow's
// cache, which MarkRead then reads.
func (s *Session) typeAsSent(ctx context.Context, asked session.ReceiptType, chat types.JID) (typ types.ReceiptType, own bool, err error) {
	group := chat.Server == types.GroupServer
	if asked == session.ReceiptPlayed && group {
		return types.ReceiptTypePlayed, false, nil
	}
	refetch := !s.privacyFresh()
	settings, err := s.fetchPrivacy(ctx, refetch)
	if (err != nil || settings.ReadReceipts == "") && !refetch && ctx.Err() == nil {
		settings, err = s.fetchPrivacy(ctx, true)
	}
	switch {
	case err != nil:
		// Not connected, or connected and WhatsApp did not answer (an
		// error, a timeout): ErrNotReady says which.
		err = mapError(ctx, err)
		sentinel := session.ErrNotReady
		if errors.Is(err, session.ErrNotConnected) {
			sentinel = session.ErrNotConnected
		}
		return "", false, fmt.Errorf("%w: the account's read-receipt setting is unknown, not sending %s: %w", sentinel, asked, err)
	case settings.ReadReceipts == "":
		return "", false, fmt.Errorf("%w: the account's read-receipt setting is unknown, not sending %s", session.ErrNotReady, asked)
	}
	off := settings.ReadReceipts == types.PrivacySettingNone
	switch {
	case asked == session.ReceiptPlayed && off:
		return types.ReceiptTypePlayedSelf, false, nil
	case asked == session.ReceiptPlayed:
		return types.ReceiptTypePlayed, false, nil
	case off && group:
		return types.ReceiptTypeRead, true, nil
	case off:
		return types.ReceiptTypeReadSelf, false, nil
	}
	return types.ReceiptTypeRead, false, nil
}

// receiptNode is the <receipt> whatsmeow's MarkRead builds for ids in chat
// (receipt.go), with typ as its type whatever the privacy settings: the
// first id as id, the others in <list><item id=…/></list>, the time in
// seconds and, outside direct chats, the sender as participant; the JIDs
// as JIDs, not strings, as MarkRead puts them.
func receiptNode(ids []types.MessageID, ts time.Time, chat, sender types.JID, typ types.ReceiptType) waBinary.Node {
	node := waBinary.Node{
		Tag: "receipt",
		Attrs: waBinary.Attrs{
			"id":   ids[0],
			"type": string(typ),
			"to":   chat,
			"t":    ts.Unix(),
		},
	}
	if !sender.IsEmpty() && chat.Server != types.DefaultUserServer && chat.Server != types.HiddenUserServer && chat.Server != types.MessengerServer {
		node.Attrs["participant"] = sender.ToNonAD()
	}
	if len(ids) > 1 {
		items := make([]waBinary.Node, len(ids)-1)
		for i, id := range ids[1:] {
			items[i] = waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}}
		}
		node.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	return node
}

// privacyFresh reports whether the privacy settings were fetched since the
// last connection.
func (s *Session) privacyFresh() bool {
	s.privMu.Lock()
	defer s.privMu.Unlock()
	return s.privacyAt >= s.connects
}

// fetchPrivacy asks whatsmeow for the privacy settings, from its cache
// unless refetch, and records a successful fetch. It never returns nil
// settings without an error.
func (s *Session) fetchPrivacy(ctx context.Context, refetch bool) (types.PrivacySettings, error) {
	var gen uint64 // the connection a refetch is for; every receipt reads the cache
	if refetch {
		s.privMu.Lock()
		gen = s.connects
		s.privMu.Unlock()
	}
	var settings *types.PrivacySettings
	err := guard("TryFetchPrivacySettings", func() (err error) {
		settings, err = s.client.TryFetchPrivacySettings(ctx, refetch)
		return err
	})
	if err == nil && settings == nil {
		err = errors.New("no privacy settings")
	}
	if err != nil {
		return types.PrivacySettings{}, err
	}
	if refetch {
		s.privMu.Lock()
		s.privacyAt = max(s.privacyAt, gen)
		s.privMu.Unlock()
	}
	return *settings, nil
}

// groupSender returns the sender as the group addresses its members: in a
// group addressed by LID (see lidGroup), a phone-number sender is mapped to
// its LID through the store's LID map.
func (s *Session) groupSender(ctx context.Context, group string, sender types.JID) types.JID {
	if sender.Server != types.DefaultUserServer || s.device.LIDs == nil || !s.lidGroup(ctx, group) {
		return sender
	}
	lid, err := s.device.LIDs.GetLIDForPN(ctx, sender)
	if err != nil || lid.IsEmpty() {
		return sender
	}
	return lid.ToNonAD()
}

// lidGroup reports whether group addresses its members by LID: as its
// newest indexed message from another member was addressed (the account's
// own messages carry its phone number in history syncs whatever the
// group's addressing) or, when the index holds none, as WhatsApp answers
// GetGroupInfo (see askGroupMode), asked once per group at a time —
// concurrent requests about the group wait for the one query — and
// remembered (a group-change event forgets it sooner). whatsmeow's
// GetGroupInfo also stores the LIDs of the members it lists, which
// groupSender then maps to.
func (s *Session) lidGroup(ctx context.Context, group string) bool {
	if lid, known := s.index.groupMode(ctx, group); known {
		return lid
	}
	if !isGroup(group) {
		return false // status@broadcast
	}
	jid, err := parseJID(group)
	if err != nil {
		return false
	}
	return s.groups.mode(ctx, group, func(ctx context.Context) (bool, time.Duration) {
		return s.askGroupMode(ctx, jid)
	})
}

// askGroupMode asks WhatsApp whether group addresses its members by LID,
// and says how long the answer holds: an answer for groupModeTTL (a group
// WhatsApp says does not exist or the account is not in is addressed by
// phone number); a failed query (not connected, timed out, an error answer)
// is taken as phone numbers, as before asking, for groupModeFailureTTL; a
// query cut short by the end of ctx tells nothing and is not remembered.
func (s *Session) askGroupMode(ctx context.Context, group types.JID) (lid bool, ttl time.Duration) {
	var info *types.GroupInfo
	err := guard("GetGroupInfo", func() (err error) {
		info, err = s.client.GetGroupInfo(ctx, group)
		return err
	})
	switch {
	case err == nil && info != nil:
		return info.AddressingMode == types.AddressingModeLID, groupModeTTL
	case errors.Is(err, whatsmeow.ErrGroupNotFound), errors.Is(err, whatsmeow.ErrNotInGroup):
		return false, groupModeTTL
	case ctx.Err() != nil:
		return false, 0
	}
	s.opts.logger.Warn("asking a group's addressing mode failed; addressing its members by phone number for a while",
		"group", group.String(), "retry_in", groupModeFailureTTL, "error", err)
	return false, groupModeFailureTTL
}

// viewChannel sends a channel view receipt. Channel messages are addressed
// by numeric server ids: an id that is not one must be an indexed message
// of the channel. name is chat.String().
func (s *Session) viewChannel(ctx context.Context, chat types.JID, name string, ids []string) (session.Result, error) {
	serverIDs := make([]types.MessageServerID, 0, len(ids))
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil || n <= 0 {
			m, ok, err := s.index.get(ctx, name, id)
			if err != nil {
				return session.Result{}, err
			}
			if !ok || m.serverID == 0 {
				return session.Result{}, invalid("channel message %q: not a numeric server id, nor a known message", id)
			}
			n = int(m.serverID)
		}
		serverIDs = append(serverIDs, types.MessageServerID(n))
	}
	select {
	case s.views <- struct{}{}:
	case <-ctx.Done():
		return session.Result{}, ctx.Err()
	}
	if err := session.Fence(ctx); err != nil {
		<-s.views
		return session.Result{}, err
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-s.views }()
		done <- guard("NewsletterMarkViewed", func() error {
			return s.client.NewsletterMarkViewed(ctx, chat, serverIDs)
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			return session.Result{}, mapError(ctx, err)
		}
	case <-ctx.Done():
		return session.Result{}, ctx.Err()
	}
	s.index.markRead(name, ids)
	s.noteActed()
	return session.Result{Type: session.ReceiptView}, nil
}

// noteActed notes that a receipt or typing indicator went out now, for
// Status.
func (s *Session) noteActed() {
	s.acted.Store(time.Now().UnixMilli())
}

// ResolveMessage returns what the index knows of message id in chat, or an
// error wrapping session.ErrMessageNotFound. The message is Read once a
// read, played or view receipt for it went out through the Session, or
// another of the account's devices sent a read or played receipt for it
// (or, from a history sync, WhatsApp did not count it unread).
func (s *Session) ResolveMessage(ctx context.Context, chat, id string) (session.Message, error) {
	m, ok, err := s.index.get(ctx, chat, id)
	if err != nil {
		return session.Message{}, err
	}
	if !ok {
		// Nearly every request asks about a message the index does not
		// know (sent before the session started, or never indexed): the
		// error is formatted only if someone prints it.
		return session.Message{}, &notIndexedError{chat: chat, id: id}
	}
	return m.message(chat), nil
}

// notIndexedError is ResolveMessage's session.ErrMessageNotFound.
type notIndexedError struct{ chat, id string }

func (e *notIndexedError) Error() string {
	return session.ErrMessageNotFound.Error() + ": " + e.id + " in " + e.chat
}

func (e *notIndexedError) Unwrap() error { return session.ErrMessageNotFound }

// UnreadMessages lists chat's newest indexed incoming messages that no
// receipt has marked read yet, oldest first.
func (s *Session) UnreadMessages(ctx context.Context, chat string, limit int) ([]session.Message, error) {
	found, err := s.index.unread(ctx, chat, limit)
	if err != nil {
		return nil, err
	}
	out := make([]session.Message, len(found))
	for i, m := range found {
		out[i] = m.message(chat)
	}
	return out, nil
}

func (m indexed) message(chat string) session.Message {
	return session.Message{Chat: chat, ID: m.id, Sender: m.sender, FromMe: m.fromMe, Read: m.read, Timestamp: m.timestamp}
}

// MarkChatReadNow clears chat's unread badge on the account's other devices,
// now, with an app-state patch up to the chat's newest indexed message, with its
// real timestamp and in the form it arrived in (the chat's LID or phone
// number, the sender as the group named it); for a chat the index knows
// nothing of, up to c.LastMessageID at c.Timestamp, its sender mapped as
// the receipt's; with no c.LastMessageID, for such a chat, it sends
// nothing and returns an error wrapping session.ErrMessageNotFound. It
// fails until the phone
// has shared the app-state keys, which can take a while after pairing.
// Channels have no such badge: for them, and when [WithMarkChatRead](false)
// is set, it returns an error wrapping errors.ErrUnsupported. It costs two
// store queries and a round trip to WhatsApp, and each patch a new version
// of the account's app state: the HTTP handler uses [Session.MarkChatRead]
// instead, which marks each chat read once per window, in the background,
// many chats in one patch.
func (s *Session) MarkChatReadNow(ctx context.Context, c session.ChatRead) error {
	patch, err := s.chatReadPatch(ctx, c, "")
	if err != nil {
		return err
	}
	return s.sendAppState(ctx, patch)
}

// sendAppState sends patch, one of the Session's own, stamped by
// stampPatch: whatsmeow fetches the app state after sending and dispatches
// the patch's mutations back as events (events.MarkChatAsRead …), which
// are not the account acting on another device.
func (s *Session) sendAppState(ctx context.Context, patch appstate.PatchInfo) error {
	patch.Timestamp = s.stampPatch()
	return guard("SendAppState", func() error { return s.client.SendAppState(ctx, patch) })
}

// chatReadPatch builds the app-state patch that marks c's chat read, as
// MarkChatReadNow describes, with index as the mutation's chat (the form the
// chat is marked unread in) or, when "", the chat as its newest message
// names it.
func (s *Session) chatReadPatch(ctx context.Context, c session.ChatRead, index string) (appstate.PatchInfo, error) {
	chat, err := s.chatReadable(c.Chat)
	if err != nil {
		return appstate.PatchInfo{}, err
	}
	// BuildMessageKey and SendAppState panic on a device that was never
	// paired (no own JID, no app-state store).
	if err := s.ready(); err != nil {
		return appstate.PatchInfo{}, err
	}
	id, sender, ts := c.LastMessageID, chat, c.Timestamp // in a direct chat the other party sent it
	m, known, err := s.index.newest(ctx, c.Chat)
	if err != nil {
		return appstate.PatchInfo{}, err
	}
	if known {
		// The chat's newest message, as WhatsApp Web marks a chat read:
		// its real time, and its chat and sender in the form they arrived
		// in, as the receipts are addressed.
		id, ts = m.id, m.timestamp
		if j, err := parseJID(m.chat); err == nil {
			chat, sender = j, j
		}
		if hasParticipant(chat) || m.fromMe {
			if j, err := parseJID(m.sender); err == nil {
				sender = j
			}
		}
	} else if c.LastMessageID == "" {
		return appstate.PatchInfo{}, fmt.Errorf("%w: no message of %s is known", session.ErrMessageNotFound, c.Chat)
	} else if hasParticipant(chat) {
		// Unknown chat: the request's last message, its sender in the
		// form the receipt named it.
		if sender, err = parseJID(c.LastSender); err != nil {
			return appstate.PatchInfo{}, invalid("sender: %v", err)
		}
		sender = s.groupSender(ctx, c.Chat, sender)
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	target := chat
	if index != "" {
		if target, err = parseJID(index); err != nil {
			return appstate.PatchInfo{}, invalid("chat: %v", err)
		}
	}
	var patch appstate.PatchInfo
	err = guard("BuildMessageKey", func() error {
		patch = appstate.BuildMarkChatAsRead(target, true, ts, s.client.BuildMessageKey(chat, sender, id))
		return nil
	})
	return patch, err
}

// handleEvent indexes incoming messages and reads made on other devices,
// notes the account's activity on other devices (auto-read), keeps the
// groups' addressing modes fresh, warms the privacy settings after each
// connection, and notes a connection replaced by another.
func (s *Session) handleEvent(evt any) {
	s.noteActivity(evt)
	switch e := evt.(type) {
	case *events.Message:
		s.noteInactive(e)
		if readable(e) {
			m := indexedFrom(e)
			s.index.add(m)
			s.offer(e, m)
		}
	case *events.HistorySync:
		s.indexHistory(e)
		s.noteMarkEvent(e)
	case *events.MarkChatAsRead:
		s.noteMarkEvent(e)
	case *events.Receipt:
		if e.IsFromMe && readOrPlayed(e.Type) { // read on another of the account's devices
			s.index.markRead(e.Chat.ToNonAD().String(), e.MessageIDs)
		}
	case *events.GroupInfo:
		// Something of the group changed: ask again rather than trust
		// an answer about its addressing from before.
		s.groups.forget(e.JID.ToNonAD().String())
	case *events.JoinedGroup:
		s.groups.put(e.JID.ToNonAD().String(), e.AddressingMode == types.AddressingModeLID)
	case *events.AppStateSyncComplete:
		// whatsmeow syncs app state after the phone shares its keys.
		s.forgetKeys(false)
		// A first, full sync brings the push name without an
		// events.PushNameSetting.
		s.announceNamed()
	case *events.StreamReplaced:
		s.replaced.Store(true)
	case *events.Connected:
		s.replaced.Store(false)
		// The settings may have changed while disconnected: the next
		// read receipt refetches them unless the warm-up has by then.
		s.privMu.Lock()
		s.connects++
		s.privMu.Unlock()
		s.forgetKeys(false)
		if s.opts.warmPrivacy {
			s.onConnection(s.warmPrivacy)
		}
		s.presenceConnected()
	case *events.PushNameSetting:
		// After pairing the push name comes from the phone: presence
		// could not be sent before.
		s.announce()
	}
}

// readOrPlayed reports whether a receipt of type t marks messages read: a
// voice note is played in its chat, open, so played is read too.
func readOrPlayed(t types.ReceiptType) bool {
	switch t {
	case types.ReceiptTypeRead, types.ReceiptTypeReadSelf, types.ReceiptTypePlayed, types.ReceiptTypePlayedSelf:
		return true
	}
	return false
}

// warmPrivacy makes whatsmeow fetch and cache the privacy settings afresh
// (they may have changed while disconnected), so that the first read
// receipt after connecting does not wait for them.
func (s *Session) warmPrivacy(conn context.Context) {
	ctx, cancel := context.WithTimeout(conn, privacyWarmTimeout)
	defer cancel()
	_, err := s.fetchPrivacy(ctx, true)
	if err != nil && conn.Err() == nil {
		s.opts.logger.Warn("fetching privacy settings failed", "error", err)
	}
}

// readable reports whether e is a message WhatsApp shows as one of its
// own, which WhatsApp Web marks read: not a reaction, an edit, a revoke, a
// poll vote, an event response, a pin or keep-in-chat, a comment on an
// announcement (which WhatsApp Web marks read as an add-on of its post,
// like reactions: WAWebMarkAddOnsAsReadAction), or a protocol message
// (history sync, app-state keys, ephemeral settings …), nor a message that
// only carries a sender key. Those are never indexed, so a chat-only
// request sends no receipt for them and none becomes the chat's newest
// message.
func readable(e *events.Message) bool {
	m := e.Message
	switch {
	case m == nil, e.IsEdit, e.Info.Edit != types.EditAttributeEmpty,
		m.GetProtocolMessage() != nil, m.GetReactionMessage() != nil, m.GetEncReactionMessage() != nil,
		m.GetPollUpdateMessage() != nil, m.GetEncEventResponseMessage() != nil,
		m.GetPinInChatMessage() != nil, m.GetKeepInChatMessage() != nil,
		isComment(e):
		return false
	}
	// Strip what rides along with any message; a message with nothing
	// else has no content to read.
	rest := proto.Clone(m).(*waE2E.Message)
	rest.SenderKeyDistributionMessage, rest.MessageContextInfo = nil, nil
	return proto.Size(rest) > 0
}

// isComment reports whether e is a comment on a post of an announcement
// group: as it arrives (EncCommentMessage, its content encrypted with the
// post's message secret), decrypted (CommentMessage), or named by its
// thread — the post it comments, which whatsmeow reads into
// Info.MsgMetaInfo.ThreadMessageID from a live message's <meta
// thread_msg_id> and from a history sync's CommentMetadata.
func isComment(e *events.Message) bool {
	return e.Message.GetEncCommentMessage() != nil || e.Message.GetCommentMessage() != nil ||
		e.Info.MsgMetaInfo.ThreadMessageID != ""
}

func indexedFrom(e *events.Message) indexed {
	info := e.Info
	m := indexed{
		chat:      info.Chat.ToNonAD().String(),
		id:        info.ID,
		sender:    info.Sender.ToNonAD().String(),
		fromMe:    info.IsFromMe,
		timestamp: info.Timestamp,
		played:    e.IsViewOnce || e.Message.GetAudioMessage().GetPTT(),
		lidGroup:  info.IsGroup && info.AddressingMode == types.AddressingModeLID,
	}
	if !info.SenderAlt.IsEmpty() {
		m.senderAlt = info.SenderAlt.ToNonAD().String()
	}
	if info.Chat.Server == types.NewsletterServer {
		m.serverID = int64(info.ServerID)
	}
	if !info.IsGroup && (info.Chat.Server == types.DefaultUserServer || info.Chat.Server == types.HiddenUserServer) {
		alt := info.SenderAlt
		if info.IsFromMe {
			alt = info.RecipientAlt
		}
		if !alt.IsEmpty() {
			m.chatAlt = alt.ToNonAD().String()
		}
	}
	return m
}

// parseJID parses a JID normalised by package validate.
func parseJID(s string) (types.JID, error) {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return types.EmptyJID, fmt.Errorf("%q is not a JID", s)
	}
	// The usual form, user@server with no agent or device in the user:
	// what types.ParseJID returns for it, without its three splits (a
	// request parses its chat a few times on its way).
	if user, server := s[:at], s[at+1:]; !strings.Contains(server, "@") && !strings.ContainsAny(user, ".:") {
		return types.JID{User: user, Server: server}, nil
	}
	j, err := types.ParseJID(s)
	if err != nil {
		return types.EmptyJID, err
	}
	return j.ToNonAD(), nil
}

// isJID reports whether j.String() is s without making the string (three
// allocations in fmt.Sprintf): every receipt's result compares the address
// it went out with to the request's, which nearly always names it so.
func isJID(j types.JID, s string) bool {
	switch {
	case j.Server == "":
		return s == ""
	case j.RawAgent > 0 || j.Device > 0:
		return j.String() == s
	case j.User == "":
		return s == j.Server
	}
	return len(s) == len(j.User)+1+len(j.Server) && s[len(j.User)] == '@' &&
		strings.HasPrefix(s, j.User) && strings.HasSuffix(s, j.Server)
}

func isGroup(chat string) bool { return strings.HasSuffix(chat, "@"+types.GroupServer) }

// mapError turns whatsmeow's errors from a call made under ctx into the
// session package's sentinels. A connection that closed under the call
// (see connectionLost) is session.ErrNotConnected, as one closed before it:
// retry once the client has reconnected (HTTP 503 with Retry-After), not an
// internal error, nor a client that went away.
func mapError(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, whatsmeow.ErrNotConnected):
		return fmt.Errorf("%w: %w", session.ErrNotConnected, err)
	case errors.Is(err, whatsmeow.ErrNotLoggedIn):
		return fmt.Errorf("%w: %w", session.ErrNotLoggedIn, err)
	case errors.Is(err, whatsmeow.ErrIQTimedOut):
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	case connectionLost(ctx, err):
		return fmt.Errorf("%w: the connection closed during the call: %w", session.ErrNotConnected, err)
	}
	return err
}

// connectionLost reports whether err says that the client's connection
// closed under a call made with ctx. The forms it takes, read in whatsmeow
// and coder/websocket (its websocket): whatsmeow's socket.ErrSocketClosed
// (a frame sent after the socket closed) and *whatsmeow.DisconnectedError
// (a query whose connection went away before its answer,
// ErrIQDisconnected); coder/websocket's "failed to write msg: …" wrapping
// net.ErrClosed ("use of closed network connection"), a *net.OpError
// ("write tcp …: broken pipe", "connection reset by peer"), a CloseError or
// io.EOF; and context.Canceled from the frame socket's own context, which
// whatsmeow cancels when it closes the socket (Disconnect, a Manager's
// release when it fences itself), while ctx, the caller's, goes on.
func connectionLost(ctx context.Context, err error) bool {
	var (
		disconnected *whatsmeow.DisconnectedError
		op           *net.OpError
		closed       websocket.CloseError
	)
	switch {
	case errors.Is(err, socket.ErrSocketClosed), errors.As(err, &disconnected), errors.Is(err, net.ErrClosed),
		errors.As(err, &op), errors.As(err, &closed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, context.Canceled):
		return ctx.Err() == nil
	}
	return false
}

// guard runs a whatsmeow call, turning a panic into an error.
func guard(what string, call func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("whatsmeow %s panicked: %v", what, v)
		}
	}()
	return call()
}

// Status reports the client's connection and the device's pairing,
// whether another connection of the device has replaced the client's, and
// when the Session last sent a receipt or typing indicator.
func (s *Session) Status(context.Context) session.Status {
	st := session.Status{Connected: s.client.IsConnected(), LoggedIn: s.client.IsLoggedIn(), Paired: s.paired()}
	st.Replaced = s.replaced.Load()
	if ms := s.acted.Load(); ms != 0 {
		st.Activity = time.UnixMilli(ms)
	}
	if st.Paired {
		st.JID = s.device.ID.ToNonAD().String()
	}
	return st
}
