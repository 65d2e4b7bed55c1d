package session

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of CoalesceOptions.
const (
	defaultCoalesceMaxBatch    = 100
	defaultCoalesceSendTimeout = 10 * time.Second
)

// CoalesceOptions configures the coalescing [Decorate] puts around each
// session ([DecorateOptions].Coalesce): group commit. When no call for its
// chat, sender and type is in flight, a receipt opens a batch and sends it;
// where that chat's receipts crowd (the previous one came less than 250 µs
// before), it first lets the goroutines already runnable have their turn
// (one runtime.Gosched), so that receipts those goroutines carry for the
// same chat go in the same call. Receipts arriving while a call is in
// flight join the next batch, which goes out as soon as that call returns.
// Under no load nothing waits (the yield returns at once); under load the
// batches grow with it; nothing waits on a timer. A batch that several
// callers share goes out from a goroutine of its own, so that each can
// return when its context ends; one that holds a single receipt goes out
// from its caller's goroutine when the wrapped Session is [ContextBound],
// and a receipt with nothing in flight for its key and nothing to gather
// goes out so without a batch made for it: where nothing is batched group
// commit costs little. The zero value is ready to use.
//
// End to end (BenchmarkEndToEnd in session/whatsmeow, 2 cores), with every
// client marking messages of one chat: 0.21 receipt frames per request at
// 32 concurrent clients (0.09–0.11 at 128), at 1.2–1.3× the throughput
// without coalescing and 0.8× its CPU per request; with no two concurrent
// requests for one chat (nothing to batch) ~0.7 µs a request more CPU (2 %)
// and the same throughput.
type CoalesceOptions struct {
	// MaxBatch is the most distinct message ids one batch carries. A batch
	// goes out as soon as it holds MaxBatch ids, and before a receipt whose
	// ids would take it past MaxBatch joins it (that receipt then opens the
	// next batch). A receipt with more ids than MaxBatch is sent alone,
	// unsplit (the backend splits it into stanzas of MaxReceiptIDs). Default
	// (0 or less) 100, the per-request limit of package seenhandler; at most
	// MaxReceiptIDs (256, what one receipt stanza may carry): a larger
	// value is lowered to it.
	MaxBatch int
	// SendTimeout bounds each batch's call to the wrapped Session, which
	// runs in a goroutine of its own with the values of its opener's
	// context, not its cancellation. Default (0 or less) 10 s, the request
	// timeout of package seenhandler. It does not apply to calls passed
	// straight through, nor to a single receipt sent from its caller's
	// goroutine (see [ContextBound]): those use the caller's context.
	SendTimeout time.Duration
}

// CoalesceStats counts what the coalescing of a [Decorated] did.
type CoalesceStats struct {
	// Calls is the number of SendReceipt calls it received.
	Calls int64
	// Sends is the number of calls it made to the wrapped Session: one per
	// batch, plus one per call passed straight through. Sends/Calls is the
	// number of backend calls per request (1 without coalescing).
	Sends int64
}

// coalescer is a Session that merges receipts for the same chat, sender and
// type into one call to the Session it wraps, by group commit (see
// [CoalesceOptions]). Create it with coalesce; it is safe for concurrent
// use.
type coalescer struct {
	s    Session
	opts CoalesceOptions // defaults applied

	calls, sends atomic.Int64

	mu sync.Mutex
	// keys holds what c knows of each key: its batch open to new
	// receipts, its calls in flight, when its latest receipt arrived. A key
	// with neither a batch nor a call, whose latest receipt is older than
	// yieldWithin, is forgotten at the next prune, which runs once keys
	// holds pruneAt keys. One map for the three: a receipt alone costs one
	// lookup of its key, not one per map and per step.
	keys    map[batchKey]*keyState
	pruneAt int
	born    time.Time // the origin of keyState.last: monotonic
	closed  bool
	// wg counts the batches being sent, for close.
	wg sync.WaitGroup
	// idle counts the sender goroutines waiting on work for a batch to
	// send; stop, closed by close, ends them. A batch goes to an idle
	// sender when there is one: a goroutine started per batch began on a
	// small stack that the call into the backend grew again each time, a
	// cost per request where nothing could be batched.
	idle int
	work chan sent
	stop chan struct{}
}

// keyState is what a coalescer knows of one key; guarded by its mu.
type keyState struct {
	pending *batch // the batch still open to new receipts, or nil
	// inflight counts the key's calls in flight: a pending batch exists
	// only while the key has one, or while its opener yields.
	inflight int
	last     time.Duration // when the key's latest receipt arrived, since born
}

