package whatsmeow

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// randomIDs returns n ids drawn from r: of every length up to 40 bytes,
// the empty one and bytes beyond ASCII included, like anything a request
// may name.
func randomIDs(r *rand.Rand, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		b := make([]byte, r.IntN(41))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		ids[i] = string(b)
	}
	return ids
}

// A filter says every id added to it may have been: at every size, up to
// its capacity and beyond it, and through storedIDs as through the filter.
func TestBlockFilterNoFalseNegatives(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, capacity := range []int{1, idsPerBlock, idsPerBlock + 1, storedIDsMin, 3 * storedIDsMin} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			f := newBlockFilter(capacity)
			ids := randomIDs(r, 2*capacity+10) // past capacity, bits only fill
			for i, id := range ids {
				f.add(id)
				for _, added := range []string{id, ids[i/2], ids[0]} {
					if !f.has(added) {
						t.Fatalf("%q was added and is ruled out", added)
					}
				}
			}
			for _, id := range ids {
				if !f.has(id) {
					t.Fatalf("%q was added and is ruled out", id)
				}
			}
		})
	}
	var s storedIDs
	listed, later := randomIDs(r, storedIDsMin), randomIDs(r, storedIDsMin)
	if err := s.load(context.Background(), func(context.Context) ([]string, error) { return listed, nil }); err != nil {
		t.Fatal(err)
	}
	s.add(later...) // within capacity: max(storedIDsMin, 2·listed)
	for _, ids := range [][]string{listed, later} {
		for _, id := range ids {
			if s.absent(id) {
				t.Fatalf("%q is stored and is ruled out", id)
			}
		}
		if got := s.maybe(ids); len(got) != len(ids) {
			t.Fatalf("maybe kept %d of %d stored ids", len(got), len(ids))
		}
	}
}

// FuzzBlockFilter: an id added is never ruled out, whatever the ids.
func FuzzBlockFilter(f *testing.F) {
	f.Add("3EB0C767D26A1D8F0B7A", "")
	f.Add("", "3EB0")
	f.Add("\xff\x00", "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI")
	f.Fuzz(func(t *testing.T, a, b string) {
		bf := newBlockFilter(storedIDsMin)
		bf.add(a)
		bf.add(b)
		if !bf.has(a) || !bf.has(b) {
			t.Fatalf("added %q and %q: has = %v, %v", a, b, bf.has(a), bf.has(b))
		}
	})
}

// blockFilterFP is the expected false-positive rate of a filter holding
// idsPerBlock ids a block on average: Σ_j P(j)·(1 − (63/64)^j)^8 over the
// Poisson number j of ids in the block a new id falls in (the binomial
// count is a little less spread, so its rate a little lower).
func blockFilterFP(idsPerBlock float64) float64 {
	fp, p := 0.0, math.Exp(-idsPerBlock)
	for j := range 1000 {
		if j > 0 {
			p *= idsPerBlock / float64(j)
		}
		fp += p * math.Pow(1-math.Pow(63.0/64, float64(j)), blockWords)
	}
	return fp
}

// At its capacity a filter rules out all but storedIDsFP of the ids never
// added: as computed, and as measured over hashes drawn with a fixed seed
// (deterministic) and over ids hashed with the filter's own random seed
// (bounded loosely enough never to fail by chance).
func TestBlockFilterFalsePositives(t *testing.T) {
	if fp := blockFilterFP(idsPerBlock); fp > storedIDsFP {
		t.Errorf("%d ids a block: %.2f %% false positives computed, want at most %.0f %%", idsPerBlock, 100*fp, 100*storedIDsFP)
	}
	const probes = 1 << 18
	for _, capacity := range []int{storedIDsMin, 25 * storedIDsMin} {
		r := rand.New(rand.NewPCG(uint64(capacity), 3))
		f := newBlockFilter(capacity)
		for range capacity {
			f.addHash(r.Uint64())
		}
		fp := 0
		for range probes {
			if f.hasHash(r.Uint64()) {
				fp++
			}
		}
		if rate := float64(fp) / probes; rate > storedIDsFP {
			t.Errorf("capacity %d, full: %.2f %% of new hashes may have been added, want at most %.0f %%", capacity, 100*rate, 100*storedIDsFP)
		}
	}
	// Through maphash, 100,000 ids in 2,084 blocks: the measured rate's
	// standard deviation is about 0.03 %, around 0.77 %; 1.5 % is never
	// reached by chance, only by a hash that spreads ids badly.
	const capacity = 100_000
	f := newBlockFilter(capacity)
	for i := range capacity {
		f.add(fmt.Sprintf("3EB0%016X", i))
	}
	fp := 0
	for i := range probes {
		if f.has(fmt.Sprintf("3EB0NEW%013X", i)) {
			fp++
		}
	}
	if rate := float64(fp) / probes; rate > 0.015 {
		t.Errorf("capacity %d, full, ids hashed by maphash: %.2f %% false positives, want about %.2f %%", capacity, 100*rate, 100*blockFilterFP(idsPerBlock))
	}
}

// Each block of a filter is one cache line: the filter's words start at a
// multiple of 64 bytes, for every size storedIDs makes. Otherwise a test
// reads two lines as often as not.
func TestBlockFilterBlocksAreCacheLines(t *testing.T) {
	for capacity := storedIDsMin; capacity < 100*storedIDsMin; capacity += 4099 {
		f := newBlockFilter(capacity)
		if len(f.words) != int(f.n)*blockWords || int(f.n)*idsPerBlock < capacity {
			t.Fatalf("capacity %d: %d words in %d blocks", capacity, len(f.words), f.n)
		}
		if at := uintptr(unsafe.Pointer(&f.words[0])); at%64 != 0 {
			t.Fatalf("capacity %d: the filter's words start at %#x, not on a 64-byte cache line", capacity, at)
		}
	}
}
