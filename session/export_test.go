package session

import "context"

// The decorators, under the names the external tests use: apps reach them
// through Decorate only.
type (
	Coalescer = coalescer
	Deduper   = deduper
)

// Coalesce returns coalesce(s, opts).
func Coalesce(s Session, opts CoalesceOptions) *Coalescer { return coalesce(s, opts) }

// Dedup returns dedup(s, opts).
func Dedup(s Session, opts DedupOptions) *Deduper { return dedup(s, opts) }

// Stats returns c's counts.
func (c *coalescer) Stats() CoalesceStats { return c.stats() }

// Flush sends c's pending batches now.
func (c *coalescer) Flush() { c.flush() }

// Close closes c.
func (c *coalescer) Close(ctx context.Context) error { return c.close(ctx) }

// RecentKeys returns how many keys c remembers the latest arrival of.
func (c *coalescer) RecentKeys() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}