// yieldWithin is how close behind the key's previous receipt a receipt
// must arrive for its batch's opener to yield before sending: receipts
// that crowd that closely may be runnable at the same time, and the yield
// gathers them (on a busy chat they arrive microseconds apart). A chat
// whose receipts come further apart has nothing to gather, and there the
// yield, a trip through the scheduler, cost ~1.7 µs of CPU a request end
// to end (BenchmarkEndToEnd, spread: a chat's receipts ~3 ms apart, the
// fastest under 1 ms). With a millisecond here, the yields left still cost
// 0.56 µs a request there; with 250 µs busy chats batch as before
// (0.19–0.22 frames a request).
const yieldWithin = 250 * time.Microsecond

// minPruneAt is the fewest keys coalescer.keys holds before it is pruned.
const minPruneAt = 1024

// sent is a sealed batch and the receipt to send for it.
type sent struct {
	b *batch
	r Receipt
}

// maxIdleSenders bounds the sender goroutines a coalescer keeps waiting
// for work; a sender that finds as many idle ends.
const maxIdleSenders = 16

var (
	_ Session = (*coalescer)(nil)
	_ wrapper = (*coalescer)(nil)
)

// batchKey is what receipts must share to go out together.
type batchKey struct {
	chat, sender string
	typ          ReceiptType
}

// batch is one call to the wrapped Session in the making. Its fields are
// guarded by coalescer.mu until done is closed; res and err are written once,
// before done is closed, and only read after.
type batch struct {
	key     batchKey
	ks      *keyState       // its key's state in the coalescer
	opener  context.Context // the opening caller's context: its values go with the batch
	members []*member
	// ids maps the distinct ids of the members still waiting to how many
	// carry it; nil while the opener is alone (most batches, where nothing
	// is batched): n then counts its distinct ids.
	ids    map[string]int
	n      int  // distinct ids of the members still waiting
	sealed bool // out of pending: sent, being sent, or abandoned by every member
	// done is closed once res and err are set. It is made (waitable) for
	// a member that waits on another goroutine's call: a batch its opener
	// sends alone on its own goroutine never needs one.
	done chan struct{}
	res  Result
	err  error
	// first and one hold the opener and the members' first slot, so that
	// a batch of one is one allocation.
	first member
	one   [1]*member
}

// waitable returns b.done, made if needed. c.mu must be held.
func (b *batch) waitable() chan struct{} {
	if b.done == nil {
		b.done = make(chan struct{})
	}
	return b.done
}

// member is one SendReceipt call waiting in a batch.
type member struct {
	ids  []string
	ts   time.Time
	gone bool // its caller stopped waiting before the batch was sealed
}

// coalesce returns a Session that coalesces the receipts sent through it by
// group commit (see [CoalesceOptions]): receipts with the same chat, sender
// and type, up to opts.MaxBatch ids, go out as one call to s carrying the
// union of their ids (each id once, in arrival order) and the latest of
// their timestamps. s must not be nil.
//
// Every caller waiting in a batch gets the batch's Result, Type as sent, with
// Duplicates narrowed to its own ids, or the batch's error. A caller whose ctx
// ends while it waits returns at once, the opener of the batch included. If
// its batch has not gone out yet, its ids are taken out of it (and a batch
// left empty is not sent), and it returns ctx.Err(): nothing of its receipt
// was sent. If its batch is being sent, the call goes on for the others and
// the caller gets an error wrapping [ErrInFlight] and ctx.Err(): its receipt
// may go out, and sending it again may send it twice.
//
// The batch is sent with context.WithoutCancel of the context of the receipt
// that opened it, bounded by opts.SendTimeout: the values of that context
// (trace ids, loggers) carry over, but not its cancellation or deadline, as
// the call belongs to every caller in the batch and one of them giving up
// must not fail the others; SendTimeout keeps the call bounded all the same.
// A batch still holding its opener alone when it goes out, over an s that
// is [ContextBound], is sent by its opener with its own context instead;
// if that context ends during the call and the call fails, the error wraps
// ErrInFlight and the context's error, as above.
// A panic in s during a batched call is turned into an error for every caller
// of the batch.
//
// Receipts with no ids or no chat are passed straight to s, which refuses
// them with [ErrInvalidReceipt]; so is every receipt after close. A caller
// whose ctx has already ended gets ctx.Err() and nothing is sent.
func coalesce(s Session, opts CoalesceOptions) *coalescer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultCoalesceMaxBatch
	}
	opts.MaxBatch = min(opts.MaxBatch, MaxReceiptIDs)
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = defaultCoalesceSendTimeout
	}
	return &coalescer{s: s, opts: opts, work: make(chan sent), stop: make(chan struct{}),
		keys: make(map[batchKey]*keyState), pruneAt: minPruneAt, born: time.Now()}
}

