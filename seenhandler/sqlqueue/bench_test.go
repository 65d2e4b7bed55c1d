package sqlqueue_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/sqlqueue"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// BenchmarkAsyncAccept measures an asynchronous request up to its 202: the
// request parsed, the receipt written to the queue. The delay is an hour,
// so nothing is sent meanwhile. Memory, SQLite (a file in t.TempDir, WAL)
// and, with BLUETICK_TEST_POSTGRES, PostgreSQL, in the same run:
//
//	go test -run '^$' -bench AsyncAccept ./seenhandler/sqlqueue
func BenchmarkAsyncAccept(b *testing.B) {
	queues := []struct {
		name string
		new  func(b *testing.B) seenhandler.Queue
	}{
		{"memory", func(*testing.B) seenhandler.Queue { return seenhandler.NewMemoryQueue() }},
		{"sqlite", func(b *testing.B) seenhandler.Queue {
			path := b.TempDir() + "/bluetick.db"
			db := openDB(b, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
			q, err := sqlqueue.New(context.Background(), db, sqlqueue.SQLite, sqlqueue.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return q
		}},
		{"postgres", func(b *testing.B) seenhandler.Queue {
			dsn := newPostgresDB(b)
			db := openDB(b, "pgx", dsn)
			db.SetMaxIdleConns(32)
			q, err := sqlqueue.New(context.Background(), db, sqlqueue.Postgres, sqlqueue.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return q
		}},
	}
	for _, qc := range queues {
		for _, parallel := range []bool{false, true} {
			name := qc.name
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				fake := sessiontest.New(sessiontest.WithMaxRecords(1))
				h, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithAsync(seenhandler.AsyncOptions{
					Default: true, MinDelay: time.Hour, MaxDelay: time.Hour, QueueSize: 1 << 30, Queue: qc.new(b)}))
				if err != nil {
					b.Fatal(err)
				}
				defer func() { // not flushed: the memory queue's jobs count as failed
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					_, _ = h.Shutdown(ctx)
				}()
				var n atomic.Int64
				one := func() {
					body := fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["B%d"]}`, n.Add(1))
					r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusAccepted {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
				b.ReportAllocs()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							one()
						}
					})
					return
				}
				for b.Loop() {
					one()
				}
			})
		}
	}
}
