package whatsmeow

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Client is the part of *whatsmeow.Client a [Session] uses; tests substitute
// a fake. The facts a [Session] relies on, from whatsmeow's source:
//   - MarkRead is fire-and-forget and does not check the login: a [Session]
//     checks IsConnected and IsLoggedIn first. Its first call per client
//     blocks on a privacy-settings query (warmed after connecting), and it
//     silently sends read-self instead of read for channels and when the
//     account's read-receipt privacy is "nobody".
//   - MarkRead reads the privacy settings through GetPrivacySettings, which
//     swallows a failed query and returns empty settings (then it sends
//     read); whatsmeow caches them for the client's lifetime, reconnections
//     included. A [Session] fetches them itself before sending read.
//   - MarkRead leaves played alone and, with read receipts off, turns read
//     into read-self in groups too, where WhatsApp Web sends read ("read
//     receipts are always sent for group chats"). whatsmeow exports no
//     method that sends a node as built but DangerousInternals().SendNode
//     (deprecated, for it reaches whatsmeow's unexported methods): a
//     [Session] uses it for that one receipt, with the node MarkRead builds
//     but its type, and asks MarkRead for played-self itself.
//   - MarkRead puts every id in one <receipt>; WhatsApp Web caps an
//     aggregate receipt at 256 ids (session.MaxReceiptIDs).
//   - Event handlers run under a read lock that RemoveEventHandler takes
//     for writing: removing a handler from inside one deadlocks the
//     client's dispatch. A device_removed stream error is dispatched as
//     events.LoggedOut, after whatsmeow has deleted the device from the store.
//   - Auto-reconnect waits 2 s × failed attempts, without bound, unless
//     AutoReconnectHook lowers AutoReconnectErrors ([Manager] caps it).
//     The first attempt after a drop waits 0 s. Its loop and the socket
//     run under the context given to ConnectContext: cancelling it closes
//     the connection and ends the loop.
//   - A <stream:error><conflict type="replaced"/> (another connection of
//     the device) is dispatched as events.StreamReplaced; whatsmeow then
//     expects the disconnection and does not reconnect, but leaves the
//     socket to the server. Stream errors go through the handler queue,
//     apart from the read loop: a close right behind one can be seen
//     first, as events.Disconnected, and then whatsmeow reconnects at once
//     ([Manager] disconnects on StreamReplaced, which stops that).
//   - NewsletterMarkViewed ignores ctx while it waits for the server's
//     answer: a [Session] bounds the wait itself.
//   - SendAppState fails until app-state keys have arrived from the phone.
//   - GetGroupInfo asks WhatsApp every time (one <iq xmlns="w:g2"> round
//     trip; whatsmeow's own group cache is not consulted), stores the LID ↔
//     phone-number pairs of the members it lists in the device's LID store,
//     and fails with ErrGroupNotFound or ErrNotInGroup for a group the
//     account cannot see. Its AddressingMode is "lid" for a group that
//     addresses its members by LID.
//   - SendPresence refuses to send without a push name (ErrNoPushName)
//     and puts it in the node: <presence name="…" type="available"/>.
//     Sending "available" makes whatsmeow send delivery receipts without
//     type="inactive" (rendered as two grey ticks) until "unavailable" is
//     sent; a reconnection does not reset that, but WhatsApp starts each
//     connection unavailable.
//   - SendChatPresence sends <chatstate from=own to=chat><composing/>
//     </chatstate> (or <paused/>); it fails only when not logged in.
//     Nothing clears "composing" but a later chatstate or WhatsApp's own
//     timeout in the apps.
//   - ParseWebMessage turns a history sync's message into the
//     events.Message a live one would be (without SenderAlt or
//     AddressingMode, which the web message does not carry).
type Client interface {
	MarkRead(ctx context.Context, ids []types.MessageID, timestamp time.Time, chat, sender types.JID, receiptTypeExtra ...types.ReceiptType) error
	DangerousInternals() *whatsmeow.DangerousInternalClient
	NewsletterMarkViewed(ctx context.Context, jid types.JID, serverIDs []types.MessageServerID) error
	SendAppState(ctx context.Context, patch appstate.PatchInfo) error
	BuildMessageKey(chat, sender types.JID, id types.MessageID) *waCommon.MessageKey
	TryFetchPrivacySettings(ctx context.Context, ignoreCache bool) (*types.PrivacySettings, error)
	GetGroupInfo(ctx context.Context, jid types.JID) (*types.GroupInfo, error)
	ParseWebMessage(chatJID types.JID, webMsg *waWeb.WebMessageInfo) (*events.Message, error)
	SendPresence(ctx context.Context, state types.Presence) error
	SendChatPresence(ctx context.Context, jid types.JID, state types.ChatPresence, media types.ChatPresenceMedia) error
	IsConnected() bool
	IsLoggedIn() bool
	AddEventHandler(handler whatsmeow.EventHandler) uint32
	RemoveEventHandler(id uint32) bool
}

var _ Client = (*whatsmeow.Client)(nil)
