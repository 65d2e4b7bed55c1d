package queue

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Job is the receipts of one asynchronous request, as a [Queue] keeps them
// until they are sent.
type Job struct {
	// ID identifies the job in its Queue; Enqueue sets it.
	ID int64
	// Session is the name of the session to send through: the worker looks
	// it up in the registry when the job is due (it may be sent by another
	// process, after a restart).
	Session string
	// Chat is the request's chat, to mark it read once receipts went out.
	Chat string
	// Receipts are the receipts still to send, one per sender; at least one.
	Receipts []session.Receipt
	// Auto: the job is auto-read's (see Options.Arrivals), not a request's.
	Auto bool
	// Token identifies the API token whose request queued the job, so that
	// one token's jobs can be bounded (Options.TokenQueueSize): a
	// digest, never the token itself; "" when no token was checked
	// (auto-read, [WithNoAuth]).
	Token string
	// Typing: once receipts went out, show the account typing in the chat
	// (the request's "typing"; see session.Typist).
	Typing bool
	// Times holds when the messages of the request were sent, by id, as far
	// as the session knew: the chat is marked read up to the newest.
	Times map[string]time.Time
	// Accepted is when the request was answered 202; the retry deadline
	// counts from it, and the oldest pending age is measured from it.
	Accepted time.Time
	// Due is when the job is to be sent (again).
	Due time.Time
	// Attempts counts the attempts that ended in a retry.
	Attempts int
	// LastError is the error code of the last attempt that ended in a
	// retry, e.g. "session_not_connected"; "" before.
	LastError string
}

// Outcome is what one attempt at a claimed [Job] came to: receipts sent,
// receipts failed for good, and the receipts to try again, if any.
type Outcome struct {
	// Sent counts the receipts handed to the backend by this attempt (and
	// those not sent because the account had read all their messages
	// meanwhile: nothing was left to send), Failed those given up (with
	// Reason, an error code such as "session_not_connected", and why).
	Sent, Failed int
	Reason       string
	// Retry are the receipts to send again at RetryAt; with none, the job
	// is finished and leaves the queue.
	Retry   []session.Receipt
	RetryAt time.Time
	// Typing replaces the job's Typing with the Retry receipts: false once
	// the typing indicator went out. Auto is the job's Auto, kept.
	Typing, Auto bool
	// LastError is the error code that caused the retry.
	LastError string
}

// Claim asks a [Queue] for due jobs.
type Claim struct {
	// Now is the time jobs must be due by.
	Now time.Time
	// Limit is the most jobs to return; at least 1.
	Limit int
	// Lease is how long the jobs are the caller's: no Claim returns them
	// again before Now+Lease unless they are settled or released first, or
	// (see Local) another claimer now owns their session. A process that
	// dies while holding jobs thus delays them by at most the lease (SQL
	// queues on SQLite release every claim when opened).
	Lease time.Duration
	// Local, when not nil, limits the jobs to the sessions it accepts: with
	// several processes on one database, each delivers the sessions it
	// owns. A session Local accepts is the caller's alone: a Queue shared
	// by several claimers (a durable one) also returns that session's due
	// jobs that another claimer holds, whatever their lease, since that
	// claimer has lost the session (a node that died: its claims are
	// released with its session leases, not a lease of the queue later).
	// The caller's own claims are never returned again.
	Local func(session string) bool
	// PerSession, when positive, makes the claim fair across sessions:
	// the caller holds at most PerSession jobs of one session (those in
	// Held included), and jobs are taken in turns — the earliest due job
	// of each session, then each one's next, and so on, within a turn the
	// session whose earliest job is due first going first (then by name) —
	// a session's turns coming after the jobs the caller already holds of
	// it. A session with a backlog thus never delays another's jobs by
	// more than one turn. Zero: the earliest due jobs, whatever their
	// session.
	PerSession int
	// Held counts the jobs of each session the caller holds (claimed and
	// not settled or released), for PerSession.
	Held map[string]int
	// DueWithin, when positive, makes a job never attempted due DueWithin
	// after its acceptance at the latest, whatever its Due: a process
	// restarted with shorter delays (Options.MaxDelay) sends the jobs
	// of the one before within its own. A Queue that is not durable may
	// ignore it: its jobs never outlive the delays they were given.
	DueWithin time.Duration
}

