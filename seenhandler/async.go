package seenhandler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Defaults of AsyncOptions.
const (
	DefaultAsyncMinDelay  = 800 * time.Millisecond
	DefaultAsyncMaxDelay  = 2 * time.Second
	DefaultAsyncQueueSize = 10_000
)

// AsyncOptions configures asynchronous requests: a request with
// "async": true is answered 202 at once, and its receipts are sent after a
// random, human-like delay (bots that mark messages read within
// milliseconds look like bots). The zero value holds the defaults.
type AsyncOptions struct {
	// Default makes every request asynchronous unless it says
	// "async": false. Default: false.
	Default bool
	// MinDelay and MaxDelay bound the delay, drawn uniformly for each
	// request. Default: DefaultAsyncMinDelay (800 ms) and
	// DefaultAsyncMaxDelay (2 s).
	MinDelay, MaxDelay time.Duration
	// QueueSize bounds the receipts waiting to be sent; a request that
	// would exceed it gets 503 queue_full, and nothing of it is queued.
	// Default: DefaultAsyncQueueSize (10,000).
	QueueSize int
	// Rand returns a number in [0, 1) that picks each delay; tests inject
	// their own. Default: math/rand/v2's Float64.
	Rand func() float64
}

// WithAsync configures asynchronous requests. Without it, requests may
// still ask for "async": true and get the defaults of AsyncOptions.
func WithAsync(o AsyncOptions) Option {
	return func(c *config) error {
		o = o.withDefaults()
		if o.MinDelay < 0 || o.MaxDelay < o.MinDelay {
			return errors.New("seenhandler: WithAsync: need 0 <= MinDelay <= MaxDelay")
		}
		if o.QueueSize < 0 {
			return errors.New("seenhandler: WithAsync: negative QueueSize")
		}
		c.async = o
		return nil
	}
}

func (o AsyncOptions) withDefaults() AsyncOptions {
	if o.MinDelay == 0 && o.MaxDelay == 0 {
		o.MinDelay, o.MaxDelay = DefaultAsyncMinDelay, DefaultAsyncMaxDelay
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultAsyncQueueSize
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o
}

// Stats counts the receipts of asynchronous requests. At every moment
// Accepted == Sent + Failed + Pending.
type Stats struct {
	// Accepted receipts were queued (their requests got 202).
	Accepted int64
	// Sent receipts were handed to the backend, Failed ones were not
	// (the backend failed, or Shutdown's deadline passed first).
	Sent, Failed int64
	// Pending receipts wait for their delay, or are being sent.
	Pending int64
}

// QueueObserver is an Observer that also wants the number of receipts
// waiting in the asynchronous queue, each time it changes.
type QueueObserver interface {
	Observer
	QueueDepth(ctx context.Context, depth int)
}

// Errors of the asynchronous queue and of shutting down.
var (
	errQueueFull    = errors.New("the asynchronous queue is full")
	errShuttingDown = errors.New("the handler is shutting down")
)

// dispatcher runs asynchronous jobs after their delay.
type dispatcher struct {
	opts AsyncOptions

	mu      sync.Mutex
	closed  bool
	jobs    map[*job]struct{}
	stats   Stats
	running sync.WaitGroup
}

type job struct {
	receipts int
	timer    *time.Timer
	once     sync.Once
	run      func(context.Context) (sent, failed int)
}

func newDispatcher(o AsyncOptions) *dispatcher {
	return &dispatcher{opts: o.withDefaults(), jobs: make(map[*job]struct{})}
}

// delay draws a job's delay.
func (d *dispatcher) delay() time.Duration {
	span := d.opts.MaxDelay - d.opts.MinDelay
	return d.opts.MinDelay + time.Duration(d.opts.Rand()*float64(span))
}

// enqueue queues run, which sends n receipts, to start after a delay.
func (d *dispatcher) enqueue(n int, run func(context.Context) (sent, failed int)) (depth int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return 0, errShuttingDown
	case d.stats.Pending+int64(n) > int64(d.opts.QueueSize):
		return 0, errQueueFull
	}
	j := &job{receipts: n, run: run}
	d.jobs[j] = struct{}{}
	d.stats.Accepted += int64(n)
	d.stats.Pending += int64(n)
	d.running.Add(1)
	j.timer = time.AfterFunc(d.delay(), func() { d.fire(j, context.Background()) })
	return int(d.stats.Pending), nil
}

