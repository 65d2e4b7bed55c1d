package whatsmeow

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/types"
)

// Client is the part of *whatsmeow.Client a Session uses; tests substitute
// a fake. The facts a Session relies on, from whatsmeow's source:
//   - MarkRead is fire-and-forget and does not check the login: a Session
//     checks IsConnected and IsLoggedIn first. Its first call per client
//     blocks on a privacy-settings query (warmed after connecting), and it
//     silently sends read-self instead of read for channels and when the
//     account's read-receipt privacy is "nobody".
//   - NewsletterMarkViewed ignores ctx while it waits for the server's
//     answer: a Session bounds the wait itself.
//   - SendAppState fails until app-state keys have arrived from the phone.
type Client interface {
	MarkRead(ctx context.Context, ids []types.MessageID, timestamp time.Time, chat, sender types.JID, receiptTypeExtra ...types.ReceiptType) error
	NewsletterMarkViewed(ctx context.Context, jid types.JID, serverIDs []types.MessageServerID) error
	SendAppState(ctx context.Context, patch appstate.PatchInfo) error
	BuildMessageKey(chat, sender types.JID, id types.MessageID) *waCommon.MessageKey
	TryFetchPrivacySettings(ctx context.Context, ignoreCache bool) (*types.PrivacySettings, error)
	IsConnected() bool
	IsLoggedIn() bool
	AddEventHandler(handler whatsmeow.EventHandler) uint32
	RemoveEventHandler(id uint32) bool
}

var _ Client = (*whatsmeow.Client)(nil)
