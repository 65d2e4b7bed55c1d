package main

import (
	"context"
	"net/http"

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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if shutdown, err = mountSeen(mux, client); err != nil {
		return nil, nil, err
	}
	return crmapp.RequireUser(users, mux), shutdown, nil
}

// mountSeen serves bluetick's endpoints on the app's ServeMux, over the
// app's own connected client: the whole of what an app adds to mount it.
func mountSeen(mux *http.ServeMux, client *whatsmeow.Client) (shutdown func(context.Context), err error) {
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
	seenhandler.Mount(mux, h) // /api/sendSeen, /sendSeen, /v2/send/seen and the status paths
	return func(ctx context.Context) { _ = h.Shutdown(ctx); s.Close() }, nil
}
