package routertest

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
)

// OpenClient is an example's openClient: the app's whatsmeow client over
// the SQLite device store at path, not connected; closeStore closes the
// store.
type OpenClient func(ctx context.Context, path string) (client *whatsmeow.Client, closeStore func(), err error)

// NewApp is an example's newApp: the app's HTTP side with bluetick mounted
// over client, behind the app's middleware, which knows users by their
// API token (users maps tokens to names, sent as Authorization: Bearer).
type NewApp func(client *whatsmeow.Client, users map[string]string) (app http.Handler, shutdown func(context.Context), err error)

// refuseDials is an http.RoundTripper that counts the connections a
// client tries to open (whatsmeow dials its websocket through one) and
// refuses them: the tests reach no WhatsApp server.
type refuseDials struct{ n atomic.Int64 }

func (d *refuseDials) RoundTrip(r *http.Request) (*http.Response, error) {
	d.n.Add(1)
	return nil, http.ErrServerClosed
}

// OverClient checks an example that mounts bluetick over the app's own
// *whatsmeow.Client, a real one over a real SQLite store that is never
// connected (nothing is dialled): the app's users reach the endpoints of
// the three dialects without naming a session, strangers get 401, a
// request the handler cannot take 400, and a receipt gets the honest 503
// of the client's state — session_not_logged_in while the device is not
// paired, session_not_connected once it is but the client is not
// connected — with nothing sent. The app's own routes still answer.
func OverClient(t *testing.T, open OpenClient, newApp NewApp) {
	path := filepath.Join(t.TempDir(), "crm-whatsapp.db")
	const token = "t0ken"
	type call struct {
		method, path, body string
		auth               bool
		status             int
		want               string // in the answer
	}
	run := func(t *testing.T, calls []call) {
		t.Helper()
		client, closeStore, err := open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer closeStore()
		dials := &refuseDials{}
		client.SetWebsocketHTTPClient(&http.Client{Transport: dials})
		client.SetPreLoginHTTPClient(&http.Client{Transport: dials})
		app, shutdown, err := newApp(client, map[string]string{token: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		defer shutdown(context.Background())
		for _, c := range calls {
			r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			if c.body != "" {
				r.Header.Set("Content-Type", "application/json")
			}
			if c.auth {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			w := httptest.NewRecorder()
			app.ServeHTTP(w, r)
			if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
				t.Errorf("%s %s (user: %v): %d %s, want %d with %s", c.method, c.path, c.auth, w.Code, w.Body, c.status, c.want)
			}
		}
		if n := dials.n.Load(); n != 0 || client.IsConnected() {
			t.Errorf("the client dialled %d times (connected: %v), want never", n, client.IsConnected())
		}
	}
	const dm = `"chatId":"15551234567","messageIds":["3EB0C767D26A1D98A4"]`
	t.Run("NotPaired", func(t *testing.T) {
		run(t, []call{
			{"GET", "/healthz", "", false, http.StatusOK, "ok"},
			{"POST", "/api/sendSeen", "{" + dm + "}", false, http.StatusUnauthorized, `"unauthorized"`},
			{"POST", "/api/sendSeen", "{" + dm + "}", true, http.StatusServiceUnavailable, `"session_not_logged_in"`},
			{"POST", "/api/sendSeen", `{"chatId":"not a chat","messageIds":["A1"]}`, true, http.StatusBadRequest, `"validation_failed"`},
			{"GET", "/api/sessions/default", "", true, http.StatusOK, `"SCAN_QR_CODE"`},
			{"GET", "/api/sessions/default", "", false, http.StatusUnauthorized, `"unauthorized"`},
		})
	})

	// The device is paired (saved with an identity, as pairing leaves it)
	// and the app opens it again: the client is not connected.
	client, closeStore, err := open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	savePaired(t, client)
	closeStore()

	t.Run("NotConnected", func(t *testing.T) {
		run(t, []call{
			{"POST", "/api/sendSeen", "{" + dm + "}", true, http.StatusServiceUnavailable, `"session_not_connected"`},
			{"POST", "/api/sendSeen", `{"session":"any",` + dm + "}", true, http.StatusServiceUnavailable, `"session_not_connected"`},
			{"POST", "/sendSeen", `{"to":"15551234567","messageId":"3EB0C767D26A1D98A4"}`, true, http.StatusServiceUnavailable, `"session_not_connected"`},
			{"POST", "/v2/send/seen", "{" + dm + "}", true, http.StatusServiceUnavailable, `"session_not_connected"`},
			{"POST", "/v2/send/seen", "{" + dm + "}", false, http.StatusUnauthorized, `"unauthorized"`},
			{"POST", "/sendSeen", `{"to":"not a chat","messageId":"A1"}`, true, http.StatusBadRequest, `"validation_failed"`},
			{"GET", "/api/sessions", "", true, http.StatusOK, `"name":"default","status":"STARTING"`},
			{"GET", "/v2/session/status", "", true, http.StatusOK, `"jid":"15550000001@s.whatsapp.net"`},
		})
	})
}

// savePaired saves client's device as pairing leaves it: with its JID, LID
// and an account identity (random bytes: the client never logs in).
func savePaired(t *testing.T, client *whatsmeow.Client) {
	t.Helper()
	dev := client.Store
	id := types.JID{User: "15550000001", Device: 1, Server: types.DefaultUserServer}
	dev.ID = &id
	dev.LID = types.JID{User: "100000000000001", Device: 1, Server: types.HiddenUserServer}
	dev.PushName = "crm"
	dev.Platform = "android"
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		return b
	}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             random(32),
		AccountSignatureKey: random(32),
		AccountSignature:    random(64),
		DeviceSignature:     random(64),
	}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
}
