// Package whatsmeow is bluetick's real backend: sessions that send read
// receipts through go.mau.fi/whatsmeow. It lives apart from package session
// so that importing seenhandler or session never links whatsmeow.
//
// [New] wraps a *whatsmeow.Client the program already runs (it connects,
// pairs and closes it): the [Session] is a session.Session for the HTTP
// handler. With the default options it sends nothing on its own — no
// presence, no delivery receipts, no app-state patch, no query at
// connection. A read request sends exactly:
//   - one privacy-settings query (<iq xmlns="privacy">), the first time
//     after each connection: the account's read-receipt setting decides
//     the receipt's type (read, or read-self when they are off);
//   - the <receipt> itself (one per 256 ids; a channel's view receipt);
//   - in a group, when the request names its sender by phone number and
//     no message of the group has been seen, one group-info query (<iq
//     xmlns="w:g2">), remembered for an hour: a group that addresses its
//     members by LID is answered with the sender's LID.
//
// Typing sends <chatstate> only when asked. [WithPresence],
// [WithMarkChatRead] and [WithAutoRead] turn on more, each saying what.
//
// A [Manager] keeps bluetick's own sessions: it opens a whatsmeow device
// store (a SQLite file, or PostgreSQL for a "postgres://" DSN), runs one
// client per stored device, names them, pairs new ones by QR code or pair
// code, and is the session.Registry the HTTP handler looks sessions up in.
// The program registers the store's database/sql driver, database/sql
// style — import _ "modernc.org/sqlite" (pure Go) or _
// "github.com/jackc/pgx/v5/stdlib" — so that a program that only wraps a
// client links no database; Open without it says which import to add.
// Its sessions look like a person reading (presence [PresenceReading]),
// clear the marks of chats marked unread and fetch the privacy settings
// after each connection:
//
//	m, err := whatsmeow.Open(ctx, "bluetick.db")
//	if err != nil { … }
//	defer m.Close()
//	if err := m.Start(ctx); err != nil { … } // connect every stored session
//	if len(m.Names()) == 0 {
//		events, err := m.Pair(ctx, "default", "") // show each PairQRCode event's Code as a QR code
//		…
//	}
//	h, err := seenhandler.New(m, seenhandler.WithAuth(auth))
//
// Each [Session] checks what whatsmeow does not (connected, logged in) before
// it sends, reports the receipt type as WhatsApp gets it (read-self or
// played-self outside groups when the account's read receipts are off, as
// WhatsApp Web sends them; view for channels), indexes incoming
// messages and history syncs (to find a group message's sender, skip the
// account's own messages, find a channel message's server id, and list a
// chat's unread messages), and clears the chat's unread badge on the
// account's other devices after read receipts when the account's owner
// marked the chat unread ([WithMarkChatRead]) — in the background, once
// per chat per window (WithChatReadWindow), many chats in one app-state
// patch, once the phone has shared its app-state keys. A [Manager] keeps that index
// in the store (table bluetick_message, keyed by the device, written in
// batches by a goroutine Close stops; [WithIndexRetention]) behind one
// memory cache for all its sessions ([WithIndexCache]), so that it survives
// a restart. New wraps a client you manage yourself; its index is in memory
// ([WithIndexSize]).
//
// [Session.SendReceipt] returns, wrapped so that errors.Is finds them:
// ctx's error; session.ErrInvalidReceipt when WhatsApp cannot take the
// receipt as asked (no ids, a type other than read or played, a chat that
// is no JID, a group or status receipt with no sender for an id whose
// sender the index does not know, a channel id that is neither a numeric
// server id nor an indexed message) — the HTTP handler's 400
// invalid_receipt; session.ErrNotLoggedIn when the device is not paired
// (with a Retry-After while pairing waits to reach WhatsApp);
// session.ErrNotConnected when the connection is down, not yet
// authenticated, or the account could not go online; session.ErrNotReady
// (an ErrNotConnected) while connected but waiting for WhatsApp (the
// account's read-receipt setting, the push name after pairing);
// context.DeadlineExceeded when WhatsApp does not answer a query in time;
// any other error (the message store, whatsmeow itself) is the handler's
// 500. It never returns session.ErrMessageNotFound: an id the index does
// not know goes out as asked, to the request's chat (and, in groups, its
// sender), so no 404 message_not_found comes from this backend.
package whatsmeow
