package whatsmeow

import (
	"context"
	"fmt"
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

// Issue 11, item 5: the memory each message costs in the cache (the ~510
// bytes measured before), its strings included (as a message's JIDs and
// id, parsed off the wire, live on in the index), all of a Manager's
// sessions sharing it.
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

// Issue 11, item 5: what indexing a message costs whatsmeow's event
// handling: the cache alone (a Session made by New), and the cache and the
// queue of the store's writer (a Manager's session), with the writer
// writing behind it — on 2 cores the writer competes for the CPU.
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
		run(b, &messages{mem: newIndex(DefaultIndexCache), owner: "1"})
	})
	ForEachBenchStore(b, func(b *testing.B, st TestStore) {
		st.SaveDevice(b, "15550000009")
		w, db := openMessageStore(b, st.DSN, Retention{})
		defer db.Close()
		defer w.close()
		id := types.NewADJID("15550000009", 0, 1)
		run(b, &messages{mem: newIndex(DefaultIndexCache), owner: "1", store: w, device: &store.Device{ID: &id}})
		b.StopTimer()
		if err := w.flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		w.mu.Lock()
		b.ReportMetric(float64(w.dropped), "dropped")
		w.mu.Unlock()
	})
}

// Issue 11, item 5: the store's write cost per message — from the queue to
// committed rows, in the batches the writer makes of what accumulates while
// it writes (ns/op is per message).
func BenchmarkIndexWrite(b *testing.B) {
	ForEachBenchStore(b, func(b *testing.B, st TestStore) {
		st.SaveDevice(b, "15550000009")
		w, db := openMessageStore(b, st.DSN, Retention{MaxMessages: 1_000_000})
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
