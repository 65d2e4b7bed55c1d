package whatsmeow

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// benchMessage is a group message as indexedFrom makes it: its strings
// built at run time, like JIDs parsed off the wire.
func benchMessage(owner string, i int) indexed {
	return indexed{
		owner:     owner,
		chat:      fmt.Sprintf("1203630%011d@g.us", i%50),
		id:        fmt.Sprintf("3EB0%016X", i),
		sender:    fmt.Sprintf("%015d@lid", 100000000000000+i%200),
		senderAlt: fmt.Sprintf("1555%07d@s.whatsapp.net", i%200),
		timestamp: time.Unix(1767225500+int64(i), 0),
		lidGroup:  true,
		seen:      int64(i),
	}
}

// BenchmarkIndexMemory measures the memory each message costs in the cache
// (the ~510 bytes measured before), its strings included (as a message's
// JIDs and id, parsed off the wire, live on in the index), all of a
// Manager's sessions sharing it. Last measured: 396 B/msg, so the default
// 100,000-message cache is about 40 MB (examples/BENCHMARKS.md).
func BenchmarkIndexMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newIndex(n)
		for i := range n {
			x.add(benchMessage("1", i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/msg")
		runtime.KeepAlive(x)
	}
}

// BenchmarkIndexAdd measures what indexing a message costs whatsmeow's
// event handling: the cache alone (a Session made by New), and the cache
// and the queue of the store's writer (a Manager's session), with the
// writer writing behind it — on 2 cores the writer competes for the CPU.
// Last measured: 670–970 ns (memory), 1.5 µs (SQLite), 3.3–8.3 µs
// (Postgres) (examples/BENCHMARKS.md).
func BenchmarkIndexAdd(b *testing.B) {
	msgs := make([]indexed, 10_000)
	for i := range msgs {
		msgs[i] = benchMessage("", i)
	}
	run := func(b *testing.B, x *messages) {
		i := 0
		for b.Loop() {
			x.add(msgs[i%len(msgs)])
			i++
		}
	}
	b.Run("memory", func(b *testing.B) {
		run(b, &messages{mem: newIndex(defaultIndexCache), owner: "1"})
	})
	ForEachBenchStore(b, func(b *testing.B, st TestStore) {
		st.SaveDevice(b, "15550000009")
		w, db := openMessageStore(b, st.DSN, Retention{MaxAge: 100 * 365 * 24 * time.Hour})
		defer db.Close()
		defer w.close()
		id := types.NewADJID("15550000009", 0, 1)
		run(b, &messages{mem: newIndex(defaultIndexCache), owner: "1", store: w, device: &store.Device{ID: &id}})
		b.StopTimer()
		if err := w.flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		w.mu.Lock()
		b.ReportMetric(float64(w.dropped), "dropped")
		w.mu.Unlock()
	})
}

// BenchmarkIndexWrite measures the store's write cost per message — from
// the queue to committed rows, in the batches the writer makes of what
// accumulates while it writes (ns/op is per message). Last measured:
// 0.9–3.0 µs (SQLite), 2.2–3.6 µs (Postgres) (examples/BENCHMARKS.md).
func BenchmarkIndexWrite(b *testing.B) {
	ForEachBenchStore(b, func(b *testing.B, st TestStore) {
		st.SaveDevice(b, "15550000009")
		// The default count (50,000 per device: beyond it, each 1,000
		// messages prune as many), no age limit (benchMessage's times
		// are of January 2026).
		w, db := openMessageStore(b, st.DSN, Retention{MaxAge: 100 * 365 * 24 * time.Hour})
		defer db.Close()
		defer w.close()
		device := types.NewADJID("15550000009", 0, 1).String()
		i := 0
		for b.Loop() {
			w.put(device, benchMessage("", i))
			i++
		}
		if err := w.flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkIndexLookup measures what the store's reads cost a request,
// with 10,000 messages of the device stored: an id nobody indexed (a cache
// miss that reads the store; ResolveMessage and SendReceipt each ask), and
// a chat's newest message (the "mark chat read" patch of every read
// request). Last measured: miss 17 µs (SQLite), 80–140 µs (Postgres);
// newest 34 µs, 200–290 µs (examples/BENCHMARKS.md).
func BenchmarkIndexLookup(b *testing.B) {
	ForEachBenchStore(b, func(b *testing.B, st TestStore) {
		st.SaveDevice(b, "15550000009")
		w, db := openMessageStore(b, st.DSN, Retention{MaxAge: 100 * 365 * 24 * time.Hour})
		defer db.Close()
		defer w.close()
		device := types.NewADJID("15550000009", 0, 1).String()
		for i := range 10_000 {
			w.put(device, benchMessage("", i))
		}
		if err := w.flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		chat := benchMessage("", 7).chat
		b.Run("miss", func(b *testing.B) {
			for b.Loop() {
				if _, ok, err := w.get(context.Background(), device, chat, "3EB0UNKNOWN"); ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run("newest", func(b *testing.B) {
			for b.Loop() {
				if _, ok, err := w.newest(context.Background(), device, chat); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	})
}

// queuedStore is a message store whose writer is not running, with n
// operations queued (indexQueueMax: the queue full, what a lookup meets
// when the database falls behind): the messages of ten devices, 50 group
// chats each, one op in a hundred a read mark of the message before it.
func queuedStore(t testing.TB, n int) (w *messageStore, device string) {
	t.Helper()
	w = &messageStore{log: slog.New(slog.DiscardHandler), now: time.Now,
		progress: make(chan struct{}), wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	devices := make([]string, 10)
	for i := range devices {
		devices[i] = types.NewADJID(fmt.Sprintf("1555000%04d", i), 0, 1).String()
	}
	for i := range n {
		if i%100 == 91 {
			prev := benchMessage("", i-1)
			w.markRead(devices[(i-1)%len(devices)], prev.chat, []string{prev.id})
			continue
		}
		w.put(devices[i%len(devices)], benchMessage("", i))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) != n || w.dropped != 0 {
		t.Fatalf("%d ops queued, %d dropped; want %d queued", len(w.queue), w.dropped, n)
	}
	return w, devices[0]
}

// BenchmarkIndexPending measures what a lookup of the queued (not yet
// written) messages costs while the writer's queue is full, under the
// mutex whatsmeow's event handling needs to index each message: an id
// nobody indexed (nearly every request), a queued message marked read
// after it, and a chat's newest message (every read request's "mark chat
// read" check). Last measured: 39, 64 and 49 ns, where a scan of the queue
// took ~1 ms (examples/BENCHMARKS.md).
func BenchmarkIndexPending(b *testing.B) {
	w, device := queuedStore(b, indexQueueMax)
	hit := benchMessage("", 98_090) // device 0's, marked read by op 98,091
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			if _, ok := w.pending(device, hit.chat, "3EB0UNKNOWN"); ok {
				b.Fatal("found")
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		for b.Loop() {
			if m, ok := w.pending(device, hit.chat, hit.id); !ok || !m.read {
				b.Fatal(m, ok)
			}
		}
	})
	b.Run("newest", func(b *testing.B) {
		for b.Loop() {
			if _, ok := w.pendingNewest(device, hit.chat); !ok {
				b.Fatal("not found")
			}
		}
	})
}
