package seenhandler_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
)

// fullLater is a Later whose storage is full, as a queue.Worker's over
// sqlqueue on a database out of space: Defer fails with an error wrapping
// session.ErrStorageFull.
var fullLater = laterFunc{deferFunc: func(context.Context, seenhandler.Deferred) (time.Time, error) {
	return time.Time{}, fmt.Errorf("sqlqueue: enqueue: %w: database or disk is full (13)", session.ErrStorageFull)
}}

// A full storage fails every request until someone makes room: each is a
// 503 storage_full with Retry-After (its backend's text kept from the
// client), logged at Debug, and the condition is logged at Error once a
// minute with how many requests failed since.
//
// Before: a 500 internal without Retry-After, logged at Warn per request.
func TestStorageFullLoggedOncePerPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		h, _ := newHandler(t, seenhandler.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))),
			seenhandler.WithLater(fullLater), seenhandler.WithAsyncByDefault())
		post := func() {
			t.Helper()
			w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A"]}`}).do(t, h)
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"code":"storage_full"`) ||
				w.Header().Get("Retry-After") == "" || strings.Contains(w.Body.String(), "database or disk") {
				t.Errorf("%d, Retry-After %q, %s; want 503 storage_full with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
			}
		}
		notices := func() []string {
			var out []string
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if l != "" {
					out = append(out, l)
				}
			}
			return out
		}
		for range 3 {
			post()
		}
		if got := notices(); len(got) != 1 || !strings.Contains(got[0], "level=ERROR") || !strings.Contains(got[0], "failed=1") {
			t.Errorf("after 3 requests, log:\n%s\nwant one Error line, failed=1", strings.Join(got, "\n"))
		}
		time.Sleep(time.Minute)
		post()
		if got := notices(); len(got) != 2 || !strings.Contains(got[1], "level=ERROR") || !strings.Contains(got[1], "failed=3") {
			t.Errorf("a minute later, log:\n%s\nwant a second Error line, failed=3", strings.Join(got, "\n"))
		}
	})
}
