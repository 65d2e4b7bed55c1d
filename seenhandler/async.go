package seenhandler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Defaults of [AsyncOptions].
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
	// request. Default: [DefaultAsyncMinDelay] (800 ms) and
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

// WithAsync enables asynchronous requests, configured by o. Default: off;
// a request that asks for "async": true then gets 400 validation_failed
// (field async, rule disabled), so that no client queues receipts the
// operator did not agree to.
func WithAsync(o AsyncOptions) Option {
	return func(c *config) error {
		o = o.withDefaults()
		if o.MinDelay < 0 || o.MaxDelay < o.MinDelay {
			return errors.New("seenhandler: WithAsync: need 0 <= MinDelay <= MaxDelay")
		}
		if o.QueueSize < 0 {
			return errors.New("seenhandler: WithAsync: negative QueueSize")
		}
		c.async = &o
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

// QueueObserver is an [Observer] that also wants the number of receipts
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
	opts    AsyncOptions
	onDepth func(depth int) // told the number of pending receipts when it changes
	onPanic func(v any)     // told a job's panic

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
	run      func(ctx context.Context, c *counts)
}

// counts are a job's receipts sent so far (the others failed).
type counts struct{ sent int }

func newDispatcher(o AsyncOptions, onDepth func(int), onPanic func(any)) *dispatcher {
	return &dispatcher{opts: o.withDefaults(), onDepth: onDepth, onPanic: onPanic, jobs: make(map[*job]struct{})}
}

// delay draws a job's delay.
func (d *dispatcher) delay() time.Duration {
	span := d.opts.MaxDelay - d.opts.MinDelay
	return d.opts.MinDelay + time.Duration(d.opts.Rand()*float64(span))
}

// enqueue queues run, which sends n receipts, to start after a delay.
func (d *dispatcher) enqueue(n int, run func(context.Context, *counts)) error {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return errShuttingDown
	case d.stats.Pending+int64(n) > int64(d.opts.QueueSize):
		d.mu.Unlock()
		return errQueueFull
	}
	j := &job{receipts: n, run: run}
	d.jobs[j] = struct{}{}
	d.stats.Accepted += int64(n)
	d.stats.Pending += int64(n)
	depth := d.stats.Pending
	d.running.Add(1)
	j.timer = time.AfterFunc(d.delay(), func() { d.fire(j, context.Background()) })
	d.mu.Unlock()
	d.onDepth(int(depth))
	return nil
}

// fire runs j once, now, and counts its receipts: those it did not report
// (it panicked) count as failed.
func (d *dispatcher) fire(j *job, ctx context.Context) {
	j.once.Do(func() {
		defer d.running.Done()
		d.mu.Lock()
		delete(d.jobs, j)
		d.mu.Unlock()
		var c counts
		defer func() {
			v := recover() // the job's goroutine: nobody else can
			d.mu.Lock()
			d.stats.Sent += int64(c.sent)
			d.stats.Failed += int64(j.receipts - c.sent)
			d.stats.Pending -= int64(j.receipts)
			depth := d.stats.Pending
			d.mu.Unlock()
			if v != nil {
				d.onPanic(v)
			}
			d.onDepth(int(depth))
		}()
		j.run(ctx, &c)
	})
}

func (d *dispatcher) snapshot() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// shutdown stops accepting and sends every waiting job now, one after
// another in one goroutine, then waits for them all, or for ctx. Jobs it
// has not reached when ctx ends count their receipts as failed.
func (d *dispatcher) shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	waiting := make([]*job, 0, len(d.jobs))
	for j := range d.jobs {
		waiting = append(waiting, j)
	}
	d.mu.Unlock()
	var now []*job
	for _, j := range waiting {
		if j.timer.Stop() {
			now = append(now, j)
		}
	}
	go func() {
		for _, j := range now {
			d.fire(j, ctx)
		}
	}()
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

// sendLater is the asynchronous counterpart of the sending loop of
// serveSeen: it queues the receipts and returns at once.
func (h *Handler) sendLater(ctx context.Context, sess session.Session, p *plan, receipts []session.Receipt, known messageTimes) error {
	ctx = context.WithoutCancel(ctx) // values (the principal) only
	run := func(jctx context.Context, c *counts) {
		var delivered []session.Receipt
		for _, rc := range receipts {
			if jctx.Err() != nil {
				return // the rest count as failed
			}
			sctx, cancel := h.jobContext(ctx, jctx)
			out, _, err := h.sendOne(sctx, sess, p, rc)
			cancel()
			if err != nil {
				h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "async receipt failed",
					slog.String("session", p.session), slog.String("chat", rc.Chat), slog.Any("message_ids", rc.MessageIDs),
					slog.String("error", err.Error()))
				h.cfg.observeBackend(ctx, p.session, backendErr(OpSend, err))
				continue
			}
			c.sent++ // handed to the backend, which may have found them all duplicates
			if len(out.MessageIDs) > 0 {
				delivered = append(delivered, out)
			}
		}
		mctx, cancel := h.jobContext(ctx, jctx)
		defer cancel()
		h.markChatRead(mctx, nil, sess, p, delivered, known)
	}
	return h.async.enqueue(len(receipts), run)
}

// jobContext returns a context for one step of an asynchronous job: the
// values of vals (the request's: the principal), the handler's timeout, and
// an end when done (the job's context) ends.
func (h *Handler) jobContext(vals, done context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(vals, h.cfg.timeout)
	stop := context.AfterFunc(done, cancel)
	return ctx, func() { stop(); cancel() }
}

func (h *Handler) logJobPanic(v any) {
	h.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "panic in an asynchronous job; its unsent receipts count as failed",
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
}

func (h *Handler) observeQueue(depth int) {
	if qo, ok := h.cfg.observer.(QueueObserver); ok {
		qo.QueueDepth(context.Background(), depth)
	}
}

// Stats returns the counts of asynchronous receipts (all zero without
// [WithAsync]).
func (h *Handler) Stats() Stats {
	if h.async == nil {
		return Stats{}
	}
	return h.async.snapshot()
}

// Shutdown stops the handler gracefully: new requests get 503
// shutting_down, asynchronous receipts still waiting for their delay are
// sent now, one job after another, and Shutdown waits for them until ctx
// ends. It logs and returns the final [Stats]; a ctx that ends first returns
// its error, and the receipts not sent by then are counted as failed. Call
// it after http.Server.Shutdown, which stops new connections, and before
// closing the registry (see session.Decorate).
func (h *Handler) Shutdown(ctx context.Context) (Stats, error) {
	h.closing.Store(true)
	var err error
	if h.async != nil {
		err = h.async.shutdown(ctx)
	}
	st := h.Stats()
	h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "seen handler shut down",
		slog.Int64("accepted", st.Accepted), slog.Int64("sent", st.Sent),
		slog.Int64("failed", st.Failed), slog.Int64("pending", st.Pending))
	return st, err
}
