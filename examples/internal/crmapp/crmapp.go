// Package crmapp is the part of the embedding examples that belongs to the
// app, not to bluetick: a CRM that already has its own whatsmeow client
// (a device store in SQLite, pairing by QR code), its own authentication
// (users known by API token) and its own HTTP server. Each example
// (examples/mux, examples/stdlib) adds only its router and the mount.
package crmapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mdp/qrterminal/v3"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	_ "modernc.org/sqlite" // the app's choice of database/sql driver: "sqlite", pure Go
)

// NewApp is an example's HTTP side: its router with bluetick mounted over
// client, behind the app's authentication; users maps API tokens to user
// names. shutdown stops bluetick, after the HTTP server's Shutdown and
// before the client disconnects.
type NewApp func(client *whatsmeow.Client, users map[string]string) (app http.Handler, shutdown func(context.Context), err error)

// Main runs the app: flags -addr and -db, the client over the device store
// in -db (paired by QR code on first use, then connected), the router
// newApp returns, until SIGINT or SIGTERM. The API token is $CRM_TOKEN, or
// demo-token.
func Main(newApp NewApp) {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on")
	db := flag.String("db", "crm-whatsapp.db", "SQLite `file` of the WhatsApp device store")
	flag.Parse()
	token := os.Getenv("CRM_TOKEN")
	if token == "" {
		token = "demo-token"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	client, closeStore, err := OpenClient(ctx, *db)
	if err != nil {
		log.Fatal(err)
	}
	defer closeStore()
	if err := connect(ctx, client); err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect()

	app, shutdownSeen, err := newApp(client, map[string]string{token: "agent"})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s; try:\n  curl -sS http://%s/api/sendSeen -H \"Authorization: Bearer $CRM_TOKEN\" -H 'Content-Type: application/json' -d '{\"chatId\":\"15551234567\",\"messageIds\":[\"3EB0C767D26A1D98A4\"]}'\n", ln.Addr(), ln.Addr())
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // the requests in flight end first,
		shutdownSeen(sctx)     // then bluetick; the client disconnects last (deferred)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-stopped
}

// OpenClient makes the app's whatsmeow client as any whatsmeow app does: a
// device store in the SQLite file at path, its first device (a new one the
// first time), a client over it. Nothing is dialled. closeStore closes the
// store, after the client has disconnected.
func OpenClient(ctx context.Context, path string) (client *whatsmeow.Client, closeStore func(), err error) {
	container, err := sqlstore.New(ctx, "sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)", nil)
	if err != nil {
		return nil, nil, err
	}
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		_ = container.Close()
		return nil, nil, err
	}
	return whatsmeow.NewClient(device, nil), func() { _ = container.Close() }, nil
}

// connect connects client to WhatsApp, pairing it first by QR code (shown
// on stderr) when its device is new.
func connect(ctx context.Context, client *whatsmeow.Client) error {
	if client.Store.ID != nil {
		return client.ConnectContext(ctx)
	}
	qr, err := client.GetQRChannel(ctx)
	if err != nil {
		return err
	}
	if err := client.ConnectContext(ctx); err != nil {
		return err
	}
	for evt := range qr {
		switch evt.Event {
		case whatsmeow.QRChannelEventCode:
			fmt.Fprintln(os.Stderr, "scan this QR code with WhatsApp › Linked devices › Link a device:")
			qrterminal.GenerateHalfBlock(evt.Code, qrterminal.L, os.Stderr)
		case whatsmeow.QRChannelSuccess.Event:
			return nil
		default:
			return fmt.Errorf("pairing: %s %v", evt.Event, evt.Error)
		}
	}
	return ctx.Err()
}

// userKey is the context key under which RequireUser puts the app's user.
type userKey struct{}

// RequireUser is the app's own authentication: it knows its users by API
// token (Authorization: Bearer) and puts the user in the request's
// context, where [User] finds it. A request it does not know goes on
// without a user, and each route decides: bluetick's answer 401.
func RequireUser(users map[string]string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && users[token] != "" {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, users[token]))
		}
		next.ServeHTTP(w, r)
	})
}

// User returns the user RequireUser found for the request of ctx.
func User(ctx context.Context) (name string, ok bool) {
	name, ok = ctx.Value(userKey{}).(string)
	return name, ok
}
