package sqlqueue_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/sqlqueue"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// syncBuffer is a bytes.Buffer for a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The queue's SQLite database fills up (PRAGMA max_page_count: full as a
// disk is, deterministically): an asynchronous request is then a 503
// storage_full with Retry-After, nothing of it queued, never a 500; the
// condition is logged at Error once, not per request; and once there is
// room again requests are queued.
//
// Before: "sqlqueue: enqueue: database or disk is full (13)" was a 500
// internal without Retry-After, logged at Warn for every request.
func TestStorageFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bluetick.db")
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	setup := openDB(t, "sqlite", dsn)
	if _, err := sqlqueue.New(context.Background(), setup, sqlqueue.SQLite, sqlqueue.Options{}); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := setup.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// Room for a few jobs beyond the empty tables, on every connection.
	db := openDB(t, "sqlite", fmt.Sprintf("%s&_pragma=max_page_count(%d)", dsn, pages+2))
	db.SetMaxOpenConns(1) // one connection: the one the room is made on below
	q, err := sqlqueue.New(context.Background(), db, sqlqueue.SQLite, sqlqueue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	fake := sessiontest.New()
	nd := newNode(t, fake.Registry("demo"), queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour, Queue: q},
		seenhandler.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	h := nd.h
	defer nd.shutdown(context.Background()) //nolint:errcheck // the jobs stay in the file
	ids := make([]string, 100)
	post := func(i int) *httptest.ResponseRecorder {
		for k := range ids {
			ids[k] = fmt.Sprintf(`"3EB0%04d%04d"`, i, k)
		}
		r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(
			`{"session":"demo","chatId":"15551234567","messageIds":[`+strings.Join(ids, ",")+`]}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	accepted, full := 0, 0
	for i := 0; full < 3; i++ {
		if i == 1000 {
			t.Fatalf("%d requests accepted and the database still not full", accepted)
		}
		switch w := post(i); {
		case w.Code == http.StatusCreated && full == 0:
			accepted++
		case w.Code == http.StatusServiceUnavailable && strings.Contains(w.Body.String(), `"code":"storage_full"`) && w.Header().Get("Retry-After") != "":
			full++
		default:
			t.Fatalf("request %d (%d accepted, %d refused before): %d, Retry-After %q, %s; want 201 (WAHA's path; queued) until the database is full, then 503 storage_full with Retry-After",
				i, accepted, full, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	if accepted == 0 {
		t.Error("no request was accepted before the database was full")
	}
	if st := nd.totals(t); st.Accepted != int64(accepted) {
		t.Errorf("queue stats %+v after %d accepted requests: a refused one was counted", st, accepted)
	}
	if got := logs.String(); strings.Count(got, "level=ERROR") != 1 || strings.Contains(got, "level=WARN") ||
		!strings.Contains(got, "storage is full") {
		t.Errorf("log:\n%s\nwant one Error line that the storage is full, no line per request", got)
	}

	// Room again.
	if _, err := db.Exec(`PRAGMA max_page_count = 1000000`); err != nil {
		t.Fatal(err)
	}
	if w := post(2000); w.Code != http.StatusCreated {
		t.Errorf("with room again: %d %s", w.Code, w.Body)
	}
}