// Unwrap returns the Session c wraps.
func (c *coalescer) Unwrap() Session { return c.s }

// stats returns the counts of c's traffic so far.
func (c *coalescer) stats() CoalesceStats {
	return CoalesceStats{Calls: c.calls.Load(), Sends: c.sends.Load()}
}

// SendReceipt sends r, alone or in a batch with other receipts for the same
// chat, sender and type; see coalesce.
func (c *coalescer) SendReceipt(ctx context.Context, r Receipt) (Result, error) {
	if r.Chat == "" || len(r.MessageIDs) == 0 {
		return c.direct(ctx, r)
	}
	if err := ctx.Err(); err != nil {
		c.calls.Add(1)
		return Result{}, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.direct(ctx, r)
	}
	c.calls.Add(1)
	key := batchKey{chat: r.Chat, sender: r.Sender, typ: r.Type}
	ks, crowded := c.arrived(key)
	if ks.pending == nil && ks.inflight == 0 && !crowded && len(r.MessageIDs) < c.opts.MaxBatch &&
		fresh(nil, r.MessageIDs) == len(r.MessageIDs) && boundByContext(c.s) {
		// Nothing to join, nothing in flight, nothing runnable to gather,
		// no id twice: the receipt would open a batch, seal it at once and
		// send it from this goroutine (see below). It goes as it is, with
		// no batch made for it; receipts for the key arriving meanwhile
		// open the next batch, which goes out when this call lands.
		c.takeoff(ks)
		c.mu.Unlock()
		return c.sendAlone(ctx, ks, r)
	}
	b, m := c.join(ctx, key, ks, r)
	// With nothing in flight for the key, the receipt that opened the batch
	// sends it once the goroutines already runnable have had their turn —
	// those with a receipt for the key join it. Under no load the yield
	// returns at once; under load the batch holds what the load brought.
	// Receipts arriving while it is sent open the next batch, which goes out
	// when it lands. The call runs in a goroutine of its own, as every
	// shared batch's: it is every member's, and the opener, like the
	// others, must be free to return when its own context ends — unless
	// the opener is still alone and the Session returns when the opener's
	// context ends: then it is the opener's call, made on its goroutine.
	// The yield is taken only where the key's receipts crowd (see
	// yieldWithin): elsewhere nothing is runnable to join, and the batch
	// goes at once, in the same critical section.
	lead := ks.inflight == 0 && !b.sealed && len(b.members) == 1
	if lead && crowded {
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
	}
	if lead && !b.sealed { // else filled up meanwhile (dispatched), or flushed by close
		if len(b.members) == 1 && boundByContext(c.s) {
			// Still alone: nobody else waits on the call, and a bound
			// Session returns when ctx ends. The caller makes it itself,
			// with its own context: no hand-off, no second timer.
			r := c.seal(b)
			c.mu.Unlock()
			return c.sendAlone(ctx, b.ks, r)
		}
		c.dispatch(b)
	}
	done := b.waitable()
	c.mu.Unlock()

	select {
	case <-done:
		return b.result(m)
	case <-ctx.Done():
	}
	select {
	case <-done: // both ready: the outcome is known, say it
		return b.result(m)
	default:
	}
	c.mu.Lock()
	sent := b.sealed // sealed with m still in it: being sent
	c.leave(b, m)
	c.mu.Unlock()
	if sent {
		return Result{}, fmt.Errorf("%w: the caller stopped waiting while its batch was being sent: %w", ErrInFlight, ctx.Err())
	}
	return Result{}, ctx.Err()
}

// result is b's outcome for its member m: b.done must be closed.
func (b *batch) result(m *member) (Result, error) {
	if b.err != nil {
		return Result{}, b.err
	}
	return narrow(b.res, m.ids), nil
}

// narrow returns res as a caller whose ids were ids gets it: its
// Duplicates narrowed to those ids.
func narrow(res Result, ids []string) Result {
	return Result{Type: res.Type, Chat: res.Chat, Sender: res.Sender, Duplicates: own(res.Duplicates, ids)}
}

// flush sends every pending batch now, without waiting for the results.
func (c *coalescer) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ks := range c.keys {
		if ks.pending != nil {
			c.dispatch(ks.pending)
		}
	}
}

