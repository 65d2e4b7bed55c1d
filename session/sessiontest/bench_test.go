package sessiontest_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// BenchmarkFakeRecords measures what the Fake keeps per call (retained-B/call,
// the live heap's growth over b.N calls): with every call recorded it grows
// with the calls; with WithMaxRecords it stays flat. Last measured: 250
// bytes per call recording all, 0.08 with WithMaxRecords(1000)
// (examples/BENCHMARKS.md).
func BenchmarkFakeRecords(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []sessiontest.Option
	}{{"All", nil}, {"Last1000", []sessiontest.Option{sessiontest.WithMaxRecords(1000)}}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			fake := sessiontest.New(bc.opts...)
			s := fake.Session("demo")
			rc := session.Receipt{Chat: "15551234567@s.whatsapp.net", MessageIDs: []string{"3EB0C767D26A1D98A4"}, Type: session.ReceiptRead}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for b.Loop() {
				if _, err := s.SendReceipt(ctx, rc); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "retained-B/call")
			runtime.KeepAlive(fake)
		})
	}
}
