// Package sessiontest helps test code built on package session, in the way
// net/http/httptest helps with net/http.
//
// [Fake] is a race-safe backend that records every receipt and can be told
// to fail, wait or panic, for any session, chat or call:
//
//	fake := sessiontest.New()
//	reg := fake.Registry("support")          // a session.Registry with one session
//	fake.Inject(sessiontest.Fault{Chat: "123456789@s.whatsapp.net", Err: session.ErrNotConnected})
//	// … exercise the code under test with reg …
//	for _, r := range fake.Receipts() { … }  // what was sent
//
// [Run] is a conformance suite that any session.Session implementation can
// run against itself; the Fake passes it.
//
// [Arrivals] is a session.ArrivalSource fed by hand, for tests of
// auto-read (seenhandler/queue's Options.Arrivals).
//
// # The Fake answers like the real backend
//
// Through the HTTP handler, the Fake answers as the whatsmeow backend
// (package session/whatsmeow) does in the same state: the same statuses,
// error codes, receipts (type as sent, the sender a message was seen from),
// skipped ids, chatRead, typing and reason. A test of that package
// (TestFakeAnswersLikeTheRealBackend) holds the two to it, scenario by
// scenario, over a real whatsmeow client on a fake WhatsApp server. In
// particular: a chat needs more than its read receipts (chatRead
// "scheduled") only when its owner marked it unread ([Fake.MarkUnread]); a
// channel id that is neither numeric nor a message added with AddMessage
// is a 400 invalid_receipt; nobody sees typing in channels and status
// updates; neither backend answers 404 message_not_found (an id the
// session never saw goes out as asked).
//
// These differences are deliberate:
//   - Phone numbers and LIDs: the real backend answers a message in the
//     form it arrived in (a direct chat's LID where the request named the
//     phone number, a member's LID in a group addressed by LID), and says
//     so in requestedChatId and requestedSender; the Fake knows no mapping
//     between the two, and a message added under one form is unknown under
//     the other.
//   - Chat reads: the real backend sends the "mark chat read" patch at the
//     end of a window (2 s by default) and answers "scheduled" for the chat
//     until then; the Fake clears the mark at once, so a second read of the
//     chat needs nothing more. The real backend answers "unavailable" until
//     the phone has shared its app-state keys after pairing; the Fake only
//     when told to fail ([Fake.SetMarkChatReadError]).
//   - Channels: the real backend takes a non-numeric id only for a channel
//     message whose server id it saw; the Fake for any message added to the
//     channel.
//   - State and time: the real backend's state is its connection's, and it
//     waits for WhatsApp (the account's read-receipt setting after each
//     connection, going online, a channel view's answer); the Fake's state
//     is what [Fake.SetStatus] and session-wide Faults say, a failure is a
//     Fault (its Retry-After, if any, is the error's), and it answers at
//     once unless a Fault's Latency says otherwise.
//   - What the answer does not show: the Fake sends no presence, no
//     delivery receipts and no app-state patches, and shows no typing.
package sessiontest