// close flushes the pending batches and waits until every batch has been
// sent, or until ctx ends (it then returns ctx.Err(); the batches still in
// flight finish within SendTimeout). Afterwards SendReceipt passes every
// receipt straight through to the wrapped Session, so that requests still
// arriving during a graceful shutdown are served. close may be called more
// than once.
func (c *coalescer) close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.idle = 0 // no batch goes to them any more
		close(c.stop)
	}
	c.mu.Unlock()
	c.flush()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// direct passes r straight through to the wrapped Session.
func (c *coalescer) direct(ctx context.Context, r Receipt) (Result, error) {
	c.calls.Add(1)
	c.sends.Add(1)
	return c.s.SendReceipt(ctx, r)
}

// arrived notes that a receipt for key arrives now, and returns the key's
// state and whether its previous receipt arrived less than yieldWithin
// before. c.mu must be held.
func (c *coalescer) arrived(key batchKey) (*keyState, bool) {
	now := time.Since(c.born) // monotonic
	ks := c.keys[key]
	if ks == nil {
		if len(c.keys) >= c.pruneAt {
			c.prune(now)
		}
		ks = &keyState{last: now - yieldWithin} // no previous receipt: not crowded
		c.keys[key] = ks
	}
	crowded := now-ks.last < yieldWithin
	ks.last = now
	return ks, crowded
}

// prune forgets the keys with no batch and no call whose latest receipt
// is yieldWithin old, and sets the size of the next prune. c.mu must be
// held.
func (c *coalescer) prune(now time.Duration) {
	for k, ks := range c.keys {
		if ks.pending == nil && ks.inflight == 0 && now-ks.last >= yieldWithin {
			delete(c.keys, k)
		}
	}
	c.pruneAt = max(minPruneAt, 2*len(c.keys))
}

// join adds r to the open batch for its key, opening one if needed, and
// returns the batch and r's place in it. c.mu must be held.
func (c *coalescer) join(ctx context.Context, key batchKey, ks *keyState, r Receipt) (*batch, *member) {
	b := ks.pending
	if b != nil && b.n+fresh(b.index(), r.MessageIDs) > c.opts.MaxBatch {
		c.dispatch(b) // r would overfill it: it goes now, r opens the next one
		b = nil
	}
	if b == nil {
		// Its opener sends it when nothing is in flight for the key; else
		// the call in flight does when it lands.
		b = &batch{key: key, ks: ks, opener: ctx, first: member{ids: append([]string(nil), r.MessageIDs...), ts: r.Timestamp}}
		m := &b.first
		b.one[0] = m
		b.members, b.n = b.one[:], fresh(nil, m.ids)
		ks.pending = b
		if b.n >= c.opts.MaxBatch {
			c.dispatch(b)
		}
		return b, m
	}
	m := &member{ids: append([]string(nil), r.MessageIDs...), ts: r.Timestamp}
	ids := b.index()
	b.members = append(b.members, m)
	for _, id := range m.ids {
		ids[id]++
	}
	b.n = len(ids)
	if b.n >= c.opts.MaxBatch {
		c.dispatch(b)
	}
	return b, m
}

// index returns b.ids, made from b's members if it is still nil.
func (b *batch) index() map[string]int {
	if b.ids == nil {
		b.ids = make(map[string]int, b.n)
		for _, m := range b.members {
			if !m.gone {
				for _, id := range m.ids {
					b.ids[id]++
				}
			}
		}
	}
	return b.ids
}

// fresh counts the distinct ids of ids that are not in have (nil: none
// are). The few ids of nearly every receipt are counted without building a
// set.
func fresh(have map[string]int, ids []string) int {
	if len(ids) <= 16 {
		n := 0
		for i, id := range ids {
			if have[id] == 0 && !slices.Contains(ids[:i], id) {
				n++
			}
		}
		return n
	}
	added := make(map[string]bool, len(ids))
	for _, id := range ids {
		if have[id] == 0 {
			added[id] = true
		}
	}
	return len(added)
}

// leave takes a member whose caller stopped waiting out of its batch, unless
// the batch is already out. c.mu must be held.
func (c *coalescer) leave(b *batch, m *member) {
	if b.sealed {
		return
	}
	ids := b.index()
	m.gone = true
	for _, id := range m.ids {
		if ids[id]--; ids[id] <= 0 {
			delete(ids, id)
		}
	}
	b.n = len(ids)
	if b.n == 0 { // nobody waits any more: abandon it
		b.sealed = true
		b.ks.pending = nil
	}
}

