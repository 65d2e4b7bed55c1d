package whatsmeow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// storeDevices stores, in st, paired devices the fake logs in, one per
// phone number, as a process that paired them would have (names included,
// when named: the phone number).
func storeDevices(t testing.TB, st bwm.TestStore, named bool, users ...string) {
	t.Helper()
	ctx := context.Background()
	db := st.DB(t)
	c := sqlstore.NewWithDB(db, st.Dialect, nil)
	if err := c.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	for _, user := range users {
		dev := fakewa.PairDeviceAs(t, c, user)
		if named {
			if _, err := db.ExecContext(ctx, `INSERT INTO bluetick_session (name, jid) VALUES ($1, $2)`, user, dev.ID.String()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// openOn opens a Manager on dsn whose clients dial srv (and keep
// whatsmeow's automatic reconnection, as a Manager's clients do), closed
// when t ends.
func openOn(t testing.TB, srv *fakewa.Server, dsn string, opts ...bwm.Option) *bwm.Manager {
	t.Helper()
	hook := bwm.WithClientHook(func(_ string, cli *whatsmeow.Client) {
		cli.SetWebsocketHTTPClient(srv.HTTPClient())
		cli.SetPreLoginHTTPClient(srv.HTTPClient())
	})
	m, err := bwm.Open(context.Background(), dsn, append([]bwm.Option{hook}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// deviceOf is the device JID the fake sees for a phone number stored by
// storeDevices.
func deviceOf(user string) types.JID {
	return types.JID{User: user, Device: 1, Server: types.DefaultUserServer}
}

// wantDevices checks the devices connected to srv now.
func wantDevices(t *testing.T, srv *fakewa.Server, users ...string) {
	t.Helper()
	want := make([]types.JID, len(users))
	for i, u := range users {
		want[i] = deviceOf(u)
	}
	srv.WaitConnections(t, wireWait, len(users))
	if got := srv.ConnectedDevices(); !slices.Equal(got, want) {
		t.Errorf("connected devices %v, want %v", got, want)
	}
}

func connected(t *testing.T, m *bwm.Manager, name string) bool {
	t.Helper()
	s, err := m.Lookup(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	st := s.(session.StatusReporter).Status(context.Background())
	return st.Connected && st.LoggedIn
}

const (
	userA = "15550000011"
	userB = "15550000012"
	userC = "15550000013"
)

// The per-session lifecycle the cluster stands on: Acquire
// connects the named sessions (and only those), Release disconnects one and
// returns once it is disconnected, Acquire after Release connects a fresh
// client, ReleaseAll disconnects all. Through the real clients, over the
// wire; the fake sees one connection per device throughout.
func TestManagerAcquireRelease(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		srv := fakewa.Start(t)
		storeDevices(t, st, false, userA, userB, userC)
		m := openOn(t, srv, st.DSN)
		wantDevices(t, srv)

		if err := m.Acquire(ctx, userA, userB); err != nil {
			t.Fatal(err)
		}
		wantDevices(t, srv, userA, userB)
		if !connected(t, m, userA) || !connected(t, m, userB) || connected(t, m, userC) {
			t.Error("after Acquire(A, B): want A and B connected, C not")
		}
		first, _ := m.Client(userA)
		if err := m.Acquire(ctx, userA); err != nil {
			t.Fatal(err)
		}
		if again, _ := m.Client(userA); again != first {
			t.Error("Acquire of an acquired session made a new client")
		}

		if err := m.Release(ctx, userA); err != nil {
			t.Fatal(err)
		}
		if first.IsConnected() {
			t.Error("the client is connected after Release returned")
		}
		s, _ := m.Lookup(ctx, userA)
		if _, err := s.SendReceipt(ctx, session.Receipt{Chat: dm, MessageIDs: []string{"A"}, Type: session.ReceiptRead}); !errors.Is(err, session.ErrNotConnected) {
			t.Errorf("SendReceipt after Release = %v, want ErrNotConnected", err)
		}
		wantDevices(t, srv, userB)

		if err := m.Acquire(ctx, userA); err != nil {
			t.Fatal(err)
		}
		second, _ := m.Client(userA)
		if second == first || !second.IsLoggedIn() {
			t.Errorf("Acquire after Release: same client %v, logged in %v; want a fresh, logged-in one", second == first, second.IsLoggedIn())
		}
		wantDevices(t, srv, userA, userB)

		clientB, _ := m.Client(userB)
		m.ReleaseAll()
		if second.IsConnected() || clientB.IsConnected() {
			t.Error("a client is connected after ReleaseAll returned")
		}
		wantDevices(t, srv)
		if err := m.Acquire(ctx, userA, userB, userC); err != nil {
			t.Fatal(err)
		}
		wantDevices(t, srv, userA, userB, userC)

		if err := m.Acquire(ctx, "nobody", userA); !errors.Is(err, session.ErrSessionNotFound) || !strings.Contains(err.Error(), `"nobody"`) {
			t.Errorf("Acquire(nobody) = %v", err)
		}
		if err := m.Release(ctx, "nobody"); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Release(nobody) = %v", err)
		}
		if n, most := srv.Replaced(), srv.MaxConcurrent(types.EmptyJID); n != 0 || most != 1 {
			t.Errorf("the fake replaced %d connections, saw at most %d at once for a device; want 0 and 1", n, most)
		}
	})
}

// Refresh loads the devices another process paired into the store (not
// connected), and drops the sessions whose device has left it; Acquire of
// a session whose device has left fails and drops it.
func TestManagerRefresh(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		srv := fakewa.Start(t)
		storeDevices(t, st, false, userA)
		m := openOn(t, srv, st.DSN)
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		wantDevices(t, srv, userA)

		storeDevices(t, st, true, userB, userC) // paired by another process
		names, err := m.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(names, ","); got != userA+","+userB+","+userC {
			t.Errorf("Refresh = %s", got)
		}
		if connected(t, m, userB) {
			t.Error("a refreshed session is connected")
		}
		wantDevices(t, srv, userA)
		if err := m.Acquire(ctx, userB); err != nil {
			t.Fatal(err)
		}
		wantDevices(t, srv, userA, userB)

		// Another process renames B and C's device leaves the store;
		// then A's, under an acquired session.
		db := st.DB(t)
		if _, err := db.Exec(`UPDATE bluetick_session SET name = 'support' WHERE name = $1`, userB); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM whatsmeow_device WHERE jid = $1`, deviceOf(userC).String()); err != nil {
			t.Fatal(err)
		}
		if names, err = m.Refresh(ctx); err != nil || strings.Join(names, ",") != userA+",support" {
			t.Errorf("Refresh after a rename and a removal = %v, %v", names, err)
		}
		wantDevices(t, srv, userA) // the renamed session is not connected
		if _, err := db.Exec(`DELETE FROM whatsmeow_device WHERE jid = $1`, deviceOf(userA).String()); err != nil {
			t.Fatal(err)
		}
		if err := m.Release(ctx, userA); err != nil {
			t.Fatal(err)
		}
		if err := m.Acquire(ctx, userA); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Acquire of a session whose device left = %v, want ErrSessionNotFound", err)
		}
		if _, err := m.Lookup(ctx, userA); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Lookup after = %v", err)
		}
	})
}

// A Refresh whose context ends while it reads the store drops no session:
// whatsmeow's GetAllDevices ends its list early, without an error, when
// its rows stop (a context ended, a connection lost), and a short list is
// no news of devices leaving. Cut short, a Refresh fails or lists every
// session, and every session stays. The cancellations sweep a whole
// Refresh, so that some land while the devices are read.
func TestManagerRefreshCancelled(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		users := make([]string, 60)
		for i := range users {
			users[i] = fmt.Sprintf("1555100%04d", i)
		}
		m, err := bwm.Open(context.Background(), st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		storeDevices(t, st, true, users...)
		start := time.Now()
		if names, err := m.Refresh(context.Background()); err != nil || len(names) != len(users) {
			t.Fatalf("Refresh = %d names, %v; want %d", len(names), err, len(users))
		}
		whole := time.Since(start)
		const steps = 100
		failed := 0
		for i := range steps {
			ctx, cancel := context.WithCancel(context.Background())
			at := whole * time.Duration(i) / steps
			timer := time.AfterFunc(at, cancel)
			names, err := m.Refresh(ctx)
			timer.Stop()
			cancel()
			if err != nil {
				failed++
			} else if len(names) != len(users) {
				t.Fatalf("a Refresh cancelled %v into its %v listed %d of %d sessions, without an error", at, whole, len(names), len(users))
			}
			if left := len(m.Names()); left != len(users) {
				t.Fatalf("a Refresh cancelled %v into its %v left %d of %d sessions", at, whole, left, len(users))
			}
		}
		t.Logf("%d of %d cancelled Refreshes failed, none dropped a session (a whole Refresh: %v)", failed, steps, whole)
	})
}

// The Manager knows the descriptor limit and keeps a
// reserve: sessions beyond its Capacity are refused with ErrCapacity
// (logged at Error, told the observer), not connected into "too many open
// files"; releasing one makes room.
func TestManagerCapacity(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		srv := fakewa.Start(t)
		storeDevices(t, st, false, userA, userB, userC)
		probe, err := bwm.Open(ctx, st.DSN, bwm.WithFDReserve(0))
		if err != nil {
			t.Fatal(err)
		}
		limit := probe.Capacity() // the whole descriptor limit
		probe.Close()
		def, err := bwm.Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		if got := def.Capacity(); got >= limit || got < limit-bwm.DefaultFDReserve-3*bwm.DefaultDBMaxOpen {
			t.Errorf("default capacity %d of a limit of %d", got, limit)
		}
		def.Close()

		var logs logBuffer
		events := make(chan bwm.SessionEvent, 16)
		m := openOn(t, srv, st.DSN, bwm.WithFDReserve(limit-2),
			bwm.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))),
			bwm.WithSessionObserver(func(e bwm.SessionEvent) {
				if e.Kind == bwm.EventRefused {
					events <- e
				}
			}))
		if got := m.Capacity(); got != 2 {
			t.Fatalf("Capacity = %d, want 2", got)
		}
		if err := m.Acquire(ctx, userA, userB); err != nil {
			t.Fatal(err)
		}
		err = m.Acquire(ctx, userC)
		if !errors.Is(err, bwm.ErrCapacity) || !strings.Contains(err.Error(), userC) {
			t.Errorf("Acquire beyond capacity = %v, want ErrCapacity naming the session", err)
		}
		wantEvent(t, events, bwm.EventRefused)
		if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "session="+userC) || !strings.Contains(got, "capacity=2") {
			t.Errorf("log %q", got)
		}
		wantDevices(t, srv, userA, userB)
		if err := m.Release(ctx, userA); err != nil {
			t.Fatal(err)
		}
		if err := m.Acquire(ctx, userC); err != nil {
			t.Fatalf("Acquire after a Release made room: %v", err)
		}
		wantDevices(t, srv, userB, userC)
	})
}

// Start keeps to Capacity as Acquire does: with room for two sessions and
// three stored, it connects two and refuses the third with ErrCapacity
// (logged at Error, told the observer).
//
// Before, Start connected all three: the never-connected clients it reuses
// skipped the capacity check.
func TestManagerStartCapacity(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		srv := fakewa.Start(t)
		storeDevices(t, st, false, userA, userB, userC)
		probe, err := bwm.Open(ctx, st.DSN, bwm.WithFDReserve(0))
		if err != nil {
			t.Fatal(err)
		}
		limit := probe.Capacity()
		probe.Close()

		var logs logBuffer
		events := make(chan bwm.SessionEvent, 16)
		m := openOn(t, srv, st.DSN, bwm.WithFDReserve(limit-2),
			bwm.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))),
			bwm.WithSessionObserver(func(e bwm.SessionEvent) {
				if e.Kind == bwm.EventRefused {
					events <- e
				}
			}))
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Start returns once every session has logged in or failed.
		if got := srv.ConnectedDevices(); len(got) != 2 {
			t.Errorf("after Start with capacity 2: connected %v, want 2 devices", got)
		}
		wantEvent(t, events, bwm.EventRefused)
		if got := logs.String(); strings.Count(got, "capacity=2") != 1 {
			t.Errorf("log %q, want one refusal", got)
		}
		n := 0
		for _, u := range []string{userA, userB, userC} {
			if connected(t, m, u) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d sessions connected, want 2", n)
		}
	})
}
