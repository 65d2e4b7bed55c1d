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
package sessiontest
