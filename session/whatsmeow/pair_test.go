package whatsmeow_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// offlineHook makes every connection attempt of a client fail at once,
// without touching the network, and counts the attempts.
func offlineHook(dials *atomic.Int32) func(string, *whatsmeow.Client) {
	return func(_ string, c *whatsmeow.Client) {
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(context.Context, string, string) (net.Conn, error) {
				dials.Add(1)
				return nil, errors.New("offline test: no network")
			},
		}}
		c.SetWebsocketHTTPClient(hc)
		c.SetPreLoginHTTPClient(hc)
		c.SetMediaHTTPClient(hc)
	}
}

// WhatsApp is unreachable when pairing starts: the session is
// registered at once (status: not paired, so SCAN_QR_CODE), answers 503
// session_not_logged_in with a Retry-After that is the wait before the
// next attempt, and the Manager tries again with a capped exponential
// backoff (3 s, 6 s, 10 s, 10 s here) until Close stops it.
//
// Before: PairQR failed once, the session was dropped: 404 session_not_found.
func TestPairRetriesWhileOffline(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var dials atomic.Int32
		m, err := bwm.Open(ctx, db, bwm.WithClientHook(offlineHook(&dials)), bwm.WithPairRetry(3*time.Second, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		events, err := m.Pair(ctx, "default", "")
		if err != nil {
			t.Fatal(err)
		}
		h, err := seenhandler.New(m, seenhandler.WithNoAuth())
		if err != nil {
			t.Fatal(err)
		}
		post := func() (int, string, string) {
			r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(`{"session":"default","chatId":"15551234567","messageIds":["A"]}`))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			return rec.Code, rec.Header().Get("Retry-After"), rec.Body.String()
		}
		status := func() string {
			r := httptest.NewRequest(http.MethodGet, "/api/sessions/default", nil)
			r.SetPathValue("session", "default")
			rec := httptest.NewRecorder()
			serveStatus(h, rec, r)
			return rec.Body.String()
		}

		for i, wait := range []time.Duration{3 * time.Second, 6 * time.Second, 10 * time.Second, 10 * time.Second} {
			ev := <-events
			if ev.Kind != bwm.PairRetrying || ev.Timeout != wait || ev.Err == nil {
				t.Fatalf("attempt %d: event %+v, want %s after %v", i+1, ev, bwm.PairRetrying, wait)
			}
			if n := dials.Load(); n != int32(i+1) {
				t.Errorf("attempt %d: %d dials", i+1, n)
			}
			code, after, body := post()
			secs := int(wait / time.Second)
			if code != http.StatusServiceUnavailable || after != strconv.Itoa(secs) || !strings.Contains(body, string(seenhandler.CodeSessionNotLoggedIn)) {
				t.Errorf("attempt %d: %d, Retry-After %q, %s; want 503, %d, %s", i+1, code, after, body, secs, string(seenhandler.CodeSessionNotLoggedIn))
			}
			if st := status(); !strings.Contains(st, `"status":"SCAN_QR_CODE"`) {
				t.Errorf("attempt %d: status %s", i+1, st)
			}
			// A second later the wait is a second shorter.
			time.Sleep(time.Second)
			if _, after, _ := post(); after != strconv.Itoa(secs-1) {
				t.Errorf("attempt %d: a second later, Retry-After %q", i+1, after)
			}
			time.Sleep(wait - time.Second) // the next attempt
			synctest.Wait()
		}
		if ev := <-events; ev.Kind != bwm.PairRetrying || ev.Timeout != 10*time.Second {
			t.Errorf("fifth attempt: event %+v", ev)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		for ev := range events {
			t.Errorf("event after Close: %+v", ev)
		}
		if n := dials.Load(); n != 5 {
			t.Errorf("%d dials, want 5", n)
		}
	})
}

