package seenhandler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Defaults of [AsyncOptions].
const (
	DefaultAsyncMinDelay  = 800 * time.Millisecond
	DefaultAsyncMaxDelay  = 2 * time.Second
	DefaultAsyncQueueSize = 10_000
	// DefaultAsyncSessionQueueSize bounds one session's pending receipts:
	// a session that is down cannot fill the queue for the others.
	DefaultAsyncSessionQueueSize = 2_500
	// DefaultAsyncTokenQueueSize bounds the pending receipts one API token
	// queued: one tenant cannot fill the queue for the others.
	DefaultAsyncTokenQueueSize = 5_000
	// DefaultAsyncPace is the least time between two jobs of one session
	// leaving the queue.
	DefaultAsyncPace = 100 * time.Millisecond
	// DefaultAsyncRetryFor is how long receipts for a session that is down
	// are retried, counted from their acceptance.
	DefaultAsyncRetryFor = 10 * time.Minute
)

// Internal settings of the asynchronous worker.
const (
	// asyncMaxInFlight bounds the jobs claimed and not yet settled.
	asyncMaxInFlight = 64
	// asyncLaneDepth bounds the jobs claimed for one session and not yet
	// settled, so that the slots go round the sessions (Claim.PerSession):
	// one session's backlog waits in the queue, not in its lane, where it
	// would hold the slots the other sessions' jobs need. A lane asks for
	// more once half of it is sent, a claim ahead of its Pace.
	asyncLaneDepth = 4
	// asyncLease is how long a claimed job is this process's: a process
	// that dies while holding jobs delays them by at most that much on
	// PostgreSQL (a SQLite queue releases every claim when it opens).
	asyncLease = 5 * time.Minute
	// asyncTotalAge is how long the whole queue's count read from the
	// Queue serves, with the receipts this process queued since, before
	// it is read again (it may cost a pass over the pending jobs); a
	// request it would refuse reads it again first.
	asyncTotalAge = time.Second
	// asyncPoll is the longest the worker of a durable queue sleeps
	// between two looks at the queue: other processes enqueue too.
	asyncPoll = time.Second
	// asyncRetryFirst is the wait after a first attempt found the session
	// down; each further one doubles it, up to asyncRetryMax.
	asyncRetryFirst = 2 * time.Second
	asyncRetryMax   = 30 * time.Second
	// asyncStoreTimeout bounds each call to a durable queue made on the
	// worker's behalf; a settle or release must be written even while the
	// process is stopping.
	asyncStoreTimeout = 10 * time.Second
)

// AsyncOptions configures asynchronous requests: a request with
// "async": true is answered 202 once its receipts are in the [Queue], and
// a worker sends them after a random, human-like delay (bots that mark
// messages read within milliseconds look like bots). The zero value holds
// the defaults.
//
// Delivery is at least once: a receipt is removed from the queue only once
// the backend took it; a process that dies between the two sends it again
// after the restart (session.Dedup makes that harmless within its memory).
// A receipt whose session is down (session.ErrNotConnected,
// session.ErrNotLoggedIn) or whose send timed out is retried with backoff
// (2 s doubling to 30 s) until RetryFor after its acceptance, then counted
// failed with its reason; any other error fails it at once.
type AsyncOptions struct {
	// Default makes every request asynchronous unless it says
	// "async": false. Default: false.
	Default bool
	// MinDelay and MaxDelay bound the delay, drawn uniformly for each
	// request. Default: [DefaultAsyncMinDelay] (800 ms) and
	// DefaultAsyncMaxDelay (2 s).
	MinDelay, MaxDelay time.Duration
	// QueueSize bounds the receipts pending in the whole queue (all the
	// processes sharing a durable one, as [Queue.Pending] counts them); a
	// request that would exceed it gets 503 queue_full, and nothing of it
	// is queued. The count is read at most once a second, with this
	// process's own requests added since, and again before a request is
	// refused: other processes' requests of the last second may pass it
	// together. Default: [DefaultAsyncQueueSize] (10,000).
	QueueSize int
	// SessionQueueSize bounds the receipts pending for one session, those
	// of auto-read included, and TokenQueueSize those queued by one API
	// token's requests (auto-read's and those of a handler [WithNoAuth]
	// have none), as counted when each request comes (requests queued at
	// that very moment by other processes may pass it together): a tenant
	// whose session is down, or who queues for many sessions, gets 503
	// queue_full before it fills the queue for the others. For strict
	// isolation, make TokenQueueSize at most QueueSize divided by the
	// number of tenants; a bound of QueueSize or more adds nothing to it.
	// Default: [DefaultAsyncSessionQueueSize] (2,500) and
	// [DefaultAsyncTokenQueueSize] (5,000).
	SessionQueueSize, TokenQueueSize int
	// Rand returns a number in [0, 1) that picks each delay; tests inject
	// their own. Default: math/rand/v2's Float64.
	Rand func() float64
	// Queue keeps the jobs. Default: a [MemoryQueue] (lost with the
	// process); package seenhandler/sqlqueue keeps them in SQLite or
	// PostgreSQL. With a durable Queue, call [Handler.Shutdown] to stop the
	// worker that New starts.
	Queue Queue
	// Pace is the least time between two jobs of one session leaving the
	// queue, so that a backlog (after a restart, a session back online, a
	// Shutdown flush) does not go out as a burst. Default:
	// [DefaultAsyncPace] (100 ms: 10 jobs a second per session).
	Pace time.Duration
	// RetryFor bounds the retries of receipts whose session is down,
	// counted from their acceptance. Default: [DefaultAsyncRetryFor]
	// (10 min).
	RetryFor time.Duration
	// Local, when not nil, limits the worker to the jobs of the sessions it
	// accepts: with several processes on one PostgreSQL queue, each
	// delivers the sessions it owns, and only it: it takes over the jobs
	// another process claimed for a session it now owns (see
	// [Claim].Local), and gives back unsent the jobs of a session it no
	// longer owns. Default: every session.
	Local func(session string) bool
}

