// Command mux mounts the bluetick handler on a gorilla/mux router, with the
// session taken from the URL:
//
//	POST /sessions/{session}/seen  {"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]}
//
// It answers from an in-memory fake backend (package sessiontest), with one
// session, "demo". The token is $BLUETICK_TOKEN, or demo-token.
//
//	go run ./examples/mux
//
// gorilla/mux is a dependency of the root module for this example only:
// importing seenhandler or session never links it.
package main
