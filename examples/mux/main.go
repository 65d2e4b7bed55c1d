package main

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"go.mau.fi/whatsmeow"
	_ "modernc.org/sqlite" // the app's choice of database/sql driver: "sqlite", pure Go

	"github.com/bluetick/bluetick/examples/internal/crmapp"
	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

func main() { crmapp.Main(newApp) }

// newApp is the app's HTTP side: its router, with its own routes and
// bluetick mounted over client, behind its authentication. users maps API
// tokens to user names. shutdown stops bluetick, after the HTTP server's
// Shutdown and before the client disconnects.
func newApp(client *whatsmeow.Client, users map[string]string) (app http.Handler, shutdown func(context.Context), err error) {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if shutdown, err = mountSeen(r, client); err != nil {
		return nil, nil, err
	}
	return crmapp.RequireUser(users, r), shutdown, nil
}

// mountSeen serves bluetick's endpoints on the app's router r, over the
// app's own connected client: the whole of what an app adds to mount it.
func mountSeen(r *mux.Router, client *whatsmeow.Client) (shutdown func(context.Context), err error) {
	s, err := bwm.New(client, client.Store) // the session over the app's client
	if err != nil {
		return nil, err
	}
	h, err := seenhandler.New(session.Single(s), // one number: requests name no session
		seenhandler.WithAuth(seenhandler.AuthenticatorFunc(func(ctx context.Context, _ seenhandler.Credentials) (context.Context, error) {
			if _, ok := crmapp.User(ctx); !ok { // put there by the app's middleware
				return nil, seenhandler.ErrUnauthorized
			}
			return ctx, nil
		})))
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, rt := range seenhandler.Routes(h) { // gorilla/mux's Handle returns a *Route: register each
		r.Handle(rt.Pattern, rt.Handler)
	}
	return func(ctx context.Context) { _ = h.Shutdown(ctx); s.Close() }, nil
}
