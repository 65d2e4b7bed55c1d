package seenhandler

import (
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
	// Auto: the job is auto-read's (see [WithAutoRead]), not a request's.
	Auto bool
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
	// again before Now+Lease unless they are settled or released first. A
	// process that dies while holding jobs thus delays them by at most the
	// lease (SQL queues on SQLite release every claim when opened).
	Lease time.Duration
	// Local, when not nil, limits the jobs to the sessions it accepts: with
	// several processes on one database, each delivers its own sessions'.
	Local func(session string) bool
	// DueWithin, when positive, makes a job never attempted due DueWithin
	// after its acceptance at the latest, whatever its Due: a process
	// restarted with shorter delays (AsyncOptions.MaxDelay) sends the jobs
	// of the one before within its own. A Queue that is not durable may
	// ignore it: its jobs never outlive the delays they were given.
	DueWithin time.Duration
}

// SessionQueueStats are the counts of one session's asynchronous receipts,
// as a [Queue] keeps them (across restarts for a durable one).
type SessionQueueStats struct {
	// Session is the session's name.
	Session string
	// Sent and Failed count the receipts that left the queue; Pending those
	// still in it (waiting for their delay, for a retry, or being sent).
	Sent, Failed, Pending int64
	// OldestPending is when the oldest pending receipt was accepted; zero
	// when none is pending.
	OldestPending time.Time
}

// Queue keeps the receipts of asynchronous requests until they are sent:
// in memory ([NewMemoryQueue], the default) or in a database (package
// seenhandler/sqlqueue). Its methods must be safe for concurrent use; a
// job is claimed by one caller at a time, and delivery is at least once: a
// job whose claimer dies before settling it is claimed again when its lease
// ends. seenhandler/queuetest checks an implementation.
type Queue interface {
	// Enqueue stores job and sets its ID. It returns once the job is as
	// durable as the Queue makes it: the request's 202 is answered after.
	// An error means nothing of the job was stored.
	Enqueue(ctx context.Context, job *Job) error
	// Claim returns up to c.Limit jobs due by c.Now, oldest due first,
	// claimed for c.Lease, and when the earliest job left unclaimed is due
	// (zero when the Queue knows of none): the caller may sleep until then.
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
	Stats(ctx context.Context, sessions ...string) ([]SessionQueueStats, error)
	// Durable reports whether the jobs survive the process. [Handler.Shutdown]
	// sends the jobs of a Queue that is not durable, paced, before it
	// returns; a durable one keeps them for the next start.
	Durable() bool
}

// errNotClaimed: Settle of a job that is not claimed.
var errNotClaimed = errors.New("seenhandler: the job is not claimed")

// MemoryQueue is the [Queue] of a process without a store: jobs live in
// memory and are lost with the process. It is safe for concurrent use.
type MemoryQueue struct {
	mu      sync.Mutex
	nextID  int64
	jobs    map[int64]*memJob // pending: waiting or claimed
	ready   jobHeap           // the waiting ones, by due time
	claimed map[int64]*memJob // the claimed ones
	counts  map[string]*SessionQueueStats
}

var _ Queue = (*MemoryQueue)(nil)

type memJob struct {
	job          Job
	claimedUntil time.Time // while in claimed
	index        int       // in ready, or -1
}

// NewMemoryQueue returns an empty MemoryQueue.
func NewMemoryQueue() *MemoryQueue {
	return &MemoryQueue{jobs: make(map[int64]*memJob), claimed: make(map[int64]*memJob), counts: make(map[string]*SessionQueueStats)}
}

func (q *MemoryQueue) count(name string) *SessionQueueStats {
	c, ok := q.counts[name]
	if !ok {
		c = &SessionQueueStats{Session: name}
		q.counts[name] = c
	}
	return c
}

// Enqueue implements [Queue]; it copies job's receipts.
func (q *MemoryQueue) Enqueue(_ context.Context, job *Job) error {
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
	heap.Push(&q.ready, j)
	q.count(job.Session).Pending += int64(len(job.Receipts))
	return nil
}

// checkJob refuses a job no Queue should store.
func checkJob(job *Job) error {
	if job.Session == "" || len(job.Receipts) == 0 {
		return errors.New("seenhandler: a job needs a session and receipts")
	}
	return nil
}

// Claim implements [Queue]. Jobs whose lease has ended are claimable again.
func (q *MemoryQueue) Claim(_ context.Context, c Claim) ([]Job, time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, j := range q.claimed { // leases that ended: only claimers that died leave them
		if !j.claimedUntil.After(c.Now) {
			delete(q.claimed, id)
			heap.Push(&q.ready, j)
		}
	}
	var (
		out   []Job
		aside []*memJob // due, but not local
	)
	for len(out) < c.Limit && len(q.ready) > 0 && !q.ready[0].job.Due.After(c.Now) {
		j := heap.Pop(&q.ready).(*memJob)
		if c.Local != nil && !c.Local(j.job.Session) {
			aside = append(aside, j)
			continue
		}
		j.claimedUntil = c.Now.Add(c.Lease)
		q.claimed[j.job.ID] = j
		cp := j.job
		cp.Receipts = slices.Clone(cp.Receipts)
		out = append(out, cp)
	}
	for _, j := range aside {
		heap.Push(&q.ready, j)
	}
	var next time.Time
	if len(q.ready) > 0 {
		next = q.ready[0].job.Due
	}
	return out, next, nil
}

// Settle implements [Queue].
func (q *MemoryQueue) Settle(_ context.Context, id int64, o Outcome) error {
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
	c.Pending -= int64(len(j.job.Receipts) - len(o.Retry))
	if len(o.Retry) == 0 {
		delete(q.jobs, id)
		return nil
	}
	j.job.Receipts = slices.Clone(o.Retry)
	j.job.Typing, j.job.Auto = o.Typing, o.Auto
	j.job.Due = o.RetryAt
	j.job.Attempts++
	j.job.LastError = o.LastError
	heap.Push(&q.ready, j)
	return nil
}

// Release implements [Queue].
func (q *MemoryQueue) Release(_ context.Context, ids []int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		if j, ok := q.claimed[id]; ok {
			delete(q.claimed, id)
			heap.Push(&q.ready, j)
		}
	}
	return nil
}

// Stats implements [Queue].
func (q *MemoryQueue) Stats(_ context.Context, sessions ...string) ([]SessionQueueStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	asked := func(name string) bool { return len(sessions) == 0 || slices.Contains(sessions, name) }
	out := make([]SessionQueueStats, 0, len(q.counts))
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
	slices.SortFunc(out, func(a, b SessionQueueStats) int { return strings.Compare(a.Session, b.Session) })
	return out, nil
}

// Durable implements [Queue]: false.
func (q *MemoryQueue) Durable() bool { return false }

// jobHeap orders waiting jobs by due time, then id.
type jobHeap []*memJob

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, k int) bool {
	if !h[i].job.Due.Equal(h[k].job.Due) {
		return h[i].job.Due.Before(h[k].job.Due)
	}
	return h[i].job.ID < h[k].job.ID
}
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
