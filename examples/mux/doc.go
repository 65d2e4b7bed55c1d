// Command mux is a Go app — a CRM, say — with its own WhatsApp client and
// its own gorilla/mux router, that serves bluetick's "mark as seen"
// endpoints beside its other routes, for its one WhatsApp number:
//
//	POST /api/sendSeen    {"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]}   (WAHA)
//	POST /sendSeen        {"to":"15551234567","messageId":"3EB0C767D26A1D98A4"}            (Wasend)
//	POST /v2/send/seen    {"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]}   (Wawp)
//	GET  /api/sessions/default, GET /api/sessions, GET /v2/session/status
//
// The app makes its whatsmeow client as any whatsmeow app does (a sqlstore
// container on a SQLite file, its first device, whatsmeow.NewClient, a QR
// code to scan the first time, Connect); mountSeen wraps that client
// (session/whatsmeow's New) and registers the handler's Routes on the
// app's router. session.Single makes the client the one session, so
// requests name none. The app authenticates its users in its own
// middleware (here an API token per user, $CRM_TOKEN or demo-token) and
// the handler reads the user it put in the request's context.
//
//	go run ./examples/mux -db crm-whatsapp.db
//
// gorilla/mux is a dependency of the root module for this example and tests:
// importing seenhandler or session never links it.
package main
