package sqlqueue_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/sqlqueue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// BenchmarkAsyncAccept measures an asynchronous request up to its 202: the
// request parsed, the receipt written to the queue. The delay is an hour,
// so nothing is sent meanwhile. Memory, SQLite (a file in t.TempDir, WAL)
// and, with BLUETICK_TEST_POSTGRES, PostgreSQL, in the same run:
//
//	go test -run '^$' -bench AsyncAccept ./seenhandler/queue/sqlqueue
//
// What it decides is how many 202s a second a durable queue allows: last
// measured memory 29 µs/op, SQLite 0.89 ms/op (one fsync per 202),
// PostgreSQL 0.20 ms/op (without fsync); examples/BENCHMARKS.md.
func BenchmarkAsyncAccept(b *testing.B) {
	queues := []struct {
		name string
		new  func(b *testing.B) queue.Queue
	}{
		{"memory", func(*testing.B) queue.Queue { return queue.NewMemory() }},
		{"sqlite", func(b *testing.B) queue.Queue {
			path := b.TempDir() + "/bluetick.db"
			db := openDB(b, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
			q, err := sqlqueue.New(context.Background(), db, sqlqueue.SQLite, sqlqueue.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return q
		}},
		{"postgres", func(b *testing.B) queue.Queue {
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
				nd := newNode(b, fake.Registry("demo"), queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour,
					QueueSize: 1 << 30, SessionQueueSize: 1 << 30, Queue: qc.new(b)})
				h := nd.h
				defer func() { // not flushed: the memory queue's jobs count as failed
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					_ = nd.shutdown(ctx)
				}()
				var n atomic.Int64
				one := func() {
					body := fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["B%d"]}`, n.Add(1))
					r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusCreated { // WAHA's path: every success is a 201, queued ones too
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

// BenchmarkStats compares reading every session's counts with reading one
// session's (what a status request needs), with 1,000 sessions of 20
// pending jobs each, on SQLite and, with BLUETICK_TEST_POSTGRES,
// PostgreSQL:
//
//	go test -run '^$' -bench Stats ./seenhandler/queue/sqlqueue
//
// One session's counts must stay an index search: last measured 28–50 µs
// against 4–5 ms for every session's; examples/BENCHMARKS.md.
func BenchmarkStats(b *testing.B) {
	forEachQueue(b, func(b *testing.B, db *sql.DB, q *sqlqueue.Queue) {
		fill(b, db, 1000, 20)
		for _, bc := range []struct {
			label    string
			sessions []string
		}{{"every", nil}, {"one", []string{"s0500"}}} {
			b.Run(bc.label, func(b *testing.B) {
				for b.Loop() {
					if _, err := q.Stats(context.Background(), bc.sessions...); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// BenchmarkPending measures the counts an asynchronous request reads to
// hold the queue's bounds (a session's and a token's; the whole queue's at
// most once a second), with the queue full at the handler's default bound:
// 10,000 pending jobs of one receipt (500 sessions of 20, a tenth of them
// the token's, each payload as large as a real one), on SQLite and, with
// BLUETICK_TEST_POSTGRES, PostgreSQL:
//
//	go test -run '^$' -bench Pending ./seenhandler/queue/sqlqueue
//
// Last measured: 75 µs (SQLite) and 0.27 ms (PostgreSQL) for a session's
// and a token's counts, 0.43 and 0.80 ms with the whole queue's;
// examples/BENCHMARKS.md.
func BenchmarkPending(b *testing.B) {
	forEachQueue(b, func(b *testing.B, db *sql.DB, q *sqlqueue.Queue) {
		fillFull(b, q, 500, 20)
		for _, total := range []bool{false, true} {
			b.Run(map[bool]string{false: "session+token", true: "with-total"}[total], func(b *testing.B) {
				for b.Loop() {
					if _, err := q.Pending(context.Background(), queue.PendingOf{Session: "s0250", Token: "tok-7", Total: total}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// BenchmarkClaimFair measures a worker's claim (PerSession, with jobs
// held) while one session has a backlog of 3,000 due jobs and 100 others
// one each (the jobs are given back between two claims, untimed), against
// the claim of the earliest due jobs whatever their session, on SQLite
// and, with BLUETICK_TEST_POSTGRES, PostgreSQL:
//
//	go test -run '^$' -bench ClaimFair ./seenhandler/queue/sqlqueue
//
// The ratio is fair over earliest, what fairness costs a claim: last
// measured 2.2× on SQLite (1.66 against 0.75 ms) and 1.0× on PostgreSQL
// (1.32 ms each); examples/BENCHMARKS.md.
func BenchmarkClaimFair(b *testing.B) {
	forEachQueue(b, func(b *testing.B, db *sql.DB, q *sqlqueue.Queue) {
		fillFull(b, q, 1, 3000)
		fillFull(b, q, 100, 1)
		now := time.Now().Add(time.Hour)
		for _, bc := range []struct {
			name       string
			perSession int
		}{{"fair", 4}, {"earliest", 0}} {
			b.Run(bc.name, func(b *testing.B) {
				for b.Loop() {
					jobs, _, err := q.Claim(context.Background(), queue.Claim{Now: now, Limit: 8, Lease: time.Minute,
						PerSession: bc.perSession, Held: map[string]int{"s0000": 2}})
					if err != nil || len(jobs) == 0 {
						b.Fatal(len(jobs), err)
					}
					b.StopTimer()
					ids := make([]string, len(jobs))
					for i, j := range jobs {
						ids[i] = fmt.Sprint(j.ID)
					}
					if _, err := db.Exec(`UPDATE bluetick_queue SET claimed_until_ms = 0, claimed_by = '' WHERE id IN (` + strings.Join(ids, ",") + `)`); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	})
}

// fillFull enqueues jobs pending jobs of one receipt for each of sessions
// sessions (s0000…), every tenth token's, through q.
func fillFull(b *testing.B, q queue.Queue, sessions, jobs int) {
	b.Helper()
	at := time.Now()
	for i := range sessions {
		for k := range jobs {
			j := &queue.Job{Session: fmt.Sprintf("s%04d", i), Chat: "120363012345678901@g.us", Accepted: at, Due: at,
				Token: fmt.Sprintf("tok-%d", (i*jobs+k)%10), Receipts: []session.Receipt{{Chat: "120363012345678901@g.us",
					Sender: "15557654321@s.whatsapp.net", MessageIDs: []string{fmt.Sprintf("3EB0C767D26A1D98A4%06d", k)},
					Type: session.ReceiptRead, Timestamp: at}}}
			if err := q.Enqueue(context.Background(), j); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// forEachQueue runs f on a new queue of each backend: SQLite and, with
// BLUETICK_TEST_POSTGRES, PostgreSQL.
func forEachQueue(b *testing.B, f func(b *testing.B, db *sql.DB, q *sqlqueue.Queue)) {
	for _, backend := range []struct {
		name    string
		dialect sqlqueue.Dialect
		open    func(b *testing.B) *sql.DB
	}{
		{"sqlite", sqlqueue.SQLite, func(b *testing.B) *sql.DB {
			return openDB(b, "sqlite", "file:"+b.TempDir()+"/bluetick.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		}},
		{"postgres", sqlqueue.Postgres, func(b *testing.B) *sql.DB { return openDB(b, "pgx", newPostgresDB(b)) }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			db := backend.open(b)
			q, err := sqlqueue.New(context.Background(), db, backend.dialect, sqlqueue.Options{})
			if err != nil {
				b.Fatal(err)
			}
			f(b, db, q)
		})
	}
}
