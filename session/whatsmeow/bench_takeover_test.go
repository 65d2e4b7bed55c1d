package whatsmeow_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// benchStore stores n paired devices the fake logs in in a fresh SQLite
// file in dir, and returns its path.
func benchStore(b *testing.B, dir string, n int) string {
	b.Helper()
	path := filepath.Join(dir, "bluetick.db")
	st := bwm.TestStore{Backend: "sqlite", DSN: path, Dialect: "sqlite", Driver: "sqlite",
		DriverDSN: "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"}
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("1555%07d", i)
	}
	storeDevices(b, st, false, users...)
	return path
}

// BenchmarkTakeover measures the takeover time — Acquire of N stored
// sessions, each a real whatsmeow client's TLS and Noise handshake and
// login against the fake on loopback, until every one has logged in — one
// at a time (concurrency=1, as Start did) and in parallel. ns/op is the
// whole takeover; ms/session divides it. ReleaseAll between iterations is
// not timed. The fake runs in the same process, on the same 2 cores: on a
// real network each connection also waits 0.3–0.5 s of round trips, which
// parallel connects overlap and sequential ones add up. Last measured:
// 1,000 sessions in 2.4 s at 64 at a time against 7.2 s one by one, 3×
// faster (examples/BENCHMARKS.md).
func BenchmarkTakeover(b *testing.B) {
	for _, n := range []int{100, 1000} {
		dir, path := b.TempDir(), ""
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("sessions=%d/concurrency=%d", n, conc), func(b *testing.B) {
				if path == "" {
					path = benchStore(b, dir, n)
				}
				srv := fakewa.Start(b)
				m := openOn(b, srv, path, bwm.WithConnectConcurrency(conc))
				names := m.Names()
				ctx := context.Background()
				b.ResetTimer()
				for range b.N {
					if err := m.Acquire(ctx, names...); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					m.ReleaseAll()
					srv.WaitConnections(b, time.Minute, 0)
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64(n), "ms/session")
				b.StopTimer()
				m.Close()
			})
		}
	}
}

// BenchmarkIdleSession measures what an idle connected session costs —
// heap (after a GC) and goroutines, per session, for 1,000 sessions
// connected through Acquire. The fake server runs in the same process:
// heap/session counts its side of each connection too (a TLS websocket and
// a Noise transport); the goroutines are told apart by their stacks. Last
// measured: about 89 KiB and 4 goroutines per session
// (examples/BENCHMARKS.md).
func BenchmarkIdleSession(b *testing.B) {
	const n = 1000
	path := benchStore(b, b.TempDir(), n)
	srv := fakewa.Start(b)
	m := openOn(b, srv, path)
	names := m.Names()
	ctx := context.Background()
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		clientBefore, serverBefore := goroutines()
		if err := m.Acquire(ctx, names...); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second) // let each session's privacy warm-up and whatsmeow's post-login queries end: idle
		runtime.GC()
		runtime.ReadMemStats(&after)
		client, server := goroutines()
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n/1024, "heap-KiB/session")
		b.ReportMetric(float64(client-clientBefore)/n, "client-goroutines/session")
		b.ReportMetric(float64(server-serverBefore)/n, "fake-goroutines/session")
		m.ReleaseAll()
		srv.WaitConnections(b, time.Minute, 0)
	}
}

// goroutines counts the goroutines of the process: the fake server's (a
// stack through package fakewa or net/http's connection serving) and the
// others.
func goroutines() (client, server int) {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\ngoroutine ") {
		if strings.Contains(g, "/internal/fakewa.") || strings.Contains(g, "net/http.(*conn).serve") {
			server++
		} else {
			client++
		}
	}
	return client, server
}
