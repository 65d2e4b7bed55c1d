// Package fakewa is a fake WhatsApp websocket server for wire tests of the
// whatsmeow backend. A real, unmodified *whatsmeow.Client connects to it with
// the normal Connect: it runs the Noise_XX_25519_AESGCM_SHA256 handshake
// against a certificate chain signed by a fake root key, logs in as an
// already-paired device and then talks to the fake, which records every node
// it receives and answers just enough (query results, privacy settings,
// receipt acks) for whatsmeow to carry on.
//
// Typical use, in a test:
//
//	srv := fakewa.Start(t, fakewa.WithReadReceipts("all"))
//	dev, _ := fakewa.NewDevice(t)
//	cli := srv.Connect(t, dev)
//	_ = cli.MarkRead(ctx, []types.MessageID{"ID1"}, ts, chat, types.EmptyJID)
//	got := srv.WaitNode(t, 5*time.Second, func(n waBinary.Node) bool { return n.Tag == "receipt" })
//	// fakewa.XML(got) == `<receipt id="ID1" t="…" to="…" type="read"/>`
//
// Like WhatsApp, the server allows one connection per device: a second one
// replaces the first, which gets <stream:error><conflict type="replaced"/>
// (Server.Replaced counts them, Server.MaxConcurrent and
// Server.ConnectedDevices tell who was and is connected).
//
// The client reaches the server through Server.HTTPClient, given to
// Client.SetWebsocketHTTPClient: it dials 127.0.0.1 whatever host whatsmeow
// asks for and trusts the server's TLS certificate. Nothing leaves the
// loopback interface.
//
// # Not parallel
//
// whatsmeow verifies the server's certificate against the package variable
// whatsmeow.WACertPubKey. Start replaces it with the fake root key and t's
// cleanup restores it. Several servers may be alive at once (they share the
// fake root), but tests using this package must not run in parallel with
// anything that needs the real key or sets the variable itself: do not call
// t.Parallel in them.
//
// # App state
//
// The server keeps each account's app-state patches and answers fetches
// with them, as WhatsApp does, so that a client applies its own patches
// back. The account's phone (AddAppStateKey gives it a key) decodes every
// patch a client sends with whatsmeow's own appstate processor, MACs and
// LTHash verified, as the account's other devices would: a patch they
// would reject is refused (AppStateRejections); those taken are listed
// decoded (AppStatePatches). PhonePatch sends a patch from the phone, as
// when its owner marks a chat unread there.
//
// # Logs
//
// The log of whatsmeow (clients made by Server.NewClient and Server.Connect,
// and the store of NewDevice) and of the server is kept in memory and printed
// with t.Log only when the test has failed.
package fakewa
