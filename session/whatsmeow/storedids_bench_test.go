package whatsmeow

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
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
	// id comes back to a filter after 65,536,000 tests.
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

// classicFilter is a classic Bloom filter as storedIDs kept before the
// blocked one (bits-and-blooms/bloom, 1 % at capacity: k = 7 bits anywhere
// in m), kept here only to compare the two in one run. Its hash is maphash
// too, cheaper than bits-and-blooms' 128-bit murmur3, so what it measures
// is the cost of k cache lines against one.
type classicFilter struct {
	seed maphash.Seed
	bits []uint64
	m    uint64 // bits
}

// newClassicFilter returns a filter sized as bloom.NewWithEstimates(capacity, storedIDsFP).
func newClassicFilter(capacity int) *classicFilter {
	m := uint64(math.Ceil(-float64(capacity) * math.Log(storedIDsFP) / (math.Ln2 * math.Ln2)))
	return &classicFilter{seed: maphash.MakeSeed(), bits: make([]uint64, (m+63)/64), m: m}
}

// classicK is how many bits a classic filter sets for an id, optimal for
// storedIDsFP: ⌈−log2 0.01⌉.
const classicK = 7

// add adds id: bit i is h1 + i·h2 (mod m), the two halves of one hash.
func (f *classicFilter) add(id string) {
	h := maphash.String(f.seed, id)
	for i := range uint64(classicK) {
		at := (h>>32 + i*uint64(uint32(h))) % f.m
		f.bits[at/64] |= 1 << (at % 64)
	}
}

// has reports whether id may have been added, stopping at the first bit
// not set, as bits-and-blooms does.
func (f *classicFilter) has(id string) bool {
	h := maphash.String(f.seed, id)
	for i := range uint64(classicK) {
		at := (h>>32 + i*uint64(uint32(h))) % f.m
		if f.bits[at/64]&(1<<(at%64)) == 0 {
			return false
		}
	}
	return true
}

// BenchmarkIDFilterHas compares the filters' own test of an id never
// added, without storedIDs' lock, each filter holding
// half of storedIDsMin: the blocked filter reads one cache line, the
// classic one up to seven (fewer when it finds a bit not set early, as it
// does in a filter half full).
func BenchmarkIDFilterHas(b *testing.B) {
	asked := make([]string, 1<<16)
	for i := range asked {
		asked[i] = fmt.Sprintf("3EB0NEW%013X", i)
	}
	kinds := []struct {
		name string
		make func() func(string) bool
	}{
		{"blocked", func() func(string) bool {
			f := newBlockFilter(storedIDsMin)
			for i := range storedIDsMin / 2 {
				f.add(fmt.Sprintf("3EB0%016X", i))
			}
			return f.has
		}},
		{"classic", func() func(string) bool {
			f := newClassicFilter(storedIDsMin)
			for i := range storedIDsMin / 2 {
				f.add(fmt.Sprintf("3EB0%016X", i))
			}
			return f.has
		}},
	}
	for _, kind := range kinds {
		for _, sessions := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/sessions=%d", kind.name, sessions), func(b *testing.B) {
				filters := make([]func(string) bool, sessions)
				for i := range filters {
					filters[i] = kind.make()
				}
				i, maybe := 0, 0
				for b.Loop() {
					if filters[i%sessions](asked[i%len(asked)]) {
						maybe++
					}
					i++
				}
				if maybe > i/20 {
					b.Fatalf("%d of %d unseen ids may have been added", maybe, i)
				}
			})
		}
	}
}
