// Package queue sends the receipts of asynchronous requests later: a
// [Worker] is the seenhandler.Later of a handler. It keeps each request's
// receipts as a [Job] in a [Queue] — in memory ([Memory], the default), or
// in SQLite or PostgreSQL (package seenhandler/queue/sqlqueue) across
// restarts and processes — and sends them after a random, human-like
// delay, paced per session, fairly across sessions, retrying while the
// session is down, through the handler's own send path
// (seenhandler.Handler.SendDeferred). It also runs auto-read
// (Options.Arrivals). Package seenhandler does not import this one.
//
//	w, err := queue.New(queue.Options{}) // a memory queue; Options.Queue: sqlqueue.New(…) for a durable one
//	if err != nil { … }
//	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth), seenhandler.WithLater(w))
//	if err != nil { … }
//	w.Start(h)
//
// Shutting down, each step with the same ctx, in this order:
//
//  1. http.Server.Shutdown(ctx): no new connections; the requests under
//     way are answered.
//  2. h.Shutdown(ctx): a request that still comes gets 503 shutting_down.
//  3. w.Shutdown(ctx): auto-read ends; a memory queue is sent now, paced,
//     until ctx ends (what is left is counted failed), a durable one
//     keeps its jobs for the next start.
//  4. The registry's Close (session.Decorate's batches flush), then the
//     queue's database.
//
// [Worker.Stats] is the one way to read the queue's counts; a status
// request reads its session's the same way. queuetest checks a [Queue]
// implementation.
package queue
