// Command server is a complete bluetick server: the three "mark as seen"
// endpoints (/sendSeen, /v2/send/seen, /api/sendSeen) and the session status
// endpoints (GET /v2/session/status?session=NAME, GET /api/sessions/{name})
// behind an API token, plus GET /healthz.
//
// Real mode sends read receipts through WhatsApp (go.mau.fi/whatsmeow). It
// keeps its sessions in a SQLite file (bluetick.db) or PostgreSQL (-db
// postgres://…); with no session stored yet, it pairs one called "default"
// and prints its QR code (or, with -pair-phone, a pair code):
//
//	BLUETICK_TOKEN=s3cret go run ./examples/server
//	go run ./examples/server -token s3cret -db postgres://bt@127.0.0.1/bt -pair-phone +15551234567
//
// Demo mode answers from an in-memory fake (package sessiontest) instead of
// WhatsApp:
//
//	go run ./examples/server -demo   # token demo-token, session demo
//	go run ./examples/server -demo -v -sessions support,sales -addr 127.0.0.1:9090
//	go run ./examples/server -demo -sessions demo,down -offline down   # "down" answers 503
//
// With -async, requests are answered 202 and sent after a human-like
// delay; the queue lives in the store (real mode, or -demo with -db FILE),
// so that a crash or a stop loses nothing accepted:
//
//	go run ./examples/server -demo -async -db demo.db -v
//
// SIGINT or SIGTERM stops it gracefully (requests in flight get
// -shutdown-timeout, then the queue is flushed or kept, and the counts are
// printed); a second signal stops it at once, the store keeping the queue.
//
// The start-up lines (address, sessions, QR codes, a curl command to try)
// go to stderr. With -v each receipt sent is logged as one JSON line on
// stdout; without it, warnings and errors are logged as text on stderr.
package main
