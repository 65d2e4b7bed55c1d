package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
)

// Worker keeps the receipts of asynchronous requests in a [Queue] and
// sends them, after a random, human-like delay (bots that mark messages
// read within milliseconds look like bots), through the handler it was
// started with ([Worker.Start], [seenhandler.Handler.SendDeferred]). It is
// the [seenhandler.Later] of a handler: give it to seenhandler.WithLater.
// It is safe for concurrent use.
//
// One loop claims due jobs from the Queue and hands them to one lane per
// session, which sends its jobs one after another, at least Options.Pace
// apart. With a memory queue the loop runs only while jobs are pending (it
// starts on the first enqueue and ends when the queue is empty); with a
// durable one it runs from Start to Shutdown, looking at the queue at least
// every asyncPoll. Shutdown stops both, and owns them: it waits for them.
type Worker struct {
	h       *seenhandler.Handler // nil until Start
	q       Queue
	opts    Options
	log     *slog.Logger
	durable bool
	auto    *autoReader // nil without Options.Arrivals

	mu       sync.Mutex
	closed   bool      // no enqueue any more (Shutdown began)
	flush    bool      // a memory queue's Shutdown: claim every job, due or not
	halted   bool      // no job is started any more: release (durable) or fail (memory)
	running  bool      // the loop runs
	kicked   bool      // something changed since the loop's last claim
	nextWake time.Time // when the loop means to claim next; zero: not waiting
	inflight int       // jobs claimed and not settled or released
	// held counts them by session; refill marks the sessions whose lane
	// was filled to asyncLaneDepth, which ask for more once half is done.
	held   map[string]int
	refill map[string]bool
	// queueing counts the receipts of the jobs being queued now (between
	// the bounds' check and the Queue's answer), which the Queue's counts
	// may not show yet: in all, by session and by token.
	queueing pendingTally
	// total is the whole queue's count of pending receipts as read at
	// totalAt, with the receipts queued here since (see asyncTotalAge).
	total   int64
	totalAt time.Time
	// depth is the receipts waiting, for Options.QueueDepth: total, less
	// what was settled here since.
	depth int64
	lanes map[string]*lane

	wake     chan struct{} // cap 1: the loop looks at the queue again
	halt     chan struct{} // closed once halted
	sendCtx  context.Context
	stopSend context.CancelFunc // cuts the sends under way
	work     sync.WaitGroup     // the loop and the lanes
}

// lane is one session's jobs, claimed and waiting for their turn.
type lane struct {
	jobs []Job
}

// pendingTally counts receipts in all, by session and by token.
type pendingTally struct {
	total    int64
	sessions map[string]int64
	tokens   map[string]int64
}

// add counts n receipts of j (n < 0 takes them off).
func (t *pendingTally) add(j *Job, n int64) {
	if t.sessions == nil {
		t.sessions, t.tokens = make(map[string]int64), make(map[string]int64)
	}
	t.total += n
	if t.sessions[j.Session] += n; t.sessions[j.Session] == 0 {
		delete(t.sessions, j.Session)
	}
	if j.Token != "" {
		if t.tokens[j.Token] += n; t.tokens[j.Token] == 0 {
			delete(t.tokens, j.Token)
		}
	}
}

