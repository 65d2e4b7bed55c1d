package seenhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// dispatcher is the asynchronous worker: one loop claims due jobs from the
// [Queue] and hands them to one lane per session, which sends its jobs one
// after another, at least AsyncOptions.Pace apart.
//
// With a memory queue the loop runs only while jobs are pending (it starts
// on the first enqueue and ends when the queue is empty); with a durable
// one it runs from New to Shutdown, looking at the queue at least every
// asyncPoll. Shutdown stops both, and owns them: it waits for them.
type dispatcher struct {
	h       *Handler
	q       Queue
	opts    AsyncOptions
	durable bool

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
	// depth is the receipts waiting, for the QueueObserver: total, less
	// what was settled here since.
	depth     int64
	lastStats Stats
	lanes     map[string]*lane

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

func newDispatcher(h *Handler, o AsyncOptions) (*dispatcher, error) {
	q := o.Queue
	if q == nil {
		q = NewMemoryQueue()
	}
	d := &dispatcher{
		h: h, q: q, opts: o, durable: q.Durable(),
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
	p, err := q.Pending(ctx, PendingOf{Total: true})
	if err != nil {
		return nil, fmt.Errorf("seenhandler: WithAsync: reading the queue: %w", err)
	}
	d.total, d.totalAt, d.depth = p.Total, time.Now(), p.Total
	d.mu.Lock()
	d.startLocked()
	d.mu.Unlock()
	return d, nil
}

// startLocked starts the loop unless it runs. d.mu must be held.
func (d *dispatcher) startLocked() {
	if d.running || d.halted {
		return
	}
	d.running = true
	d.work.Add(1)
	go d.loop()
}

// kick tells the loop that a job is due at due, starting it if need be.
func (d *dispatcher) kick(due time.Time) {
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

// enqueue stores job in the queue, unless the handler is shutting down or
// the job would pass a bound (AsyncOptions.SessionQueueSize,
// TokenQueueSize, QueueSize) of the receipts pending, as the Queue counts
// them with those this process is queueing at the same time.
func (d *dispatcher) enqueue(ctx context.Context, job *Job) error {
	n := int64(len(job.Receipts))
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errShuttingDown
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
		return &queueFullError{bound: fullSession}
	case job.Token != "" && p.Token > int64(d.opts.TokenQueueSize):
		return &queueFullError{bound: fullToken}
	}
	if p.Total > int64(d.opts.QueueSize) && fresh { // refused on a count read afresh only
		if p, err = d.pending(ctx, job, true); err != nil {
			return err
		}
	}
	if p.Total > int64(d.opts.QueueSize) {
		return &queueFullError{bound: fullQueue}
	}
	if err := d.q.Enqueue(ctx, job); err != nil {
		return fmt.Errorf("queueing: %w", err)
	}
	d.mu.Lock()
	d.total += n
	d.depth += n
	depth := d.depth
	d.mu.Unlock()
	d.h.observeQueue(int(depth))
	d.kick(job.Due)
	return nil
}

// pending counts the receipts pending for job's bounds: its session's and
// its token's from the Queue, the whole queue's from it too when total,
// else as last read with what was queued here since; each with the jobs
// being queued here meanwhile (job among them), which the Queue may not
// count yet — or may already, which only makes the bounds hold early
// while requests race.
func (d *dispatcher) pending(ctx context.Context, job *Job, total bool) (PendingCounts, error) {
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
func (d *dispatcher) loop() {
	defer d.work.Done()
	defer func() {
		if v := recover(); v != nil { // the loop's goroutine: nobody else can
			d.h.logJobPanic(v)
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
				d.h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "claiming queued receipts failed; trying again",
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
func (d *dispatcher) runLane(name string, l *lane) {
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
func (d *dispatcher) attempt(j Job) {
	settling := false
	defer func() {
		v := recover() // one job's panic must not end its session's lane
		switch {
		case v == nil:
		case settling:
			d.h.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "panic after an asynchronous job was sent",
				slog.String("session", j.Session), slog.Int64("job", j.ID), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		default:
			d.h.logJobPanic(v)
			d.settle(j, Outcome{Failed: len(j.Receipts), Reason: CodeInternal})
		}
	}()
	o := d.send(j)
	settling = true
	d.settle(j, o)
}

// send makes one attempt at j: it looks the session up, sends each
// receipt, marks the chat read after those that went out, and says what
// is to be retried.
func (d *dispatcher) send(j Job) Outcome {
	h := d.h
	ctx := d.sendCtx
	p := &plan{session: j.Session, chatID: j.Chat, typ: j.Receipts[0].Type}
	var (
		o         Outcome
		delivered []session.Receipt
		retryErr  error
	)
	lctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	sess, lookupErr := h.reg.Lookup(lctx, j.Session)
	cancel()
	if lookupErr == nil && sess == nil {
		lookupErr = fmt.Errorf("%w: the registry returned a nil session for %q", session.ErrSessionNotFound, j.Session)
	}
	if j.Auto && lookupErr == nil {
		if receipts, ok := h.readChat(ctx, sess, &j); ok {
			if len(receipts) == 0 { // read meanwhile: nothing is left to send
				o.Sent = len(j.Receipts)
			}
			j.Receipts = receipts
		}
	}
	for _, rc := range j.Receipts {
		var err error
		if lookupErr != nil {
			err = backendErr(OpLookup, lookupErr)
		} else {
			sctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
			if rc = h.stillUnread(sctx, j, sess, rc); len(rc.MessageIDs) == 0 {
				cancel()
				o.Sent++ // read meanwhile: nothing is left to send
				continue
			}
			out, _, serr := h.sendOne(sctx, sess, p, rc)
			cancel()
			if serr == nil {
				o.Sent++ // handed to the backend, which may have found them all duplicates
				if len(out.MessageIDs) > 0 {
					delivered = append(delivered, out)
					h.cfg.observeViews(ctx, j.Session, out, j.Times, j.Auto)
				}
				continue
			}
			err = backendErr(OpSend, serr)
		}
		if d.retryable(err) {
			o.Retry = append(o.Retry, rc)
			retryErr = err
			continue
		}
		o.Failed++
		o.Reason = classify(err).code
		if ctx.Err() != nil {
			o.Reason = CodeShuttingDown
		}
		d.logFailed(j, rc, err, o.Reason)
	}
	if len(delivered) > 0 {
		mctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
		h.markChatRead(mctx, nil, sess, p, delivered, j.Times)
		cancel()
	}
	if j.Typing && o.Sent > 0 {
		tctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
		chat := j.Chat
		if len(delivered) > 0 {
			chat = delivered[0].Chat
		}
		h.startTyping(tctx, nil, sess, p, chat)
		cancel()
	}
	if len(o.Retry) == 0 {
		return o
	}
	o.Typing, o.Auto = j.Typing && o.Sent == 0, j.Auto
	o.LastError = classify(retryErr).code
	now := time.Now()
	deadline := j.Accepted.Add(d.opts.RetryFor)
	if ctx.Err() != nil { // stopping: a durable queue keeps them, due at once
		o.RetryAt = now
		return o
	}
	if !now.Before(deadline) {
		o.Failed += len(o.Retry)
		o.Reason = o.LastError
		for _, rc := range o.Retry {
			d.logFailed(j, rc, retryErr, o.LastError+" until the retry deadline")
		}
		o.Retry = nil
		return o
	}
	wait := asyncRetryFirst << min(j.Attempts, 8)
	o.RetryAt = now.Add(min(wait, asyncRetryMax))
	if o.RetryAt.After(deadline) {
		o.RetryAt = deadline
	}
	h.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "queued receipts wait for their session",
		slog.String("session", j.Session), slog.String("chat", j.Chat), slog.Int("receipts", len(o.Retry)),
		slog.String("code", o.LastError), slog.Time("retry_at", o.RetryAt), slog.Int("attempts", j.Attempts+1))
	return o
}

// readChat plans auto-read's job j, now due, as WhatsApp Web reads a chat
// when it is opened: every message of the chat still unread — those that
// arrived after the one that made the job included — one receipt per
// sender, ids in arrival order, sent now (t is the send time). It adds the
// messages' times to j.Times. ok is false when the session cannot list the
// chat's unread messages, or listing fails: the job's own receipts go out
// then, as queued.
func (h *Handler) readChat(ctx context.Context, sess session.Session, j *Job) (receipts []session.Receipt, ok bool) {
	chat, err := validate.NormalizeChat(j.Chat)
	if err != nil {
		return nil, false
	}
	p := &plan{session: j.Session, chat: chat, chatID: j.Chat, typ: session.ReceiptRead, idsField: "messageIds", unread: true}
	x := &exchange{ctx: ctx}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	ids, known, err := h.unreadIDs(ctx, x, sess, p)
	if err == nil {
		receipts, _, err = h.group(ctx, x, sess, p, ids, &known)
	}
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "auto-read: listing the chat's unread messages failed; sending the job's own",
			slog.String("session", j.Session), slog.String("chat", j.Chat), slog.String("error", err.Error()))
		return nil, false
	}
	// The job's own messages go too, first (they arrived first), should
	// the session not list them: they were unread when queued, and
	// stillUnread drops those read since.
	for i := len(j.Receipts) - 1; i >= 0; i-- {
		rc := j.Receipts[i]
		missing := slices.DeleteFunc(slices.Clone(rc.MessageIDs), func(id string) bool {
			return slices.ContainsFunc(receipts, func(r session.Receipt) bool { return slices.Contains(r.MessageIDs, id) })
		})
		if len(missing) == 0 {
			continue
		}
		k := slices.IndexFunc(receipts, func(r session.Receipt) bool { return r.Sender == rc.Sender })
		if k < 0 {
			receipts = slices.Insert(receipts, 0, session.Receipt{Chat: rc.Chat, Sender: rc.Sender, Type: rc.Type})
			k = 0
		}
		receipts[k].MessageIDs = append(missing, receipts[k].MessageIDs...)
	}
	now := time.Now() // when the chat is read, as the job's other times
	for i := range receipts {
		receipts[i].Timestamp = now
	}
	if len(known) > 0 {
		if j.Times == nil {
			j.Times = make(map[string]time.Time, len(known))
		}
		maps.Copy(j.Times, known)
	}
	return receipts, true
}

// stillUnread returns rc, a receipt of job j now due, without the ids the
// account has read since j was queued (on another of its devices, or
// through another request): WhatsApp Web never sends a read receipt twice.
// Only read receipts are checked (played goes out for a voice note read but
// not played), and only with a session.Resolver. An id the session cannot
// tell about stays: it was checked when queued, and a store failing now
// must not lose its receipt.
func (h *Handler) stillUnread(ctx context.Context, j Job, sess session.Session, rc session.Receipt) session.Receipt {
	resolver, ok := session.As[session.Resolver](sess)
	if !ok || rc.Type != session.ReceiptRead {
		return rc
	}
	var read []string
	for _, id := range rc.MessageIDs {
		if m, err := resolver.ResolveMessage(ctx, rc.Chat, id); err == nil && m.Read {
			read = append(read, id)
		}
	}
	if len(read) == 0 {
		return rc
	}
	h.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "queued receipt: the account has read these messages meanwhile; not sending them",
		slog.String("session", j.Session), slog.String("chat", rc.Chat), slog.Any("message_ids", read))
	rc.MessageIDs = slices.DeleteFunc(slices.Clone(rc.MessageIDs), func(id string) bool { return slices.Contains(read, id) })
	return rc
}

// retryable reports whether a receipt that failed with err is to be sent
// again later: its session is down or the backend did not answer in time,
// or the process is stopping (a durable queue keeps it). A memory queue's
// Shutdown gives each job one attempt.
func (d *dispatcher) retryable(err error) bool {
	d.mu.Lock()
	flush := d.flush
	d.mu.Unlock()
	switch {
	case d.sendCtx.Err() != nil || flush:
		return d.durable
	case errors.Is(err, session.ErrNotConnected), errors.Is(err, session.ErrNotLoggedIn),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

func (d *dispatcher) logFailed(j Job, rc session.Receipt, err error, reason string) {
	d.h.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "async receipt failed",
		slog.String("session", j.Session), slog.String("chat", rc.Chat), slog.Any("message_ids", rc.MessageIDs),
		slog.String("reason", reason), slog.String("error", err.Error()))
	d.h.cfg.observeBackend(context.Background(), j.Session, err)
}

// settle records o for j in the queue and in the counts. Whatever the
// Queue does, the job's slot is given back (done).
func (d *dispatcher) settle(j Job, o Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
	defer cancel()
	if err := d.queueCall("Settle", func() error { return d.q.Settle(ctx, j.ID, o) }); err != nil {
		// The job stays claimed until its lease ends, then is sent again.
		d.h.cfg.logger.LogAttrs(ctx, slog.LevelError, "recording a queued job's outcome failed; it will be sent again",
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
func (d *dispatcher) abandon(j Job) {
	if d.durable {
		d.release(j)
		return
	}
	for _, rc := range j.Receipts {
		d.logFailed(j, rc, errShuttingDown, "not sent before the shutdown deadline")
	}
	d.settle(j, Outcome{Failed: len(j.Receipts), Reason: CodeShuttingDown})
}

// release gives j back to the queue unsent, claimable at once: the loop
// looks again (a memory queue's may have stopped, nothing left waiting).
func (d *dispatcher) release(j Job) {
	ctx, cancel := context.WithTimeout(context.Background(), asyncStoreTimeout)
	defer cancel()
	if err := d.queueCall("Release", func() error { return d.q.Release(ctx, []int64{j.ID}) }); err != nil {
		d.h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "releasing a queued job failed; it is sent again when its lease ends",
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
func (d *dispatcher) queueCall(name string, call func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			d.h.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "panic in the asynchronous queue",
				slog.String("method", "Queue."+name), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%w in Queue.%s: %v", errPanic, name, v)
		}
	}()
	return call()
}

// done notes that a claimed job of session name was settled or released,
// n of its receipts leaving the queue. The loop claims again when a slot
// frees up after all were taken, or once a lane filled to asyncLaneDepth
// is half done.
func (d *dispatcher) done(name string, n int64) {
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
		d.h.observeQueue(int(depth))
	}
	if wasFull || more {
		d.kick(time.Time{})
	}
}

// shutdown stops accepting and stops the worker: see [Handler.Shutdown].
func (d *dispatcher) shutdown(ctx context.Context) error {
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
func (d *dispatcher) leftover(err error) error {
	d.mu.Lock()
	n := d.inflight
	d.mu.Unlock()
	fate := "each is counted when its send returns"
	if d.durable {
		fate = "each is settled when its send returns, or else stays in the queue, sent again once its lease ends"
	}
	return fmt.Errorf("seenhandler: shutdown: %w, with %d queued jobs claimed and not settled (being sent, or waiting behind a send whose backend ignores its context): %s", err, n, fate)
}

// stopStarting halts the loop and the lanes: no job starts any more.
func (d *dispatcher) stopStarting() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.halted {
		d.halted = true
		close(d.halt)
	}
}

// failRest counts failed the jobs of a memory queue that were never
// claimed (the loop halted first).
func (d *dispatcher) failRest() {
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
