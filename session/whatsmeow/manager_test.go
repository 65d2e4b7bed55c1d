package whatsmeow_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

func TestManagerLoadsStoredDevicesByName(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000001")
		st.SaveDevice(t, "15550000002")

		m, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(m.Names(), ","); got != "15550000001,15550000002" {
			t.Errorf("names = %s, want the phone numbers", got)
		}
		s, err := m.Lookup(ctx, "15550000001")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Lookup(ctx, "nobody"); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Lookup(nobody) = %v", err)
		}
		// Not connected (Start was not called; nothing here reaches WhatsApp).
		_, err = s.SendReceipt(ctx, session.Receipt{Chat: dm, MessageIDs: []string{"A"}, Type: session.ReceiptRead})
		if !errors.Is(err, session.ErrNotConnected) {
			t.Errorf("SendReceipt on an unconnected client = %v, want ErrNotConnected", err)
		}
		status := s.(session.StatusReporter).Status(ctx)
		if status.Connected || status.LoggedIn || !status.Paired || status.JID != "15550000001@s.whatsapp.net" {
			t.Errorf("status = %+v", status)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}

		// Renaming is a row in bluetick_session; the next Open uses it.
		if _, err := st.DB(t).Exec(`UPDATE bluetick_session SET name = 'support' WHERE name = '15550000002'`); err != nil {
			t.Fatal(err)
		}
		m, err = bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if got := strings.Join(m.Names(), ","); got != "15550000001,support" {
			t.Errorf("names after rename = %s", got)
		}
	})
}

func TestManagerNamesLeaveWithTheDevice(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000001")
		m, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		// whatsmeow deletes a logged-out device's row; the name goes with it.
		db := st.DB(t)
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM bluetick_session`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("names before: %d, %v; want 1", n, err)
		}
		if _, err := db.Exec(`DELETE FROM whatsmeow_device`); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM bluetick_session`).Scan(&n); err != nil || n != 0 {
			t.Errorf("names left: %d, %v", n, err)
		}
	})
}

func TestManagerRejectsBadStores(t *testing.T) {
	ctx := context.Background()
	// SQLite: a file in a missing directory; PostgreSQL: a database that
	// does not exist.
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		if m, err := bwm.Open(ctx, st.BadDSN); err == nil {
			m.Close()
			t.Errorf("Open(%s) succeeded", st.BadDSN)
		}
	})
	// A Postgres DSN goes to pgx, which cannot connect to a closed port.
	if m, err := bwm.Open(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"); err == nil {
		m.Close()
		t.Error("Open of an unreachable Postgres succeeded")
	}
}

func TestManagerPairingValidation(t *testing.T) {
	ctx := context.Background()
	m, err := bwm.Open(ctx, fmt.Sprintf("file:pairing-%d?mode=memory&cache=shared", dbSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, name := range []string{"", "-x", "a b", strings.Repeat("a", 65), "ü"} {
		if _, err := m.Pair(ctx, name, ""); err == nil {
			t.Errorf("Pair(%q) succeeded", name)
		}
	}
	if _, err := m.Pair(ctx, "ok", "12"); err == nil {
		t.Error("Pair with a bad number succeeded")
	}
}

// A real whatsmeow client that is not connected, behind the real HTTP
// handler: the client gets 503 session_not_connected, with Retry-After.
func TestUnconnectedClientThroughTheHandler(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000001")
		m, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		h, err := seenhandler.New(m, seenhandler.WithNoAuth())
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			session string
			code    seenhandler.Code
			status  int
		}{
			{"15550000001", seenhandler.CodeSessionNotConnected, http.StatusServiceUnavailable},
			{"nobody", seenhandler.CodeSessionNotFound, http.StatusNotFound},
		} {
			r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA,
				strings.NewReader(`{"session":"`+tc.session+`","chatId":"15551234567","messageIds":["3EB0A"]}`))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), `"code":"`+string(tc.code)+`"`) {
				t.Errorf("%s: status %d, body %s", tc.session, w.Code, w.Body)
			}
			if tc.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Errorf("%s: no Retry-After", tc.session)
			}
		}
	})
}

// A device without a stored name is named after its
// phone number, unless another device's stored name already is that
// number: it then gets the next free name instead of failing Open with a
// primary-key error on bluetick_session.
func TestManagerNameTakenInTheStore(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000002") // loaded first
		st.SaveDevice(t, "15550000001")
		m, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		// 15550000001 is renamed to the other's number, which loses its name.
		db := st.DB(t)
		if _, err := db.Exec(`DELETE FROM bluetick_session WHERE name = '15550000002'`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE bluetick_session SET name = '15550000002' WHERE name = '15550000001'`); err != nil {
			t.Fatal(err)
		}
		m, err = bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer m.Close()
		if got := strings.Join(m.Names(), ","); got != "15550000002,15550000002-2" {
			t.Errorf("names = %s, want 15550000002,15550000002-2", got)
		}
		s, err := m.Lookup(ctx, "15550000002")
		if err != nil {
			t.Fatal(err)
		}
		if jid := s.(session.StatusReporter).Status(ctx).JID; jid != "15550000001@s.whatsapp.net" {
			t.Errorf("15550000002 is %s, want the renamed 15550000001", jid)
		}
	})
}

// A SQLite store serves one process: a second Manager on
// the same file — another process, or this one (flock is held per open
// file) — is refused with ErrStoreInUse until the first closes. PostgreSQL
// stores are shared (the cluster's).
func TestSQLiteStoreServesOneProcess(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		first, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		second, err := bwm.Open(ctx, st.DSN)
		if st.Backend == "postgres" {
			if err != nil {
				t.Fatalf("a second Manager on PostgreSQL: %v", err)
			}
			second.Close()
			first.Close()
			return
		}
		if !errors.Is(err, bwm.ErrStoreInUse) || !strings.Contains(err.Error(), st.DSN) {
			t.Fatalf("a second Open of %s = %v, want ErrStoreInUse naming the file", st.DSN, err)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatalf("Open after the first Manager closed: %v", err)
		}
		again.Close()
	})
	// In-memory databases are the process's own: no lock.
	const mem = "file:lockless?mode=memory&cache=shared"
	a, err := bwm.Open(context.Background(), mem)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := bwm.Open(context.Background(), mem)
	if err != nil {
		t.Fatalf("a second Manager on an in-memory database: %v", err)
	}
	b.Close()
}