// New returns a Worker over o.Queue (a [Memory] queue when nil); give it
// to seenhandler.WithLater, then [Worker.Start] it with the handler. With
// a durable Queue it reads the queue's count of pending receipts first.
func New(o Options) (*Worker, error) {
	o = o.withDefaults()
	switch {
	case o.MinDelay < 0 || o.MaxDelay < o.MinDelay:
		return nil, errors.New("queue: New: need 0 <= MinDelay <= MaxDelay")
	case o.QueueSize < 0 || o.SessionQueueSize < 0 || o.TokenQueueSize < 0:
		return nil, errors.New("queue: New: negative QueueSize, SessionQueueSize or TokenQueueSize")
	case o.Pace < 0 || o.RetryFor < 0:
		return nil, errors.New("queue: New: negative Pace or RetryFor")
	}
	d := &Worker{
		q: o.Queue, opts: o, log: o.Logger, durable: o.Queue.Durable(),
		lanes:  make(map[string]*lane),
		held:   make(map[string]int),
		refill: make(map[string]bool),
		wake:   make(chan struct{}, 1),
		halt:   make(chan struct{}),
	}
	d.sendCtx, d.stopSend = context.WithCancel(context.Background())
	if !d.durable {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
	defer cancel()
	p, err := d.q.Pending(ctx, PendingOf{Total: true})
	if err != nil {
		d.stopSend()
		return nil, fmt.Errorf("queue: New: reading the queue: %w", err)
	}
	d.total, d.totalAt, d.depth = p.Total, time.Now(), p.Total
	return d, nil
}

// Start has the Worker send through h the jobs that come due (with a
// durable Queue, those other processes and earlier runs queued too), and
// subscribes h to Options.Arrivals. Call it once, after seenhandler.New;
// a second call does nothing. Jobs deferred before it wait in the Queue.
func (d *Worker) Start(h *seenhandler.Handler) {
	d.mu.Lock()
	if d.h != nil || h == nil || d.closed {
		d.mu.Unlock()
		return
	}
	d.h = h
	if d.durable || d.kicked {
		d.startLocked()
	}
	d.mu.Unlock()
	if d.opts.Arrivals != nil {
		d.auto = d.startAutoRead(h, d.opts.Arrivals)
	}
}

// startLocked starts the loop unless it runs. d.mu must be held.
func (d *Worker) startLocked() {
	if d.running || d.halted || d.h == nil {
		return
	}
	d.running = true
	d.work.Add(1)
	go d.loop()
}

// kick tells the loop that a job is due at due, starting it if need be.
func (d *Worker) kick(due time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kicked = true
	if !d.running {
		d.startLocked()
		return
	}
	if d.nextWake.IsZero() || due.Before(d.nextWake) {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// Defer implements [seenhandler.Later]: it queues d's receipts as one
// [Job], due at d.Due, else after a delay drawn between Options.MinDelay
// and MaxDelay, unless the Worker is shutting down or the job would pass a
// bound of the receipts pending (Options.SessionQueueSize, TokenQueueSize,
// QueueSize: seenhandler.ErrSessionQueueFull, ErrTokenQueueFull or
// ErrQueueFull says which). It returns the
// time until which the receipts are retried while their session is down.
func (d *Worker) Defer(ctx context.Context, def seenhandler.Deferred) (time.Time, error) {
	now := time.Now()
	job := &Job{Session: def.Session, Chat: def.Chat, Receipts: def.Receipts, Times: def.Times, Typing: def.Typing,
		Token: def.Token, Auto: def.Auto, Accepted: now, Due: def.Due}
	if job.Due.IsZero() {
		job.Due = now.Add(d.opts.delay())
	}
	if err := d.enqueue(ctx, job); err != nil {
		return time.Time{}, err
	}
	return now.Add(d.opts.RetryFor), nil
}

// enqueue stores job in the queue, unless the Worker is shutting down or
// the job would pass a bound (Options.SessionQueueSize,
// TokenQueueSize, QueueSize) of the receipts pending, as the Queue counts
// them with those this process is queueing at the same time.
func (d *Worker) enqueue(ctx context.Context, job *Job) error {
	n := int64(len(job.Receipts))
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errStopped
	}
	d.queueing.add(job, n)
	fresh := time.Since(d.totalAt) < asyncTotalAge
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.queueing.add(job, -n)
		d.mu.Unlock()
	}()
	p, err := d.pending(ctx, job, !fresh)
	if err != nil {
		return err
	}
	switch {
	case p.Session > int64(d.opts.SessionQueueSize):
		return seenhandler.ErrSessionQueueFull
	case job.Token != "" && p.Token > int64(d.opts.TokenQueueSize):
		return seenhandler.ErrTokenQueueFull
	}
	if p.Total > int64(d.opts.QueueSize) && fresh { // refused on a count read afresh only
		if p, err = d.pending(ctx, job, true); err != nil {
			return err
		}
	}
	if p.Total > int64(d.opts.QueueSize) {
		return seenhandler.ErrQueueFull
	}
	if err := d.q.Enqueue(ctx, job); err != nil {
		return fmt.Errorf("queueing: %w", err)
	}
	d.mu.Lock()
	d.total += n
	d.depth += n
	depth := d.depth
	d.mu.Unlock()
	d.observeQueue(int(depth))
	d.kick(job.Due)
	return nil
}

// pending counts the receipts pending for job's bounds: its session's and
// its token's from the Queue, the whole queue's from it too when total,
// else as last read with what was queued here since; each with the jobs
// being queued here meanwhile (job among them), which the Queue may not
// count yet — or may already, which only makes the bounds hold early
// while requests race.
func (d *Worker) pending(ctx context.Context, job *Job, total bool) (PendingCounts, error) {
	read := time.Now()
	p, err := d.q.Pending(ctx, PendingOf{Session: job.Session, Token: job.Token, Total: total})
	if err != nil {
		return p, fmt.Errorf("queueing: counting the pending receipts: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if total {
		d.total, d.totalAt, d.depth = p.Total, read, p.Total
	}
	p.Total = d.total + d.queueing.total
	p.Session += d.queueing.sessions[job.Session]
	if job.Token != "" {
		p.Token += d.queueing.tokens[job.Token]
	}
	return p, nil
}

// loop claims due jobs and hands them to their session's lane, until the
// dispatcher halts or (memory queue) nothing is pending. It is the only
// caller of Claim.
func (d *Worker) loop() {
	defer d.work.Done()
	defer func() {
		if v := recover(); v != nil { // the loop's goroutine: nobody else can
			d.logJobPanic(v)
			d.mu.Lock()
			d.running = false
			d.mu.Unlock()
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		if d.halted {
			d.running = false
			d.mu.Unlock()
			return
		}
		d.kicked = false
		limit := asyncMaxInFlight - d.inflight
		flush := d.flush
		d.mu.Unlock()

		var (
			jobs []Job
			next time.Time
			err  error
		)
		now := time.Now()
		if limit > 0 {
			d.mu.Lock()
			held := maps.Clone(d.held)
			d.mu.Unlock()
			c := Claim{Now: now, Limit: limit, Lease: asyncLease, Local: d.opts.Local, DueWithin: d.opts.MaxDelay,
				PerSession: asyncLaneDepth, Held: held}
			if flush {
				c.Now = now.Add(100 * 365 * 24 * time.Hour) // everything, due or not
			}
			ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
			jobs, next, err = d.q.Claim(ctx, c)
			cancel()
			if err != nil {
				d.log.LogAttrs(ctx, slog.LevelWarn, "claiming queued receipts failed; trying again",
					slog.String("error", err.Error()))
			}
		}

		d.mu.Lock()
		for _, j := range jobs {
			d.inflight++
			if d.held[j.Session]++; d.held[j.Session] >= asyncLaneDepth {
				d.refill[j.Session] = true
			}
			l, ok := d.lanes[j.Session]
			if !ok {
				l = &lane{}
				d.lanes[j.Session] = l
				d.work.Add(1)
				go d.runLane(j.Session, l)
			}
			l.jobs = append(l.jobs, j)
		}
		full := d.inflight >= asyncMaxInFlight
		if !d.durable && !d.kicked && next.IsZero() && err == nil && (len(jobs) < limit || limit <= 0) {
			// Nothing waits in the memory queue: the next enqueue, retry or
			// free slot (see kick) starts the loop again.
			d.running = false
			d.nextWake = time.Time{}
			d.mu.Unlock()
			return
		}
		// When to look again: when the next job is due; at once if the
		// claim was cut by its limit; a poll later if what is due is not
		// ours (the claim returned less than it could) or others enqueue
		// (durable).
		wait := asyncPoll
		switch {
		case full:
			wait = asyncPoll // a settle wakes the loop
		case limit > 0 && len(jobs) == limit:
			wait = 0
		case !next.IsZero() && next.After(now):
			wait = next.Sub(now)
			if d.durable || flush {
				wait = min(wait, asyncPoll)
			}
		}
		if d.kicked {
			wait = 0
		}
		d.nextWake = now.Add(wait)
		d.mu.Unlock()

		if wait == 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-d.wake:
			timer.Stop() // Go 1.23 timers: no stale tick to drain
		case <-d.halt:
		}
	}
}

// runLane sends the jobs of session name one after another, at least
// Pace apart, until it has none left; once halted it gives the rest up.
// It outlives its last job by Pace, so that the session's next job waits
// its turn too.
func (d *Worker) runLane(name string, l *lane) {
	defer d.work.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		d.mu.Lock()
		if len(l.jobs) == 0 {
			delete(d.lanes, name)
			d.mu.Unlock()
			return
		}
		j := l.jobs[0]
		l.jobs = l.jobs[1:]
		halted := d.halted
		d.mu.Unlock()
		if halted {
			d.abandon(j)
			continue
		}
		if d.opts.Local != nil && !d.opts.Local(name) {
			// The session left this process while the job waited in its
			// lane: its new owner takes the job over (see Claim.Local).
			d.release(j)
			continue
		}
		d.attempt(j)
		timer.Reset(d.opts.Pace)
		select {
		case <-timer.C:
		case <-d.halt:
			timer.Stop()
		}
	}
}

// attempt sends one job and settles it. A panic in the job counts its
// receipts as failed; one while settling (settle recovers the Queue's own)
// is logged, the job's slot given back already.
func (d *Worker) attempt(j Job) {
	settling := false
	defer func() {
		v := recover() // one job's panic must not end its session's lane
		switch {
		case v == nil:
		case settling:
			d.log.LogAttrs(context.Background(), slog.LevelError, "panic after an asynchronous job was sent",
				slog.String("session", j.Session), slog.Int64("job", j.ID), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		default:
			d.logJobPanic(v)
			d.settle(j, Outcome{Failed: len(j.Receipts), Reason: string(seenhandler.CodeInternal)})
		}
	}()
	o := d.send(j)
	settling = true
	d.settle(j, o)
}

// send makes one attempt at j through the handler's send path, and says
// when to retry what it could not send: with backoff, 2 s doubling to
// 30 s, until Options.RetryFor after j's acceptance; at once once stopping
// (a durable queue keeps them). A memory queue's Shutdown gives each job
// one attempt.
func (d *Worker) send(j Job) Outcome {
	ctx := d.sendCtx
	retryUntil := j.Accepted.Add(d.opts.RetryFor)
	if d.lastAttempts() {
		retryUntil = time.Time{}
	}
	a := d.h.SendDeferred(ctx, seenhandler.Deferred{Session: j.Session, Chat: j.Chat, Receipts: j.Receipts, Times: j.Times,
		Typing: j.Typing, Token: j.Token, Auto: j.Auto}, retryUntil)
	o := Outcome{Sent: a.Sent, Failed: a.Failed, Reason: string(a.Reason), Retry: a.Retry, Typing: a.Typing, Auto: j.Auto, LastError: string(a.RetryReason)}
	if len(o.Retry) == 0 {
		return o
	}
	if d.lastAttempts() && ctx.Err() == nil { // the flush began during the attempt
		for _, rc := range o.Retry {
			d.log.LogAttrs(ctx, slog.LevelWarn, "async receipt failed",
				slog.String("session", j.Session), slog.String("chat", rc.Chat), slog.Any("message_ids", rc.MessageIDs),
				slog.String("reason", o.LastError+" when the shutdown began"))
		}
		o.Failed += len(o.Retry)
		o.Reason, o.Retry = o.LastError, nil
		return o
	}
	now := time.Now()
	if ctx.Err() != nil { // stopping: a durable queue keeps them, due at once
		o.RetryAt = now
		return o
	}
	wait := asyncRetryFirst << min(j.Attempts, 8)
	o.RetryAt = now.Add(min(wait, asyncRetryMax))
	if o.RetryAt.After(retryUntil) {
		o.RetryAt = retryUntil
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "queued receipts wait for their session",
		slog.String("session", j.Session), slog.String("chat", j.Chat), slog.Int("receipts", len(o.Retry)),
		slog.String("code", o.LastError), slog.Time("retry_at", o.RetryAt), slog.Int("attempts", j.Attempts+1))
	return o
}

// lastAttempts reports whether each job gets one attempt more: a memory
// queue's Shutdown sends every job once, then the process ends.
func (d *Worker) lastAttempts() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flush && !d.durable
}

// settle records o for j in the queue and in the counts. Whatever the
// Queue does, the job's slot is given back (done).
func (d *Worker) settle(j Job, o Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
	defer cancel()
	if err := d.queueCall("Settle", func() error { return d.q.Settle(ctx, j.ID, o) }); err != nil {
		// The job stays claimed until its lease ends, then is sent again.
		d.log.LogAttrs(ctx, slog.LevelError, "recording a queued job's outcome failed; it will be sent again",
			slog.String("session", j.Session), slog.Int64("job", j.ID), slog.String("error", err.Error()))
		d.done(j.Session, 0)
		return
	}
	d.done(j.Session, int64(o.Sent+o.Failed))
	if len(o.Retry) > 0 {
		d.kick(o.RetryAt)
	}
}

// abandon gives j up once halted: a durable queue keeps it (released), a
// memory queue counts it failed.
func (d *Worker) abandon(j Job) {
	if d.durable {
		d.release(j)
		return
	}
	for _, rc := range j.Receipts {
		d.log.LogAttrs(context.Background(), slog.LevelWarn, "async receipt failed",
			slog.String("session", j.Session), slog.String("chat", rc.Chat), slog.Any("message_ids", rc.MessageIDs),
			slog.String("reason", "not sent before the shutdown deadline"))
	}
	d.settle(j, Outcome{Failed: len(j.Receipts), Reason: string(seenhandler.CodeShuttingDown)})
}

// release gives j back to the queue unsent, claimable at once: the loop
// looks again (a memory queue's may have stopped, nothing left waiting).
func (d *Worker) release(j Job) {
	ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
	defer cancel()
	if err := d.queueCall("Release", func() error { return d.q.Release(ctx, []int64{j.ID}) }); err != nil {
		d.log.LogAttrs(ctx, slog.LevelWarn, "releasing a queued job failed; it is sent again when its lease ends",
			slog.Int64("job", j.ID), slog.String("error", err.Error()))
	}
	d.done(j.Session, 0)
	d.kick(j.Due)
}

// queueCall calls the Queue's method name through call, a panic in it
// becoming an error (logged with its stack): [Queue] is a plug-in, and the
// worker must give a claimed job's slot back however the Queue fails —
// else a Queue that panics in Settle would, job after job, take every slot
// and the worker would claim nothing more.
func (d *Worker) queueCall(name string, call func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			d.log.LogAttrs(context.Background(), slog.LevelError, "panic in the asynchronous queue",
				slog.String("method", "Queue."+name), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("panic in Queue.%s: %v", name, v)
		}
	}()
	return call()
}