// SessionStats are the counts of one session's asynchronous receipts,
// as a [Queue] keeps them (across restarts for a durable one).
type SessionStats struct {
	// Session is the session's name.
	Session string
	// Sent and Failed count the receipts that left the queue; Pending those
	// still in it (waiting for their delay, for a retry, or being sent).
	Sent, Failed, Pending int64
	// OldestPending is when the oldest pending receipt was accepted; zero
	// when none is pending.
	OldestPending time.Time
}

// Total sums stats, the counts of several sessions (as [Worker.Stats]
// returns them): Session is empty, OldestPending the earliest of theirs.
// The receipts accepted are Sent + Failed + Pending.
func Total(stats []SessionStats) SessionStats {
	var t SessionStats
	for _, s := range stats {
		t.Sent += s.Sent
		t.Failed += s.Failed
		t.Pending += s.Pending
		if !s.OldestPending.IsZero() && (t.OldestPending.IsZero() || s.OldestPending.Before(t.OldestPending)) {
			t.OldestPending = s.OldestPending
		}
	}
	return t
}

// PendingOf says which pending receipts [Queue.Pending] counts.
type PendingOf struct {
	// Session names the session whose receipts to count.
	Session string
	// Token names the token ([Job.Token]) whose jobs' receipts to count;
	// "": none.
	Token string
	// Total asks for the whole queue's count too (it may cost a pass over
	// the pending jobs: the [Worker] asks for it at most once a second, and
	// before it refuses a request for it).
	Total bool
}

// PendingCounts are the receipts pending in a [Queue] (waiting for their
// delay or a retry, or being sent), as [Queue.Pending] counts them.
type PendingCounts struct {
	// Total counts every session's, in the whole queue (with a durable
	// Queue shared by several processes, all of theirs), when asked
	// (PendingOf.Total); else it may be 0.
	Total int64
	// Session counts the named session's.
	Session int64
	// Token counts those of the jobs queued with the named token; 0 when
	// the token named is "".
	Token int64
}

// Queue keeps the receipts of asynchronous requests until they are sent:
// in memory ([NewMemory], the default) or in a database (package
// seenhandler/queue/sqlqueue). Its methods must be safe for concurrent use; a
// job is claimed by one caller at a time, and delivery is at least once: a
// job whose claimer dies before settling it is claimed again when its lease
// ends. seenhandler/queue/queuetest checks an implementation.
type Queue interface {
	// Enqueue stores job and sets its ID. It returns once the job is as
	// durable as the Queue makes it: the request's 202 is answered after.
	// An error means nothing of the job was stored.
	Enqueue(ctx context.Context, job *Job) error
	// Claim returns up to c.Limit jobs due by c.Now, oldest due first
	// (fairly across sessions with c.PerSession), claimed for c.Lease, and
	// when the earliest job left unclaimed is due (zero when the Queue
	// knows of none): the caller may sleep until then.
	Claim(ctx context.Context, c Claim) (jobs []Job, next time.Time, err error)
	// Settle records the outcome of an attempt at a claimed job: it counts
	// the receipts sent and failed, and either removes the job or keeps its
	// o.Retry receipts, due at o.RetryAt and claimable again, in one step.
	// Settling a job that is not claimed (or is gone) is an error.
	Settle(ctx context.Context, id int64, o Outcome) error
	// Release gives claimed jobs back unchanged, claimable at once (a
	// stopping worker that did not get to them).
	Release(ctx context.Context, ids []int64) error
	// Stats returns the counts of the named sessions, or of every session
	// that ever had a job when none is named, sorted by session; a named
	// session that never had a job is left out. A status request names its
	// session: what it costs should grow with that session's jobs, not the
	// queue's.
	Stats(ctx context.Context, sessions ...string) ([]SessionStats, error)
	// Pending counts the receipts pending now, as of says. The [Worker]
	// asks it for each asynchronous request, to hold its bounds
	// (Options.QueueSize and the others): a session's and a token's
	// counts should cost what their pending jobs do, the whole queue's
	// what the pending jobs do, never what left the queue.
	Pending(ctx context.Context, of PendingOf) (PendingCounts, error)
	// Durable reports whether the jobs survive the process. [Worker.Shutdown]
	// sends the jobs of a Queue that is not durable, paced, before it
	// returns; a durable one keeps them for the next start.
	Durable() bool
}