// fire runs j once, now.
func (d *dispatcher) fire(j *job, ctx context.Context) {
	j.once.Do(func() {
		defer d.running.Done()
		d.mu.Lock()
		delete(d.jobs, j)
		d.mu.Unlock()
		sent, failed := j.run(ctx)
		d.mu.Lock()
		d.stats.Sent += int64(sent)
		d.stats.Failed += int64(failed)
		d.stats.Pending -= int64(sent + failed)
		d.mu.Unlock()
	})
}

func (d *dispatcher) snapshot() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// shutdown stops accepting, sends every waiting job now, and waits for
// them all, or for ctx.
func (d *dispatcher) shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	waiting := make([]*job, 0, len(d.jobs))
	for j := range d.jobs {
		waiting = append(waiting, j)
	}
	d.mu.Unlock()
	for _, j := range waiting {
		if j.timer.Stop() {
			go d.fire(j, ctx)
		}
	}
	done := make(chan struct{})
	go func() {
		d.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendLater is the asynchronous counterpart of the sending loop of serve:
// it queues the receipts and returns at once.
func (h *Handler) sendLater(ctx context.Context, sess session.Session, p *plan, receipts []session.Receipt) error {
	run := func(ctx context.Context) (sent, failed int) {
		var delivered []session.Receipt
		for i, rc := range receipts {
			if ctx.Err() != nil {
				return sent, len(receipts) - i
			}
			sctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
			out, _, err := h.sendOne(sctx, sess, p, rc)
			cancel()
			if err != nil {
				failed++
				h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "async receipt failed",
					slog.String("session", p.session), slog.String("chat", rc.Chat), slog.Any("message_ids", rc.MessageIDs),
					slog.String("error", err.Error()))
				h.cfg.observeBackend(ctx, p.session, backendErr(OpSend, err))
				continue
			}
			sent++ // handed to the backend, which may have found them all duplicates
			if len(out.MessageIDs) > 0 {
				delivered = append(delivered, out)
			}
		}
		mctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
		defer cancel()
		h.markChatRead(mctx, sess, p, delivered)
		h.observeQueue(ctx)
		return sent, failed
	}
	depth, err := h.async.enqueue(len(receipts), run)
	if err != nil {
		return err
	}
	if qo, ok := h.cfg.observer.(QueueObserver); ok {
		qo.QueueDepth(ctx, depth)
	}
	return nil
}

func (h *Handler) observeQueue(ctx context.Context) {
	if qo, ok := h.cfg.observer.(QueueObserver); ok {
		qo.QueueDepth(ctx, int(h.async.snapshot().Pending))
	}
}

// Stats returns the counts of asynchronous receipts.
func (h *Handler) Stats() Stats {
	return h.async.snapshot()
}

// Shutdown stops the handler gracefully: new requests get 503
// shutting_down, asynchronous receipts still waiting for their delay are
// sent now, and Shutdown waits for them (and for the decorators'
// batches, see WithCoalescing) until ctx ends. It logs and returns the
// final Stats; a ctx that ends first leaves the rest Pending and returns
// its error. Call it after http.Server.Shutdown, which stops new
// connections.
func (h *Handler) Shutdown(ctx context.Context) (Stats, error) {
	h.closing.Store(true)
	err := h.async.shutdown(ctx)
	if cerr := h.closeDecorators(ctx); err == nil {
		err = cerr
	}
	st := h.async.snapshot()
	h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "seen handler shut down",
		slog.Int64("accepted", st.Accepted), slog.Int64("sent", st.Sent),
		slog.Int64("failed", st.Failed), slog.Int64("pending", st.Pending))
	return st, err
}