// done notes that a claimed job of session name was settled or released,
// n of its receipts leaving the queue. The loop claims again when a slot
// frees up after all were taken, or once a lane filled to asyncLaneDepth
// is half done.
func (d *Worker) done(name string, n int64) {
	d.mu.Lock()
	wasFull := d.inflight >= asyncMaxInFlight
	d.inflight--
	if d.held[name]--; d.held[name] <= 0 {
		delete(d.held, name)
	}
	more := d.refill[name] && d.held[name] <= asyncLaneDepth/2
	if more {
		delete(d.refill, name)
	}
	d.depth = max(d.depth-n, 0)
	depth := d.depth
	d.mu.Unlock()
	if n > 0 {
		d.observeQueue(int(depth))
	}
	if wasFull || more {
		d.kick(time.Time{})
	}
}

// Shutdown stops the Worker: auto-read's subscription ends (the arrivals
// still waiting to be deferred are dropped, each reported to
// Options.Observer as shutting_down), Defer refuses, and the jobs are
// dealt with. With a durable [Queue] they stay in it for the next start:
// the Worker finishes the jobs it is sending and gives the others back.
// With a memory queue every job is sent now, each session's paced (see
// Options.Pace), until ctx ends; what is not sent by then is counted
// failed.
//
// Shutdown returns when ctx ends, as http.Server.Shutdown does. A ctx that
// ends first cuts the sends under way (their context is cancelled; a
// durable queue keeps their receipts), and Shutdown returns an error
// wrapping ctx.Err(): once every job has settled, ctx.Err() itself; while
// sends whose backend ignores its context are still out, an error that
// says how many jobs are claimed and not settled — those settle when their
// sends return (a durable queue sends a job again once its lease ends if
// it cannot settle it), after Shutdown returned. It logs the counts
// ([Worker.Stats]) it can read within ctx.
//
// The order, each step with the same ctx: http.Server.Shutdown, the
// handler's Shutdown (new requests get 503 shutting_down), this, then the
// registry's Close (see session.Decorate) and the queue's database.
func (d *Worker) Shutdown(ctx context.Context) error {
	var err error
	if d.auto != nil {
		var dropped int
		dropped, err = d.auto.shutdown(ctx) // no arrival is deferred any more
		if dropped > 0 {
			d.log.LogAttrs(ctx, slog.LevelWarn, "auto-read: arrivals not queued: the handler shut down first",
				slog.Int("dropped", dropped))
		}
	}
	if serr := d.shutdown(ctx); serr != nil {
		err = serr
	}
	var total SessionStats
	if sessions, serr := d.q.Stats(ctx); serr == nil {
		for _, s := range sessions {
			total.Sent += s.Sent
			total.Failed += s.Failed
			total.Pending += s.Pending
		}
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "queue worker shut down",
		slog.Int64("sent", total.Sent), slog.Int64("failed", total.Failed), slog.Int64("pending", total.Pending))
	return err
}

