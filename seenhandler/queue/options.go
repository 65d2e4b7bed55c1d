package queue

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
)

// Defaults of [Options].
const (
	DefaultMinDelay  = 800 * time.Millisecond
	DefaultMaxDelay  = 2 * time.Second
	DefaultQueueSize = 10_000
	// DefaultSessionQueueSize bounds one session's pending receipts: a
	// session that is down cannot fill the queue for the others.
	DefaultSessionQueueSize = 2_500
	// DefaultTokenQueueSize bounds the pending receipts one API token
	// queued: one tenant cannot fill the queue for the others.
	DefaultTokenQueueSize = 5_000
	// DefaultPace is the least time between two jobs of one session
	// leaving the queue.
	DefaultPace = 100 * time.Millisecond
	// DefaultRetryFor is how long receipts for a session that is down are
	// retried, counted from their acceptance.
	DefaultRetryFor = 10 * time.Minute
)

// Internal settings of the Worker.
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
	// asyncPoll is the longest the Worker of a durable queue sleeps
	// between two looks at the queue: other processes enqueue too.
	asyncPoll = time.Second
	// asyncRetryFirst is the wait after a first attempt found the session
	// down; each further one doubles it, up to asyncRetryMax.
	asyncRetryFirst = 2 * time.Second
	asyncRetryMax   = 30 * time.Second
	// asyncStoreTimeout bounds each call to a durable queue made on the
	// Worker's behalf; a settle or release must be written even while the
	// process is stopping.
	asyncStoreTimeout = 10 * time.Second
)

// Options configures a [Worker]. The zero value holds the defaults.
//
// Delivery is at least once: a receipt is removed from the queue only once
// the backend took it; a process that dies between the two sends it again
// after the restart (session.Decorate's Dedup makes that harmless within its memory).
// A receipt whose session is down (session.ErrNotConnected,
// session.ErrNotLoggedIn) or whose send timed out is retried with backoff
// (2 s doubling to 30 s) until RetryFor after its acceptance, then counted
// failed with its reason; any other error fails it at once.
type Options struct {
	// Queue keeps the jobs. Default: a [Memory] queue (lost with the
	// process); package seenhandler/queue/sqlqueue keeps them in SQLite or
	// PostgreSQL.
	Queue Queue
	// MinDelay and MaxDelay bound the delay of a request's receipts, drawn
	// uniformly for each request. Default: [DefaultMinDelay] (800 ms) and
	// DefaultMaxDelay (2 s).
	MinDelay, MaxDelay time.Duration
	// QueueSize bounds the receipts pending in the whole queue (all the
	// processes sharing a durable one, as [Queue.Pending] counts them); a
	// request that would exceed it gets 503 queue_full, and nothing of it
	// is queued. The count is read at most once a second, with this
	// process's own requests added since, and again before a request is
	// refused: other processes' requests of the last second may pass it
	// together. Default: [DefaultQueueSize] (10,000).
	QueueSize int
	// SessionQueueSize bounds the receipts pending for one session, those
	// of auto-read included, and TokenQueueSize those queued by one API
	// token's requests (auto-read's and those of a handler WithNoAuth have
	// none), as counted when each request comes (requests queued at that
	// very moment by other processes may pass it together): a tenant whose
	// session is down, or who queues for many sessions, gets 503
	// queue_full before it fills the queue for the others. For strict
	// isolation, make TokenQueueSize at most QueueSize divided by the
	// number of tenants; a bound of QueueSize or more adds nothing to it.
	// Default: [DefaultSessionQueueSize] (2,500) and
	// [DefaultTokenQueueSize] (5,000).
	SessionQueueSize, TokenQueueSize int
	// Pace is the least time between two jobs of one session leaving the
	// queue, so that a backlog (after a restart, a session back online, a
	// Shutdown flush) does not go out as a burst. Default: [DefaultPace]
	// (100 ms: 10 jobs a second per session).
	Pace time.Duration
	// RetryFor bounds the retries of receipts whose session is down,
	// counted from their acceptance. Default: [DefaultRetryFor] (10 min).
	RetryFor time.Duration
	// Local, when not nil, limits the Worker to the jobs of the sessions it
	// accepts: with several processes on one PostgreSQL queue, each
	// delivers the sessions it owns, and only it: it takes over the jobs
	// another process claimed for a session it now owns (see
	// [Claim].Local), and gives back unsent the jobs of a session it no
	// longer owns. Default: every session.
	Local func(session string) bool
	// Arrivals, when not nil, is auto-read's source: incoming messages a
	// session offers to mark read by itself (such as a whatsmeow Manager's
	// with its sessions' WithAutoRead). From [Worker.Start] to Shutdown,
	// each goes to the handler's [seenhandler.Handler.ReadLater], one at a
	// time, from a buffer of 1,024: beyond it an arrival is dropped (logged
	// once a minute, reported to Observer as queue_full). Default: none.
	Arrivals session.ArrivalSource
	// Logger logs the Worker's own doings (retries, refusals, panics,
	// shutdown); what a send does is logged by the handler's. Default: a
	// logger that discards everything.
	Logger *slog.Logger
	// Observer is told of the arrivals auto-read drops before the handler
	// sees them (RequestDone with seenhandler.EndpointAutoRead): give it the
	// handler's (seenhandler.WithObserver). Default: the zero Observer,
	// which observes nothing.
	Observer seenhandler.Observer
	// QueueDepth, when not nil, is told the number of receipts waiting in
	// the queue each time this process changes it: the queue's count
	// ([Queue.Pending]: with a durable queue, every process's, read at most
	// once a second) with what this process has queued, sent and failed
	// since. It must be quick and safe for concurrent use. Default: none.
	QueueDepth func(ctx context.Context, depth int)
}

func (o Options) withDefaults() Options {
	if o.Queue == nil {
		o.Queue = NewMemory()
	}
	if o.MinDelay == 0 && o.MaxDelay == 0 {
		o.MinDelay, o.MaxDelay = DefaultMinDelay, DefaultMaxDelay
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.SessionQueueSize == 0 {
		o.SessionQueueSize = DefaultSessionQueueSize
	}
	if o.TokenQueueSize == 0 {
		o.TokenQueueSize = DefaultTokenQueueSize
	}
	if o.Pace == 0 {
		o.Pace = DefaultPace
	}
	if o.RetryFor == 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// random draws the delays: a number in [0, 1). Tests of this package
// replace it (export_test.go); nothing else does.
var random = rand.Float64

// delay draws a job's delay.
func (o *Options) delay() time.Duration {
	span := o.MaxDelay - o.MinDelay
	return o.MinDelay + time.Duration(random()*float64(span))
}