// errNotClaimed: Settle of a job that is not claimed.
var errNotClaimed = errors.New("queue: the job is not claimed")

// Memory is the [Queue] of a process without a store: jobs live in
// memory and are lost with the process. It is safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	nextID  int64
	jobs    map[int64]*memJob   // pending: waiting or claimed
	ready   map[string]*jobHeap // the waiting ones, by session, by due time
	claimed map[int64]*memJob   // the claimed ones
	counts  map[string]*SessionStats
	total   int64            // receipts pending
	tokens  map[string]int64 // receipts pending by Job.Token, those with one
}

var _ Queue = (*Memory)(nil)

type memJob struct {
	job          Job
	claimedUntil time.Time // while in claimed
	index        int       // in its session's ready heap, or -1
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{jobs: make(map[int64]*memJob), ready: make(map[string]*jobHeap), claimed: make(map[int64]*memJob),
		counts: make(map[string]*SessionStats), tokens: make(map[string]int64)}
}

func (q *Memory) count(name string) *SessionStats {
	c, ok := q.counts[name]
	if !ok {
		c = &SessionStats{Session: name}
		q.counts[name] = c
	}
	return c
}

// wait puts j among its session's waiting jobs.
func (q *Memory) wait(j *memJob) {
	h, ok := q.ready[j.job.Session]
	if !ok {
		h = &jobHeap{}
		q.ready[j.job.Session] = h
	}
	heap.Push(h, j)
}

// pend adds n receipts of j's to the pending counts (n < 0 takes them off).
func (q *Memory) pend(j *Job, n int64) {
	q.count(j.Session).Pending += n
	q.total += n
	if j.Token != "" {
		if q.tokens[j.Token] += n; q.tokens[j.Token] == 0 {
			delete(q.tokens, j.Token)
		}
	}
}

// Enqueue implements [Queue]; it copies job's receipts.
func (q *Memory) Enqueue(_ context.Context, job *Job) error {
	if err := checkJob(job); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextID++
	job.ID = q.nextID
	j := &memJob{job: *job, index: -1}
	j.job.Receipts = slices.Clone(job.Receipts)
	q.jobs[j.job.ID] = j
	q.wait(j)
	q.pend(&j.job, int64(len(job.Receipts)))
	return nil
}

// checkJob refuses a job no Queue should store.
func checkJob(job *Job) error {
	if job.Session == "" || len(job.Receipts) == 0 {
		return errors.New("queue: a job needs a session and receipts")
	}
	return nil
}

// Claim implements [Queue]. Jobs whose lease has ended are claimable again;
// the claims are all this process's, so Local takes none over.
func (q *Memory) Claim(_ context.Context, c Claim) ([]Job, time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, j := range q.claimed { // leases that ended: only claimers that died leave them
		if !j.claimedUntil.After(c.Now) {
			delete(q.claimed, id)
			q.wait(j)
		}
	}
	var out []Job
	take := func(h *jobHeap) {
		j := heap.Pop(h).(*memJob)
		j.claimedUntil = c.Now.Add(c.Lease)
		q.claimed[j.job.ID] = j
		cp := j.job
		cp.Receipts = slices.Clone(cp.Receipts)
		out = append(out, cp)
	}
	due := func(h *jobHeap) bool { return h.Len() > 0 && !(*h)[0].job.Due.After(c.Now) }
	if c.PerSession > 0 {
		// The sessions with a job due take turns (Deal).
		var turns []Turn
		for name, h := range q.ready {
			if !due(h) || (c.Local != nil && !c.Local(name)) {
				continue
			}
			held := c.Held[name]
			if most := min(c.Limit, c.PerSession-held); most > 0 {
				turns = append(turns, Turn{Session: name, Held: held, Left: h.countDue(c.Now, most), Due: (*h)[0].job.Due})
			}
		}
		for _, sh := range Deal(turns, c.Limit) {
			for range sh.Jobs {
				take(q.ready[sh.Session])
			}
		}
	} else {
		// The earliest due jobs, whatever their session: the sessions
		// ordered by their earliest job.
		var heads headHeap
		for name, h := range q.ready {
			if due(h) && (c.Local == nil || c.Local(name)) {
				heads = append(heads, h)
			}
		}
		heap.Init(&heads)
		for len(out) < c.Limit && heads.Len() > 0 {
			take(heads[0])
			if due(heads[0]) {
				heap.Fix(&heads, 0)
			} else {
				heap.Pop(&heads)
			}
		}
	}
	slices.SortFunc(out, func(a, b Job) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var next time.Time
	for name, h := range q.ready {
		if h.Len() == 0 {
			delete(q.ready, name)
			continue
		}
		if due := (*h)[0].job.Due; next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return out, next, nil
}

// Settle implements [Queue].
func (q *Memory) Settle(_ context.Context, id int64, o Outcome) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, ok := q.claimed[id]
	if !ok {
		return fmt.Errorf("%w: %d", errNotClaimed, id)
	}
	delete(q.claimed, id)
	c := q.count(j.job.Session)
	c.Sent += int64(o.Sent)
	c.Failed += int64(o.Failed)
	q.pend(&j.job, -int64(len(j.job.Receipts)-len(o.Retry)))
	if len(o.Retry) == 0 {
		delete(q.jobs, id)
		return nil
	}
	j.job.Receipts = slices.Clone(o.Retry)
	j.job.Typing, j.job.Auto = o.Typing, o.Auto
	j.job.Due = o.RetryAt
	j.job.Attempts++
	j.job.LastError = o.LastError
	q.wait(j)
	return nil
}

// Release implements [Queue].
func (q *Memory) Release(_ context.Context, ids []int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		if j, ok := q.claimed[id]; ok {
			delete(q.claimed, id)
			q.wait(j)
		}
	}
	return nil
}

