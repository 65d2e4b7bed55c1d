package whatsmeow_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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

// Item 12. WhatsApp is unreachable when pairing starts: the session is
// registered at once (status: not paired, so SCAN_QR_CODE), answers 503
// session_not_logged_in with a Retry-After that is the wait before the
// next attempt, and the Manager tries again with a capped exponential
// backoff (3 s, 6 s, 10 s, 10 s here) until Close stops it.
//
// Before: PairQR failed once, the session was dropped: 404 session_not_found.
func TestKeepPairingRetriesWhileOffline(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var dials atomic.Int32
		m, err := bwm.Open(ctx, db, bwm.WithClientHook(offlineHook(&dials)), bwm.WithPairRetry(3*time.Second, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		events, err := m.KeepPairing(ctx, "default", "")
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
			h.ServeStatus(rec, r)
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
			if code != http.StatusServiceUnavailable || after != strconv.Itoa(secs) || !strings.Contains(body, seenhandler.CodeSessionNotLoggedIn) {
				t.Errorf("attempt %d: %d, Retry-After %q, %s; want 503, %d, %s", i+1, code, after, body, secs, seenhandler.CodeSessionNotLoggedIn)
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

// When the caller's ctx ends, KeepPairing stops retrying and the session is
// gone; the Manager keeps working.
func TestKeepPairingStopsWithItsContext(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	synctest.Test(t, func(t *testing.T) {
		var dials atomic.Int32
		m, err := bwm.Open(context.Background(), db, bwm.WithClientHook(offlineHook(&dials)))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx, cancel := context.WithCancel(context.Background())
		events, err := m.KeepPairing(ctx, "default", "+1 555 123 4567")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.KeepPairing(ctx, "default", ""); !errors.Is(err, bwm.ErrSessionExists) {
			t.Errorf("a second KeepPairing of the name: %v", err)
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
