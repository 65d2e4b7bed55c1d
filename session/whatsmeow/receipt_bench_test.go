package whatsmeow_test

import (
	"context"
	"testing"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// BenchmarkSessionReceipt measures what one request of the end-to-end
// benchmark's spread workload asks of a Manager's session (SQLite store,
// library defaults), in process and without HTTP: resolving a message
// nobody indexed (the handler's skip check), then sending its read receipt
// in a direct chat through the real client to the fake server, which
// nothing can batch. Its allocations include whatsmeow's and the fake
// server's, whose count moves a little with how the server's reads batch
// the frames (BenchmarkSessionReceiptAlone counts the session's alone).
// Last measured: ~12 µs, 5.2 KB, 109 allocs/op (~13 µs, 6.5 KB, 150 allocs
// with whatsmeow 2025-12-17, which formatted every node for its debug log).
func BenchmarkSessionReceipt(b *testing.B) {
	ctx := context.Background()
	srv := fakewa.Start(b, fakewa.WithCountOnly())
	w := newManagedWire(b, srv)
	sess, err := w.m.Lookup(ctx, "15550000001")
	if err != nil {
		b.Fatal(err)
	}
	receipts := bwm.SpreadReceipts()
	send := func(r session.Receipt) { bwm.SendUnknown(b, ctx, sess, r) }
	// MarkRead does not wait for the server: a round trip on the same
	// connection, answered in order, brings every receipt sent before it.
	barrier := func() int64 {
		ctx, cancel := context.WithTimeout(ctx, wireWait)
		defer cancel()
		if _, err := w.cli.TryFetchPrivacySettings(ctx, true); err != nil {
			b.Fatal(err)
		}
		return srv.Counts().Receipts
	}
	send(receipts[0]) // goes online, loads the store's ids
	before := barrier()
	n := int64(0)
	for b.Loop() {
		send(receipts[n%int64(len(receipts))])
		n++
	}
	b.StopTimer()
	if got := barrier() - before; got != n {
		b.Fatalf("the server got %d receipts, want %d", got, n)
	}
}
