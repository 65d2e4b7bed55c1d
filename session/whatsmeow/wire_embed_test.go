package whatsmeow_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"go.mau.fi/whatsmeow"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// embedUserKey is the app's context key for its user (examples/mux's
// userKey).
type embedUserKey struct{}

// embedMount is examples/mux's mountSeen, line for line but the context
// key: the app's own client wrapped by New, the one session of a
// session.Single, the app's user read from the request's context, the
// handler's Routes on gorilla/mux. Keep the two in step: this is how the
// example's mount is tested on the wire (fakewa is internal to this
// package).
func embedMount(r *mux.Router, client *whatsmeow.Client) (shutdown func(context.Context), err error) {
	s, err := bwm.New(client, client.Store) // the session over the app's client
	if err != nil {
		return nil, err
	}
	h, err := seenhandler.New(session.Single(s), // one number: requests name no session
		seenhandler.WithAuth(seenhandler.AuthenticatorFunc(func(ctx context.Context, _ seenhandler.Credentials) (context.Context, error) {
			if _, ok := ctx.Value(embedUserKey{}).(string); !ok { // put there by the app's middleware
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

// The embedder's path on the wire: an app's own *whatsmeow.Client,
// connected (to the fake server), mounted as examples/mux mounts it; a
// request of its user that names no session, in WAHA's and in Wasend's
// dialect, becomes the exact <receipt> node, and a request without the
// user sends nothing.
func TestWireEmbeddedOnGorillaMux(t *testing.T) {
	srv := fakewa.Start(t)
	dev, _ := fakewa.NewDevice(t)
	cli := srv.Connect(t, dev) // the app's client, connected as the app connects it

	r := mux.NewRouter()
	shutdown, err := embedMount(r, cli)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(context.Background()) })
	// The app's middleware: every request here is its user's, unless it
	// says otherwise.
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Stranger") == "" {
			req = req.WithContext(context.WithValue(req.Context(), embedUserKey{}, "ann"))
		}
		r.ServeHTTP(w, req)
	})
	post := func(path, body string, stranger bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if stranger {
			req.Header.Set("X-Stranger", "1")
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, req)
		return w
	}
	// The barrier of wire.sent: a round trip after the receipts.
	w := &wire{srv: srv, dev: dev, cli: cli}

	if rec := post(seenhandler.PathWAHA, `{"chatId":"15551234567","messageIds":["3EB0NOUSER"]}`, true); rec.Code != http.StatusUnauthorized {
		t.Errorf("without the app's user: %d %s, want 401", rec.Code, rec.Body)
	}
	rec := post(seenhandler.PathWAHA, `{"chatId":"15551234567","messageIds":["3EB0EMBED1"]}`, false)
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"session":"default"`) {
		t.Fatalf("WAHA: %d %s, want 201 for the session default", rec.Code, rec.Body)
	}
	rec = post(seenhandler.PathWasend, `{"to":"120363012345678901@g.us","messageId":"false_120363012345678901@g.us_3EB0EMBED2_15557654321@c.us"}`, false)
	if rec.Code != http.StatusOK {
		t.Fatalf("Wasend: %d %s, want 200", rec.Code, rec.Body)
	}
	nodes := readReceipts(w.sent(t))
	if len(nodes) != 2 {
		t.Fatalf("server got %d read receipts, want 2: %v", len(nodes), xmls(nodes))
	}
	want := []string{
		`<receipt id="3EB0EMBED1" t="` + fmt.Sprint(nodes[0].Attrs["t"]) + `" to="15551234567@s.whatsapp.net" type="read"/>`,
		`<receipt id="3EB0EMBED2" participant="15557654321@s.whatsapp.net" t="` + fmt.Sprint(nodes[1].Attrs["t"]) + `" to="120363012345678901@g.us" type="read"/>`,
	}
	for i, n := range nodes {
		if got := fakewa.XML(n); got != want[i] {
			t.Errorf("receipt %d\n got %s\nwant %s", i, got, want[i])
		}
	}
}