// Stats implements [Queue].
func (q *Memory) Stats(_ context.Context, sessions ...string) ([]SessionStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	asked := func(name string) bool { return len(sessions) == 0 || slices.Contains(sessions, name) }
	out := make([]SessionStats, 0, len(q.counts))
	oldest := make(map[string]time.Time)
	for _, j := range q.jobs {
		if !asked(j.job.Session) {
			continue
		}
		if t, ok := oldest[j.job.Session]; !ok || j.job.Accepted.Before(t) {
			oldest[j.job.Session] = j.job.Accepted
		}
	}
	for _, c := range q.counts {
		if !asked(c.Session) {
			continue
		}
		st := *c
		st.OldestPending = oldest[c.Session]
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SessionStats) int { return strings.Compare(a.Session, b.Session) })
	return out, nil
}

// Pending implements [Queue], from counts it keeps as jobs come and go:
// it always counts the whole queue.
func (q *Memory) Pending(_ context.Context, of PendingOf) (PendingCounts, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := PendingCounts{Total: q.total}
	if c, ok := q.counts[of.Session]; ok {
		p.Session = c.Pending
	}
	if of.Token != "" {
		p.Token = q.tokens[of.Token]
	}
	return p, nil
}

// Durable implements [Queue]: false.
func (q *Memory) Durable() bool { return false }

// headHeap orders session heaps, none empty, by their earliest job.
type headHeap []*jobHeap

func (h headHeap) Len() int           { return len(h) }
func (h headHeap) Less(i, k int) bool { return earlier((*h[i])[0], (*h[k])[0]) }
func (h headHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *headHeap) Push(x any)        { *h = append(*h, x.(*jobHeap)) }
func (h *headHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// countDue counts h's jobs due at now, up to most: the heap's due jobs
// are those of the subtrees whose roots are due.
func (h jobHeap) countDue(now time.Time, most int) int {
	n := 0
	var walk func(i int)
	walk = func(i int) {
		if i >= len(h) || n >= most || h[i].job.Due.After(now) {
			return
		}
		n++
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	return n
}

// jobHeap orders waiting jobs by due time, then id.
type jobHeap []*memJob

// earlier reports whether a is due before b, or at once with a lower id.
func earlier(a, b *memJob) bool {
	if !a.job.Due.Equal(b.job.Due) {
		return a.job.Due.Before(b.job.Due)
	}
	return a.job.ID < b.job.ID
}

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, k int) bool { return earlier(h[i], h[k]) }
func (h jobHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *jobHeap) Push(x any) {
	j := x.(*memJob)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	j.index = -1
	*h = old[:len(old)-1]
	return j
}
