// Package seenhandler is an http.Handler that marks WhatsApp messages as
// seen (the blue ticks). It accepts the request bodies of three public
// gateways unchanged, so clients keep sending what they send today:
//
//   - Wasend: POST /sendSeen {"session","to","messageId"}, Authorization: Bearer <token>
//   - Wawp:   POST /v2/send/seen {"instance_id","access_token","chatId","messageIds":[…],"participant"} (or X-Instance-ID: <instance>)
//   - WAHA:   POST /api/sendSeen {"session","chatId","messageIds":[…],"participant"}, X-Api-Key: <token>
//
// All three go through one decode path: session = instance_id, chatId = to,
// and the ids are messageId ∪ messageIds (deduplicated; WAHA's serialized
// ids such as "false_123@c.us_3EB0…" are understood). On WAHA's path a
// request without a session goes to the session "default", as WAHA's
// SendSeenRequest defaults it; the other paths require one. An app with one
// WhatsApp account passes session.Single(s) as the registry: every request
// then goes to s, with a session name or without, and is answered as the
// session "default". An optional
// "type":"played" sends played receipts for voice notes and view-once media.
//
// The handler authenticates the token, validates and normalises the chat and
// ids (package validate), finds the session in a session.Registry, groups the
// ids into one receipt per sender, and answers with what was actually sent:
//
//	reg := session.NewMemoryRegistry()
//	reg.Set("support", mySession)
//	auth, _ := seenhandler.NewStaticAuth(map[string][]string{"secret": {"support"}})
//	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth))
//	if err != nil { … }
//	mux := http.NewServeMux()
//	seenhandler.Mount(mux, h) // /sendSeen, /v2/send/seen, /api/sendSeen, and the status paths
//
// The same [Handler] answers a session's state (GET
// /v2/session/status?session=NAME, GET /api/sessions/{session}) and WAHA's
// session list (GET /api/sessions); [Routes] lists every endpoint with its
// handler, for routers [Mount] does not fit. The answers' bodies are
// described by the [OpenAPI] document (served with [WithOpenAPI]): it is
// the contract for clients, and the tests check every answer against it.
// To batch
// or deduplicate receipts across requests, wrap the registry in
// session.Decorate, and close it after [Handler.Shutdown].
//
// With [WithLater], a request may ask to be answered 202 at once (201 with
// "accepted": true on WAHA's path, which answers every success 201 as WAHA
// does): its receipts go to the [Later] (package seenhandler/queue: a
// worker over a queue in memory, or in SQLite or PostgreSQL with
// seenhandler/queue/sqlqueue) before the answer, which sends them after a
// human-like delay through [Handler.SendDeferred]. This package links no
// queue and no database driver.
//
// Every error answer has the body
// {"success":false,"message","error":{"code","message","fields":[{"field","rule","message"}]}}
// with the statuses listed beside the [Code] constants; a backend's own error
// text is logged ([WithLogger]), never sent to the client. [WriteError]
// answers in the same format, for middleware in front of the handler.
//
// Optional parts live beside it, so that nobody links what they do not
// use: seenhandler/ratelimit (in-memory [Limiter]s for [WithRateLimit]),
// seenhandler/promobserver (Prometheus metrics for [WithObserver]) and
// seenhandler/queue.
package seenhandler
