package whatsmeow

import "hash/maphash"

// blockFilter is a split-block Bloom filter of strings, the design of
// Apache Parquet's Bloom filters (after Impala's; Putze, Sanders and
// Singler, "Cache-, hash- and space-efficient Bloom filters", 2007): one
// 64-bit hash of an id picks a 512-bit block, one cache line, and sets or
// tests one bit in each of its eight 64-bit words. A classic filter's k
// probes land on up to k cache lines; a session's stored-id filter is
// asked about every receipt, and with many sessions its lines are seldom
// in cache, so testing one line instead of seven is most of its cost.
//
// Its hash is hash/maphash with a seed of its own: the filter lives in
// memory only, and no two filters share their collisions. It is not safe
// for concurrent use: [storedIDs] holds its lock around it.
type blockFilter struct {
	seed  maphash.Seed
	words []uint64 // blocks of blockWords
	n     uint64   // blocks
}

// blockWords is how many 64-bit words make a block: 64 bytes, a cache line.
const blockWords = 8

// idsPerBlock is how many ids a filter holds per block at its capacity.
// With ids spread over blocks at random (Poisson, mean λ), the
// false-positive rate is Σ_j P(j; λ)·(1 − (63/64)^j)^8: 0.77 % for λ = 48
// (10.7 bits an id), against 1.05 % for 51.2 (the 9.6 bits an id a classic
// filter needs for 1 %). Blocks fill unevenly, so a blocked filter needs
// more bits than a classic one for the same rate; 48 keeps the rate under
// storedIDsFP with room to spare (TestBlockFilterFalsePositives).
const idsPerBlock = 48

// blockSalts are Parquet's split-block salts: odd constants, each
// multiplied by the hash's low 32 bits to pick one word's bit.
var blockSalts = [blockWords]uint32{
	0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d,
	0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31,
}

// newBlockFilter returns an empty filter sized for capacity ids.
func newBlockFilter(capacity int) *blockFilter {
	n := max(1, (capacity+idsPerBlock-1)/idsPerBlock)
	// A block is a cache line only if the words start on one: Go's
	// allocator puts an object of pointer-free words of 1 KiB or more (a
	// filter is at least 5.4 KiB) at a multiple of 64 bytes, as
	// TestBlockFilterBlocksAreCacheLines checks.
	return &blockFilter{
		seed:  maphash.MakeSeed(),
		words: make([]uint64, n*blockWords),
		n:     uint64(n),
	}
}

// add adds id.
func (f *blockFilter) add(id string) { f.addHash(maphash.String(f.seed, id)) }

// has reports whether id may have been added: false only if it was not.
func (f *blockFilter) has(id string) bool { return f.hasHash(maphash.String(f.seed, id)) }

// block returns the block of hash h: its high 32 bits scaled to the
// number of blocks (a multiply and a shift rather than a division).
func (f *blockFilter) block(h uint64) *[blockWords]uint64 {
	i := (h >> 32) * f.n >> 32
	return (*[blockWords]uint64)(f.words[i*blockWords:])
}

// addHash sets the bits of hash h.
func (f *blockFilter) addHash(h uint64) {
	b, x := f.block(h), uint32(h)
	for i, salt := range blockSalts {
		b[i] |= 1 << (x * salt >> 26)
	}
}

// hasHash reports whether all the bits of hash h are set.
func (f *blockFilter) hasHash(h uint64) bool {
	b, x := f.block(h), uint32(h)
	for i, salt := range blockSalts {
		if b[i]&(1<<(x*salt>>26)) == 0 {
			return false
		}
	}
	return true
}
