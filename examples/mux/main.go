package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/mux"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on")
	flag.Parse()
	token, shown := os.Getenv("BLUETICK_TOKEN"), "$BLUETICK_TOKEN"
	if token == "" {
		token, shown = "demo-token", "demo-token"
	}
	router, err := newRouter(sessiontest.New(), token)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s; try:\n  curl -sS http://%s/sessions/demo/seen -H \"Authorization: Bearer %s\" -H 'Content-Type: application/json' -d '{\"chatId\":\"15551234567\",\"messageIds\":[\"3EB0C767D26A1D98A4\"]}'\n", ln.Addr(), ln.Addr(), shown)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// newRouter serves POST /sessions/{session}/seen and GET
// /sessions/{session} (the status) from fake's "demo" session, for clients
// presenting token.
func newRouter(fake *sessiontest.Fake, token string) (http.Handler, error) {
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}})
	if err != nil {
		return nil, err
	}
	h, err := seenhandler.New(fake.Registry("demo"),
		seenhandler.WithAuth(auth),
		seenhandler.WithPathSession(func(r *http.Request) string { return mux.Vars(r)["session"] }),
	)
	if err != nil {
		return nil, err
	}
	r := mux.NewRouter()
	r.Handle("/sessions/{session}/seen", h).Methods(http.MethodPost)
	r.HandleFunc("/sessions/{session}", h.ServeStatus).Methods(http.MethodGet, http.MethodHead)
	return r, nil
}
