package whatsmeow_test

import (
	"context"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// fakeClient records what a Session asks of whatsmeow.
type fakeClient struct {
	mu         sync.Mutex
	connected  bool
	loggedIn   bool
	privacy    types.PrivacySetting // the readreceipts setting answered
	privacyErr error
	privacyN   int                                // privacy queries
	groups     map[types.JID]types.AddressingMode // GetGroupInfo's answers; others: not found
	groupN     int                                // group-info queries
	groupErr   error                              // GetGroupInfo fails with it when set
	groupBlock chan struct{}                      // GetGroupInfo waits for it (or its ctx) when set

	markErr   error
	markBlock chan struct{} // MarkRead waits for it when set, ignoring its ctx (a write lock held by a stalled write)
	viewErr   error
	viewBlock chan struct{} // NewsletterMarkViewed waits for it when set
	appErr    error
	appPanic  bool

	presences  []types.Presence
	chatStates []chatState
	markReads  []markRead
	views      []view
	patches    []appstate.PatchInfo
	keys       []msgKey
	handlers   map[uint32]whatsmeow.EventHandler
	nextID     uint32
}

var _ bwm.Client = (*fakeClient)(nil)

type markRead struct {
	ids          []types.MessageID
	ts           time.Time
	chat, sender types.JID
	extra        []types.ReceiptType
}

type chatState struct {
	chat  types.JID
	state types.ChatPresence
	at    time.Time // when it was sent (the bubble's clock under synctest)
}

type view struct {
	jid types.JID
	ids []types.MessageServerID
}

type msgKey struct {
	chat, sender types.JID
	id           string
}

func newFakeClient() *fakeClient {
	return &fakeClient{connected: true, loggedIn: true, privacy: types.PrivacySettingAll, handlers: map[uint32]whatsmeow.EventHandler{}}
}

func (f *fakeClient) MarkRead(_ context.Context, ids []types.MessageID, ts time.Time, chat, sender types.JID, extra ...types.ReceiptType) error {
	f.mu.Lock()
	block := f.markBlock
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.markErr != nil {
		return f.markErr
	}
	f.markReads = append(f.markReads, markRead{ids, ts, chat, sender, extra})
	return nil
}

// DangerousInternals is whatsmeow's, of a client that never connects: its
// SendNode fails with whatsmeow.ErrNotConnected. The nodes a Session sends
// through it are asserted in the wire tests.
func (f *fakeClient) DangerousInternals() *whatsmeow.DangerousInternalClient {
	//lint:ignore SA1019 the Client seam's method, which the Session needs (client.go says why)
	return parser.DangerousInternals()
}

func (f *fakeClient) NewsletterMarkViewed(_ context.Context, jid types.JID, ids []types.MessageServerID) error {
	f.mu.Lock()
	block, err := f.viewBlock, f.viewErr
	f.mu.Unlock()
	if block != nil {
		<-block // like whatsmeow: no ctx while waiting for the answer
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views = append(f.views, view{jid, ids})
	return nil
}

func (f *fakeClient) SendAppState(_ context.Context, patch appstate.PatchInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.appPanic {
		panic("nil app state store")
	}
	if f.appErr != nil {
		return f.appErr
	}
	f.patches = append(f.patches, patch)
	return nil
}

func (f *fakeClient) BuildMessageKey(chat, sender types.JID, id types.MessageID) *waCommon.MessageKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, msgKey{chat, sender, id})
	return &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), ID: proto.String(id), FromMe: proto.Bool(false)}
}

func (f *fakeClient) TryFetchPrivacySettings(context.Context, bool) (*types.PrivacySettings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.privacyN++
	if f.privacyErr != nil {
		return nil, f.privacyErr
	}
	return &types.PrivacySettings{ReadReceipts: f.privacy}, nil
}

func (f *fakeClient) GetGroupInfo(ctx context.Context, jid types.JID) (*types.GroupInfo, error) {
	f.mu.Lock()
	f.groupN++
	block := f.groupBlock
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groupErr != nil {
		return nil, f.groupErr
	}
	mode, ok := f.groups[jid]
	if !ok {
		return nil, whatsmeow.ErrGroupNotFound
	}
	return &types.GroupInfo{JID: jid, AddressingMode: mode}, nil
}

// ParseWebMessage is whatsmeow's, on a client of a device paired as ownJID.
func (f *fakeClient) ParseWebMessage(chat types.JID, msg *waWeb.WebMessageInfo) (*events.Message, error) {
	return parser.ParseWebMessage(chat, msg)
}

// parser is a whatsmeow client used only for its ParseWebMessage, which
// needs nothing but the device's JID, and for DangerousInternals.
var parser = func() *whatsmeow.Client {
	id := ownJID
	return whatsmeow.NewClient(&store.Device{ID: &id}, nil)
}()

func (f *fakeClient) SendPresence(_ context.Context, state types.Presence) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presences = append(f.presences, state)
	return nil
}

func (f *fakeClient) SendChatPresence(_ context.Context, chat types.JID, state types.ChatPresence, _ types.ChatPresenceMedia) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chatStates = append(f.chatStates, chatState{chat, state, time.Now()})
	return nil
}

func (f *fakeClient) IsConnected() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.connected }
func (f *fakeClient) IsLoggedIn() bool  { f.mu.Lock(); defer f.mu.Unlock(); return f.loggedIn }

func (f *fakeClient) AddEventHandler(h whatsmeow.EventHandler) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.handlers[f.nextID] = h
	return f.nextID
}

func (f *fakeClient) RemoveEventHandler(id uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.handlers[id]
	delete(f.handlers, id)
	return ok
}

// emit delivers evt to the handlers, as whatsmeow does.
func (f *fakeClient) emit(evt any) {
	f.mu.Lock()
	hs := make([]whatsmeow.EventHandler, 0, len(f.handlers))
	for _, h := range f.handlers {
		hs = append(hs, h)
	}
	f.mu.Unlock()
	for _, h := range hs {
		h(evt)
	}
}

func (f *fakeClient) set(fn func(*fakeClient)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// chatStatesSent returns the chatstates sent so far, in order.
func (f *fakeClient) chatStatesSent() []chatState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chatState(nil), f.chatStates...)
}

func (f *fakeClient) recorded() ([]markRead, []view, []appstate.PatchInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]markRead(nil), f.markReads...), append([]view(nil), f.views...), append([]appstate.PatchInfo(nil), f.patches...)
}
