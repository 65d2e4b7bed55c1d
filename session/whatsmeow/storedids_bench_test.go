package whatsmeow

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStoredIDsAbsent measures what a receipt for a message never
// stored pays the session's stored-id filter: absent for an id it has not
// been asked about, the filters holding half their default capacity (2,048
// of 4,096 ids). With one session the filter stays in cache; with 1,000
// (about 5 MB of filters, asked in turn) each test reads memory the last
// test of that filter left long ago, as on a busy gateway.
func BenchmarkStoredIDsAbsent(b *testing.B) {
	stored := make([]string, storedIDsMin/2)
	for i := range stored {
		stored[i] = fmt.Sprintf("3EB0%016X", i)
	}
	// Each filter sees an id once: with 1,000 filters and 65,536 ids, an
	// id comes back to a filter after 65,536,000 tests, long after its
	// memo of misses has forgotten it.
	asked := make([]string, 1<<16)
	for i := range asked {
		asked[i] = fmt.Sprintf("3EB0NEW%013X", i)
	}
	for _, sessions := range []int{1, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			filters := make([]storedIDs, sessions)
			for i := range filters {
				if err := filters[i].load(context.Background(), func(context.Context) ([]string, error) { return stored, nil }); err != nil {
					b.Fatal(err)
				}
			}
			i, absent := 0, 0
			for b.Loop() {
				if filters[i%sessions].absent(asked[i%len(asked)]) {
					absent++
				}
				i++
			}
			if absent < i*95/100 { // about 1 % false positives at capacity, far fewer at half of it
				b.Fatalf("%d of %d unseen ids ruled out", absent, i)
			}
		})
	}
}