// shutdown stops accepting and stops the loop and the lanes: see
// [Worker.Shutdown].
func (d *Worker) shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	if !d.durable { // send everything now: the loop ends once the queue is empty
		d.flush = true
		d.kicked = true
		d.startLocked()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	d.mu.Unlock()
	if d.durable {
		d.stopStarting() // the sends under way finish; the rest stays queued
	}
	done := make(chan struct{})
	go func() {
		d.work.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	d.stopStarting()
	d.stopSend()
	left := false
	if err != nil {
		// The sends under way have their context cancelled; one whose
		// backend ignores it (whatsmeow's NewsletterMarkViewed waits for
		// WhatsApp's answer regardless) keeps its lane until it returns.
		// Shutdown does not wait for it: its caller's deadline is over.
		select {
		case <-done:
		default:
			left = true
		}
	}
	if !d.durable {
		d.failRest()
	}
	if left {
		return d.leftover(err)
	}
	return err
}

// leftover is Shutdown's error when its context ended (err) before the
// jobs it had claimed were settled: it says how many, and what becomes of
// them.
func (d *Worker) leftover(err error) error {
	d.mu.Lock()
	n := d.inflight
	d.mu.Unlock()
	fate := "each is counted when its send returns"
	if d.durable {
		fate = "each is settled when its send returns, or else stays in the queue, sent again once its lease ends"
	}
	return fmt.Errorf("queue: shutdown: %w, with %d queued jobs claimed and not settled (being sent, or waiting behind a send whose backend ignores its context): %s", err, n, fate)
}

// stopStarting halts the loop and the lanes: no job starts any more.
func (d *Worker) stopStarting() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.halted {
		d.halted = true
		close(d.halt)
	}
}