// takeoff counts a call in flight for ks's key, for the key's next batch
// to wait on and for close; landed ends it. c.mu must be held.
func (c *coalescer) takeoff(ks *keyState) {
	ks.inflight++
	c.wg.Add(1)
}

// landed ends a call in flight for ks's key (see takeoff): the batch that
// gathered meanwhile, if any, goes out now.
func (c *coalescer) landed(ks *keyState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ks.inflight--
	if ks.pending != nil && ks.inflight == 0 {
		c.dispatch(ks.pending)
	}
	c.wg.Done() // after dispatch has counted the next batch, if any
}

// dispatch seals b and sends it on a sender goroutine: an idle one, or a
// new one. c.mu must be held.
func (c *coalescer) dispatch(b *batch) {
	r := c.seal(b)
	b.waitable() // for send to close
	if c.idle > 0 {
		c.idle--
		c.work <- sent{b, r} // taken at once: the sender waits for it, or is about to
		return
	}
	go c.sender(sent{b, r})
}

// sender sends j, then waits for further batches while fewer than
// maxIdleSenders wait, until close.
func (c *coalescer) sender(j sent) {
	for {
		c.send(j.b, j.r)
		c.mu.Lock()
		if c.closed || c.idle >= maxIdleSenders {
			c.mu.Unlock()
			return
		}
		c.idle++
		c.mu.Unlock()
		select {
		case j = <-c.work:
		case <-c.stop:
			return
		}
	}
}

// seal closes b to new and leaving members, counts its call in flight for
// its key, and returns the receipt to send for it; the caller must then
// make the call (send or sendAlone), which ends with landed. c.mu must be
// held.
func (c *coalescer) seal(b *batch) Receipt {
	b.sealed = true
	b.ks.pending = nil
	c.takeoff(b.ks)
	r := Receipt{Chat: b.key.chat, Sender: b.key.sender, Type: b.key.typ}
	if len(b.members) == 1 && b.n == len(b.members[0].ids) { // alone, no id twice: its own copy goes
		r.MessageIDs, r.Timestamp = b.members[0].ids, b.members[0].ts
		return r
	}
	r.MessageIDs = make([]string, 0, b.n)
	seen := make(map[string]bool, b.n)
	for _, m := range b.members {
		if m.gone {
			continue
		}
		if m.ts.After(r.Timestamp) {
			r.Timestamp = m.ts
		}
		for _, id := range m.ids {
			if !seen[id] {
				seen[id] = true
				r.MessageIDs = append(r.MessageIDs, id)
			}
		}
	}
	return r
}

// send makes b's call to the wrapped Session, hands the outcome to b's
// members, and sends the batch that gathered for b's key meanwhile.
func (c *coalescer) send(b *batch, r Receipt) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.opener), c.opts.SendTimeout)
	defer cancel()
	c.sends.Add(1)
	b.res, b.err = c.call(ctx, r)
	close(b.done)
	c.landed(b.ks)
}

// sendAlone makes the call for a receipt r alone for its key ks, sealed
// (see seal) or never batched, on its caller's goroutine and with its
// context ctx (see [ContextBound]); then sends the batch that gathered for
// the key meanwhile. It ends the call takeoff counted (landed). A
// failure after ctx ended is reported as [ErrInFlight], as for a member of
// a batch sent from a goroutine of its own: the receipt may have gone out
// before the backend stopped.
func (c *coalescer) sendAlone(ctx context.Context, ks *keyState, r Receipt) (Result, error) {
	c.sends.Add(1)
	res, err := c.call(ctx, r)
	c.landed(ks)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("%w: the caller's context ended while its receipt was being sent: %w", ErrInFlight, ctx.Err())
		}
		return Result{}, err
	}
	return narrow(res, r.MessageIDs), nil
}

// call calls the wrapped Session, turning a panic into an error: it would
// otherwise crash the process from a goroutine no caller can recover in.
func (c *coalescer) call(ctx context.Context, r Receipt) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("session: panic in coalesced SendReceipt: %v", p)
		}
	}()
	return c.s.SendReceipt(ctx, r)
}

// own returns the ids of dups that are in ids, in dups' order; nil when none.
func own(dups, ids []string) []string {
	if len(dups) == 0 {
		return nil
	}
	mine := make(map[string]bool, len(ids))
	for _, id := range ids {
		mine[id] = true
	}
	var out []string
	for _, id := range dups {
		if mine[id] {
			out = append(out, id)
		}
	}
	return out
}