// When the caller's ctx ends, Pair stops retrying and the session is
// gone; the Manager keeps working.
func TestPairStopsWithItsContext(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	synctest.Test(t, func(t *testing.T) {
		var dials atomic.Int32
		m, err := bwm.Open(context.Background(), db, bwm.WithClientHook(offlineHook(&dials)))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx, cancel := context.WithCancel(context.Background())
		events, err := m.Pair(ctx, "default", "+1 555 123 4567")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Pair(ctx, "default", ""); !errors.Is(err, bwm.ErrSessionExists) {
			t.Errorf("a second Pair of the name: %v", err)
		}
		if ev := <-events; ev.Kind != bwm.PairRetrying || ev.Timeout != bwm.DefaultPairRetry {
			t.Fatalf("event %+v", ev)
		}
		cancel()
		for ev := range events {
			t.Errorf("event after cancel: %+v", ev)
		}
		synctest.Wait() // the dropped session's retirement
		if _, err := m.Lookup(context.Background(), "default"); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Lookup after cancel: %v", err)
		}
		if n := dials.Load(); n != 1 {
			t.Errorf("%d dials, want 1", n)
		}
	})
}

// pairingGoroutines returns the stacks of the goroutines that run a
// pairing (Pair).
func pairingGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "session/whatsmeow.(*Manager).Pair.") || strings.Contains(g, "session/whatsmeow.(*pairing).") {
			out = append(out, g)
		}
	}
	return out
}

// openWire opens a Manager on a fresh SQLite file whose clients dial srv,
// for a test that closes it itself.
func openWire(t *testing.T, srv *fakewa.Server) *bwm.Manager {
	t.Helper()
	m, err := bwm.Open(context.Background(), filepath.Join(t.TempDir(), "bluetick.db"), bwm.WithClientHook(func(_ string, cli *whatsmeow.Client) {
		cli.SetWebsocketHTTPClient(srv.HTTPClient())
		cli.SetPreLoginHTTPClient(srv.HTTPClient())
	}))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The Manager owns its pairings, by QR code or by pair code: Close stops
// them and waits for them, though nobody reads their events; a pairing by
// phone that fails leaves no pairing, and no session, behind. Over the
// wire: the fake WhatsApp server offers QR codes and a pair code.
//
// Before, their goroutine was nobody's: it outlived Close (waiting for the
// next QR code, then blocked for good on a channel nobody read).
func TestPairingStopsWithClose(t *testing.T) {
	ctx := context.Background()
	wantNone := func(t *testing.T, when string) {
		t.Helper()
		// A goroutine that has closed its channel still runs its last
		// defers: wait for it to end, as goleak does (bounded retries).
		gs := pairingGoroutines()
		for deadline := time.Now().Add(wireWait); len(gs) > 0 && time.Now().Before(deadline); gs = pairingGoroutines() {
			time.Sleep(time.Millisecond)
		}
		if len(gs) > 0 {
			t.Errorf("%s: %d pairing goroutines left:\n%s", when, len(gs), strings.Join(gs, "\n\n"))
		}
	}
	first := func(t *testing.T, events <-chan bwm.PairEvent, kind bwm.PairEventKind) bwm.PairEvent {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Kind != kind {
				t.Fatalf("first event %+v, want %s", ev, kind)
			}
			return ev
		case <-time.After(wireWait):
			t.Fatalf("no %s event within %v", kind, wireWait)
		}
		return bwm.PairEvent{}
	}

	t.Run("QR code", func(t *testing.T) {
		srv := fakewa.Start(t)
		m := openWire(t, srv)
		events, err := m.Pair(ctx, "new", "")
		if err != nil {
			t.Fatal(err)
		}
		first(t, events, bwm.PairQRCode)
		// Nobody reads on.
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		wantNone(t, "after Close")
	})
	t.Run("pair code", func(t *testing.T) {
		srv := fakewa.Start(t)
		m := openWire(t, srv)
		events, err := m.Pair(ctx, "new", "+1 555 123 4567")
		if err != nil {
			t.Fatal(err)
		}
		if code := first(t, events, bwm.PairPhoneCode).Code; len(code) != 9 {
			t.Fatalf("pair code %q", code)
		}
		// Nobody reads the events.
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		wantNone(t, "after Close")
	})
	t.Run("pair code refused", func(t *testing.T) {
		srv := fakewa.Start(t, fakewa.WithPairCodeErrors())
		m := openWire(t, srv)
		defer m.Close()
		events, err := m.Pair(ctx, "new", "+1 555 123 4567")
		if err != nil {
			t.Fatal(err)
		}
		first(t, events, bwm.PairFailed)
		for range events { // until the pairing has ended
		}
		wantNone(t, "after the pairing failed")
		if _, err := m.Lookup(ctx, "new"); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Lookup after the pairing failed: %v, want ErrSessionNotFound", err)
		}
	})
}
