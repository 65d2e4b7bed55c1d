package session

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of DedupOptions.
const (
	defaultDedupSize = 100_000
	defaultDedupTTL  = 24 * time.Hour
)

// DedupOptions configures the dedup [Decorate] puts around each session
// ([DecorateOptions].Dedup): ids sent recently are not sent again (see
// dedup). The zero value is ready to use.
type DedupOptions struct {
	// Size is the most ids remembered, all chats and receipt types together;
	// beyond it the least recently sent or asked for are forgotten first.
	// Default (0 or less) 100,000 (a few MB).
	Size int
	// TTL is how long an id is remembered after it was sent. Default (0 or
	// less) 24 h.
	TTL time.Duration
}

// deduper is a Session that does not send again the ids it has sent
// recently. Create it with dedup; it is safe for concurrent use.
type deduper struct {
	s   Session
	ttl time.Duration

	mu sync.Mutex
	// sent maps chat, type and id of what was sent to when that expires.
	sent *simplelru.LRU[string, time.Time]
	// inflight holds the keys being sent by a call that has not returned.
	inflight map[string]struct{}
}

var (
	_ Session = (*deduper)(nil)
	_ wrapper = (*deduper)(nil)
)

// dedup returns a Session that remembers, for opts.TTL and up to opts.Size
// ids, the ids it sent through s, keyed by chat, receipt type (as asked for)
// and id: a played receipt after a read one is not a duplicate. s must not
// be nil.
//
// A receipt's ids sent recently are not sent again: they come back in
// [Result].Duplicates, and only the others are passed to s. When every id is a
// duplicate, s is not called and the Result is {Type: r.Type, Duplicates:
// all the ids}. Ids are remembered only once s has sent them successfully.
//
// An id that a concurrent call is sending at that moment also counts as a
// duplicate, so that two requests racing with the same id send it once. If
// that concurrent send then fails, the id is not remembered, and only the
// caller whose send failed gets the error: the other one has been told
// "duplicate". A retry of either sends it.
//
// Receipts with no ids or no chat are passed straight to s, which refuses
// them with [ErrInvalidReceipt]. A deduper wraps one WhatsApp session: give
// each session its own. It starts no goroutine and needs no closing.
func dedup(s Session, opts DedupOptions) *deduper {
	if opts.Size <= 0 {
		opts.Size = defaultDedupSize
	}
	if opts.TTL <= 0 {
		opts.TTL = defaultDedupTTL
	}
	// simplelru rather than golang-lru's expirable: expirable.NewLRU starts
	// a sweeping goroutine that never exits (v2.0.7), which would keep every
	// deduper and its cache alive. Expiry is checked on lookup instead; the
	// expired entries left behind are bounded by Size.
	sent, err := simplelru.NewLRU[string, time.Time](opts.Size, nil)
	if err != nil {
		panic(err) // unreachable: Size is positive
	}
	return &deduper{s: s, ttl: opts.TTL, sent: sent, inflight: make(map[string]struct{})}
}

// Unwrap returns the Session d wraps.
func (d *deduper) Unwrap() Session { return d.s }

// SendReceipt sends the ids of r that were not sent recently; see dedup.
func (d *deduper) SendReceipt(ctx context.Context, r Receipt) (Result, error) {
	if r.Chat == "" || len(r.MessageIDs) == 0 {
		return d.s.SendReceipt(ctx, r)
	}
	prefix := r.Chat + "\x00" + string(r.Type) + "\x00"
	var ids, dups, keys []string // ids to send and their keys; duplicates
	seen := make(map[string]bool, len(r.MessageIDs))
	d.mu.Lock()
	now := time.Now()
	for _, id := range r.MessageIDs {
		if seen[id] {
			continue // repeated within r: it counts once
		}
		seen[id] = true
		k := prefix + id
		if _, ok := d.inflight[k]; ok {
			dups = append(dups, id)
			continue
		}
		if exp, ok := d.sent.Get(k); ok && now.Before(exp) {
			dups = append(dups, id)
			continue
		}
		d.inflight[k] = struct{}{}
		ids = append(ids, id)
		keys = append(keys, k)
	}
	d.mu.Unlock()
	if len(ids) == 0 {
		return Result{Type: r.Type, Duplicates: dups}, nil
	}

	sent := false
	defer func() { // also when s panics, so that the ids are not held forever
		d.mu.Lock()
		defer d.mu.Unlock()
		exp := time.Now().Add(d.ttl)
		for _, k := range keys {
			delete(d.inflight, k)
			if sent {
				d.sent.Add(k, exp)
			}
		}
	}()
	send := r
	send.MessageIDs = ids
	res, err := d.s.SendReceipt(ctx, send)
	if err != nil {
		return Result{}, err
	}
	sent = true
	if len(dups) > 0 {
		// Ours and those s reported, each once, in r's order.
		all := make(map[string]bool, len(dups)+len(res.Duplicates))
		for _, id := range slices.Concat(dups, res.Duplicates) {
			all[id] = true
		}
		res.Duplicates = nil
		for _, id := range r.MessageIDs {
			if all[id] {
				res.Duplicates = append(res.Duplicates, id)
				all[id] = false
			}
		}
	}
	return res, nil
}