// failRest counts failed the jobs of a memory queue that were never
// claimed (the loop halted first).
func (d *Worker) failRest() {
	far := time.Now().Add(100 * 365 * 24 * time.Hour)
	for {
		jobs, _, err := d.q.Claim(context.Background(), Claim{Now: far, Limit: 1000, Lease: asyncLease})
		if err != nil || len(jobs) == 0 {
			return
		}
		for _, j := range jobs {
			d.mu.Lock()
			d.inflight++
			d.held[j.Session]++
			d.mu.Unlock()
			d.abandon(j)
		}
	}
}

// QueueStatus implements [seenhandler.Later]: session name's counts, as
// the Queue keeps them, for the status answer.
func (d *Worker) QueueStatus(ctx context.Context, name string) (seenhandler.QueueStatus, error) {
	sessions, err := d.q.Stats(ctx, name)
	if err != nil {
		return seenhandler.QueueStatus{}, err
	}
	var qs seenhandler.QueueStatus
	for _, s := range sessions {
		if s.Session != name {
			continue
		}
		qs.Pending, qs.Sent, qs.Failed = s.Pending, s.Sent, s.Failed
		if s.Pending > 0 && !s.OldestPending.IsZero() {
			qs.OldestPendingSeconds = max(0, time.Since(s.OldestPending).Seconds())
		}
	}
	return qs, nil
}

// Stats returns the counts of the named sessions' receipts, or of every
// session's that ever had one when none is named, sorted by session, as
// the [Queue] keeps them: with a durable one, across restarts (and every
// process's sharing it). It is the one way to read the queue's counts; a
// status request reads its session's the same way.
func (d *Worker) Stats(ctx context.Context, sessions ...string) ([]SessionStats, error) {
	return d.q.Stats(ctx, sessions...)
}

// observeQueue tells Options.QueueDepth the queue's depth, if it wants it.
func (d *Worker) observeQueue(depth int) {
	if d.opts.QueueDepth != nil {
		d.opts.QueueDepth(context.Background(), depth)
	}
}

func (d *Worker) logJobPanic(v any) {
	d.log.LogAttrs(context.Background(), slog.LevelError, "panic in an asynchronous job; its unsent receipts count as failed",
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
}

// errStopped: Defer after Shutdown.
var errStopped = errors.New("queue: the worker is shut down")