// WithAsync enables asynchronous requests, configured by o. Default: off;
// a request that asks for "async": true then gets 400 validation_failed
// (field async, rule disabled), so that no client queues receipts the
// operator did not agree to.
func WithAsync(o AsyncOptions) Option {
	return func(c *config) error {
		o = o.withDefaults()
		switch {
		case o.MinDelay < 0 || o.MaxDelay < o.MinDelay:
			return errors.New("seenhandler: WithAsync: need 0 <= MinDelay <= MaxDelay")
		case o.QueueSize < 0 || o.SessionQueueSize < 0 || o.TokenQueueSize < 0:
			return errors.New("seenhandler: WithAsync: negative QueueSize, SessionQueueSize or TokenQueueSize")
		case o.Pace < 0 || o.RetryFor < 0:
			return errors.New("seenhandler: WithAsync: negative Pace or RetryFor")
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
	if o.SessionQueueSize == 0 {
		o.SessionQueueSize = DefaultAsyncSessionQueueSize
	}
	if o.TokenQueueSize == 0 {
		o.TokenQueueSize = DefaultAsyncTokenQueueSize
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Pace == 0 {
		o.Pace = DefaultAsyncPace
	}
	if o.RetryFor == 0 {
		o.RetryFor = DefaultAsyncRetryFor
	}
	return o
}

// Stats counts the receipts of asynchronous requests, as the [Queue] keeps
// them: with a durable Queue, across restarts. Accepted == Sent + Failed +
// Pending.
type Stats struct {
	// Accepted receipts were queued (their requests got 202).
	Accepted int64
	// Sent receipts were handed to the backend (or found read meanwhile:
	// nothing left to send), Failed ones were given up
	// (the backend refused them, their session stayed down past RetryFor,
	// or a Shutdown of a memory queue ended first).
	Sent, Failed int64
	// Pending receipts wait for their delay or a retry, or are being sent.
	Pending int64
}

// QueueObserver is an [Observer] that also wants the number of receipts
// waiting in the asynchronous queue, each time this process changes it:
// the queue's count ([Queue.Pending]: with a durable queue, every
// process's, read at most once a second) with what this process has
// queued, sent and failed since.
type QueueObserver interface {
	Observer
	QueueDepth(ctx context.Context, depth int)
}

// Errors of the asynchronous queue and of shutting down.
var (
	errQueueFull    = errors.New("the asynchronous queue is full")
	errShuttingDown = errors.New("the handler is shutting down")
)

// Which bound a request found full, for its answer's message.
const (
	fullQueue   = "queue"
	fullSession = "session"
	fullToken   = "token"
)

// queueFullError is errQueueFull, saying which bound: the queue's, the
// session's or the token's.
type queueFullError struct{ bound string }

func (e *queueFullError) Error() string {
	if e.bound == fullQueue {
		return errQueueFull.Error()
	}
	return errQueueFull.Error() + " for this " + e.bound
}

func (e *queueFullError) Is(target error) bool { return target == errQueueFull }

// delay draws a job's delay.
func (o *AsyncOptions) delay() time.Duration {
	span := o.MaxDelay - o.MinDelay
	return o.MinDelay + time.Duration(o.Rand()*float64(span))
}

// sendLater is the asynchronous counterpart of the sending loop of
// serveSeen: it queues the receipts and returns at once. It returns why
// they wait beyond their delay, when the session says it is down.
func (h *Handler) sendLater(ctx context.Context, x *exchange, sess session.Session, p *plan, receipts []session.Receipt, known messageTimes) (*Queued, error) {
	now := time.Now()
	job := &Job{
		Session: p.session, Chat: p.chatID, Receipts: receipts, Times: known, Typing: p.typing, Token: x.token,
		Accepted: now, Due: now.Add(h.async.opts.delay()),
	}
	if err := h.async.enqueue(ctx, job); err != nil {
		return nil, err
	}
	return h.queuedBecause(ctx, sess, now), nil
}

// queuedBecause says why receipts accepted at now wait for more than
// their delay: the session reports it is down.
func (h *Handler) queuedBecause(ctx context.Context, sess session.Session, now time.Time) *Queued {
	reporter, ok := session.As[session.StatusReporter](sess)
	if !ok {
		return nil
	}
	st := reporter.Status(ctx)
	q := &Queued{RetryUntil: now.Add(h.async.opts.RetryFor).UTC()}
	switch {
	case !st.LoggedIn || !st.Paired:
		q.Reason = CodeSessionNotLoggedIn
		q.Message = "the session is not logged in to WhatsApp; the receipts are sent once it is, tried until retryUntil"
	case !st.Connected:
		q.Reason = CodeSessionNotConnected
		q.Message = "the session is not connected to WhatsApp; the receipts are sent once it is back, tried until retryUntil"
	default:
		return nil
	}
	return q
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
// [WithAsync]), summed over the sessions. When a durable queue cannot
// answer, it logs why and returns the counts it returned last.
func (h *Handler) Stats() Stats {
	ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
	defer cancel()
	return h.stats(ctx)
}

// stats is Stats, reading a durable queue within ctx.
func (h *Handler) stats(ctx context.Context) Stats {
	if h.async == nil {
		return Stats{}
	}
	sessions, err := h.QueueStats(ctx)
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "reading the queue's counts failed", slog.String("error", err.Error()))
		h.async.mu.Lock()
		defer h.async.mu.Unlock()
		return h.async.lastStats
	}
	var st Stats
	for _, s := range sessions {
		st.Sent += s.Sent
		st.Failed += s.Failed
		st.Pending += s.Pending
	}
	st.Accepted = st.Sent + st.Failed + st.Pending
	h.async.mu.Lock()
	h.async.lastStats = st
	h.async.mu.Unlock()
	return st
}

// QueueStats returns the counts of each session's asynchronous receipts,
// sorted by session, with the time its oldest pending receipt was
// accepted (nothing without [WithAsync]).
func (h *Handler) QueueStats(ctx context.Context) ([]SessionQueueStats, error) {
	if h.async == nil {
		return nil, nil
	}
	return h.async.q.Stats(ctx)
}

// Shutdown stops the handler gracefully: new requests get 503
// shutting_down, and the asynchronous worker stops. With a durable
// [Queue] the jobs stay in it for the next start: the worker finishes the
// job it is sending and gives the others back. With a memory queue every
// job is sent now, each session's paced (see AsyncOptions.Pace), until
// ctx ends; what is not sent by then is counted failed.
//
// Shutdown returns when ctx ends, as http.Server.Shutdown does. A ctx that
// ends first cuts the sends under way (their context is cancelled; a
// durable queue keeps their receipts), and Shutdown returns an error
// wrapping ctx.Err(): once every job has settled, ctx.Err() itself; while
// sends whose backend ignores its context are still out, an error that
// says how many jobs are claimed and not settled — those settle when their
// sends return (a durable queue sends a job again once its lease ends if
// it cannot settle it), after Shutdown returned. It logs and returns the
// [Stats] at that moment (with a durable queue whose counts cannot be
// read within ctx, the last ones read: [Handler.Stats], with a timeout of
// its own, reads them afresh). Call it after
// http.Server.Shutdown, and before closing the registry (see
// session.Decorate) and the queue's database.
func (h *Handler) Shutdown(ctx context.Context) (Stats, error) {
	h.closing.Store(true)
	var err error
	if h.auto != nil {
		var dropped int
		dropped, err = h.auto.shutdown(ctx, h) // no arrival is queued any more
		if dropped > 0 {
			h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "auto-read: arrivals not queued: the handler shut down first",
				slog.Int("dropped", dropped))
		}
	}
	if h.async != nil {
		if aerr := h.async.shutdown(ctx); aerr != nil {
			err = aerr
		}
	}
	st := h.stats(ctx)
	h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "seen handler shut down",
		slog.Int64("accepted", st.Accepted), slog.Int64("sent", st.Sent),
		slog.Int64("failed", st.Failed), slog.Int64("pending", st.Pending))
	return st, err
}
