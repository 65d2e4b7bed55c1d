package whatsmeow_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/seenhandler"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// logBuffer is an io.Writer for a slog handler, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Another client connects the device of a connected
// session (another tool, or a second process): the fake WhatsApp replaces
// the session's connection with <conflict type="replaced"/>, through
// whatsmeow's own dispatch (events.StreamReplaced). The Manager logs it at
// Error, tells the observer, the status endpoints say CONFLICT (FAILED on
// WAHA's path), and it does not reconnect: the other client keeps the
// device. Acquire takes it back, explicitly.
func TestWireStreamReplaced(t *testing.T) {
	bwm.ForEachStore(t, func(t *testing.T, st bwm.TestStore) {
		ctx := context.Background()
		srv := fakewa.Start(t)
		storeDevices(t, st, false, userA)
		var logs logBuffer
		events := make(chan bwm.SessionEvent, 16)
		m := openOn(t, srv, st.DSN,
			bwm.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))),
			bwm.WithSessionObserver(func(e bwm.SessionEvent) { events <- e }))
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, events, bwm.EventConnected)
		h, err := seenhandler.New(m, seenhandler.WithNoAuth())
		if err != nil {
			t.Fatal(err)
		}
		status := func(path string) string {
			rec := httptest.NewRecorder()
			serveStatus(h, rec, statusRequest(path))
			return rec.Body.String()
		}
		if got := status(seenhandler.PathWawpStatus + "?session=" + userA); !strings.Contains(got, `"status":"WORKING"`) {
			t.Fatalf("status before: %s", got)
		}

		// Another tool connects the same device, from the same store.
		c := sqlstore.NewWithDB(st.DB(t), st.Dialect, nil)
		dev, err := c.GetDevice(ctx, deviceOf(userA))
		if err != nil || dev == nil {
			t.Fatalf("GetDevice: %v, %v", dev, err)
		}
		other := srv.NewClient(t, dev)
		other.AddEventHandler(func(evt any) {
			if _, ok := evt.(*waEvents.StreamReplaced); ok {
				go other.Disconnect() // as the Manager does
			}
		})
		if err := other.Connect(); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, events, bwm.EventReplaced)

		if got := status(seenhandler.PathWawpStatus + "?session=" + userA); !strings.Contains(got, `"status":"CONFLICT"`) || !strings.Contains(got, `"loggedIn":false`) {
			t.Errorf("status after the conflict: %s", got)
		}
		if got := status("/api/sessions/" + userA); !strings.Contains(got, `"status":"FAILED"`) {
			t.Errorf("WAHA status after the conflict: %s", got)
		}
		if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "replaced") || !strings.Contains(got, "session="+userA) {
			t.Errorf("log: %q, want the replacement at Error", got)
		}
		wantDevices(t, srv, userA) // the other client's, alone
		if !other.WaitForConnection(wireWait) {
			t.Error("the other client was thrown out: the Manager reconnected")
		}
		if n, most := srv.Replaced(), srv.MaxConcurrent(deviceOf(userA)); n != 1 || most != 2 {
			t.Errorf("replaced %d, at most %d connections at once; want 1 and 2", n, most)
		}

		// Taking the device back is explicit.
		if err := m.Acquire(ctx, userA); err != nil {
			t.Fatal(err)
		}
		if got := status(seenhandler.PathWawpStatus + "?session=" + userA); !strings.Contains(got, `"status":"WORKING"`) {
			t.Errorf("status after Acquire: %s", got)
		}
		if n := srv.Replaced(); n != 2 {
			t.Errorf("replaced %d, want 2 (the other client, by Acquire)", n)
		}
		wantDevices(t, srv, userA)
	})
}

func statusRequest(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if name, ok := strings.CutPrefix(target, "/api/sessions/"); ok {
		r.SetPathValue("session", name)
	}
	return r
}

// wantEvent waits for the next session event, which must be of kind.
func wantEvent(t *testing.T, events <-chan bwm.SessionEvent, kind bwm.SessionEventKind) {
	t.Helper()
	select {
	case e := <-events:
		if e.Kind != kind {
			t.Fatalf("event %+v, want %s", e, kind)
		}
	case <-time.After(wireWait):
		t.Fatalf("no %s event within %v", kind, wireWait)
	}
}
