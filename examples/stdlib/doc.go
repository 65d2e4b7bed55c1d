// Command stdlib mounts the bluetick handler on net/http's ServeMux, with
// the session taken from the URL by a method-and-wildcard pattern:
//
//	POST /sessions/{session}/seen  {"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]}
//
// It answers from an in-memory fake backend (package sessiontest), with one
// session, "demo". The token is $BLUETICK_TOKEN, or demo-token.
//
//	go run ./examples/stdlib
package main
