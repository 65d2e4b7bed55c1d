// Package queuetest checks that a queue.Queue keeps its contract,
// as testing/slogtest does for slog handlers:
//
//	func TestQueue(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) queue.Queue { return newMyQueue(t) })
//	}
//
// queue.Memory and the SQL queues of seenhandler/queue/sqlqueue (on
// SQLite and PostgreSQL) pass it. Times are compared at millisecond
// precision, the precision a SQL queue keeps.
package queuetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
)

// Run runs the conformance tests as subtests of t, each on a fresh, empty
// Queue from newQueue.
func Run(t *testing.T, newQueue func(t *testing.T) queue.Queue) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, q queue.Queue)
	}{
		{"RoundTrip", testRoundTrip},
		{"DueOrderAndLimit", testDueOrderAndLimit},
		{"DueOrderAcrossSessions", testDueOrderAcrossSessions},
		{"Lease", testLease},
		{"SettleDone", testSettleDone},
		{"SettleRetry", testSettleRetry},
		{"SettleUnclaimed", testSettleUnclaimed},
		{"Release", testRelease},
		{"Local", testLocal},
		{"ConcurrentClaims", testConcurrentClaims},
		{"Stats", testStats},
		{"Pending", testPending},
		{"FairTurns", testFairTurns},
		{"FairHeld", testFairHeld},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newQueue(t)) })
	}
}

// t0 is the suite's "now", at millisecond precision.
var t0 = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func receipt(chat, sender string, ids ...string) session.Receipt {
	return session.Receipt{Chat: chat, Sender: sender, MessageIDs: ids, Type: session.ReceiptRead, Timestamp: at(-5000)}
}

func job(name string, due time.Time, ids ...string) *queue.Job {
	var rs []session.Receipt
	for _, id := range ids {
		rs = append(rs, receipt("15551234567@s.whatsapp.net", "", id))
	}
	return &queue.Job{Session: name, Chat: "15551234567@s.whatsapp.net", Receipts: rs, Accepted: due.Add(-time.Second), Due: due}
}

func enqueue(t *testing.T, q queue.Queue, jobs ...*queue.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := q.Enqueue(context.Background(), j); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
}

func claim(t *testing.T, q queue.Queue, c queue.Claim) ([]queue.Job, time.Time) {
	t.Helper()
	if c.Lease == 0 {
		c.Lease = time.Minute
	}
	if c.Limit == 0 {
		c.Limit = 100
	}
	jobs, next, err := q.Claim(context.Background(), c)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return jobs, next
}

func ids(jobs []queue.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func testRoundTrip(t *testing.T, q queue.Queue) {
	in := &queue.Job{
		Session: "support",
		Chat:    "120363012345678901@g.us",
		Receipts: []session.Receipt{
			{Chat: "120363012345678901@g.us", Sender: "15557654321@s.whatsapp.net", MessageIDs: []string{"A1", "A2"}, Type: session.ReceiptPlayed, Timestamp: at(-1234)},
			{Chat: "120363012345678901@g.us", Sender: "15550001111@s.whatsapp.net", MessageIDs: []string{"B1"}, Type: session.ReceiptPlayed, Timestamp: at(-1234)},
		},
		Times:    map[string]time.Time{"A1": at(-90000), "B1": at(-80000)},
		Accepted: at(-1000),
		Due:      at(0),
		Typing:   true,
		Auto:     true,
	}
	enqueue(t, q, in)
	if in.ID == 0 {
		t.Fatal("Enqueue set no ID")
	}
	other := job("support", at(0), "C1")
	enqueue(t, q, other)
	if other.ID == in.ID {
		t.Fatalf("two jobs got ID %d", in.ID)
	}
	jobs, _ := claim(t, q, queue.Claim{Now: at(0), Limit: 1})
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(jobs))
	}
	got := jobs[0]
	if got.ID != in.ID || got.Session != in.Session || got.Chat != in.Chat || !got.Accepted.Equal(in.Accepted) ||
		!got.Due.Equal(in.Due) || got.Attempts != 0 || got.LastError != "" || !got.Typing || !got.Auto {
		t.Errorf("claimed %+v, want %+v", got, *in)
	}
	if fmt.Sprint(got.Receipts) != fmt.Sprint(in.Receipts) {
		t.Errorf("receipts %+v, want %+v", got.Receipts, in.Receipts)
	}
	for i := range got.Receipts {
		if !got.Receipts[i].Timestamp.Equal(in.Receipts[i].Timestamp) {
			t.Errorf("receipt %d timestamp %v, want %v", i, got.Receipts[i].Timestamp, in.Receipts[i].Timestamp)
		}
	}
	if len(got.Times) != 2 || !got.Times["A1"].Equal(in.Times["A1"]) || !got.Times["B1"].Equal(in.Times["B1"]) {
		t.Errorf("times %v, want %v", got.Times, in.Times)
	}
	if err := q.Enqueue(context.Background(), &queue.Job{Session: "support", Due: at(0)}); err == nil {
		t.Error("Enqueue took a job without receipts")
	}
}

func testDueOrderAndLimit(t *testing.T, q queue.Queue) {
	late, early, mid, future := job("s", at(300), "L"), job("s", at(100), "E"), job("s", at(200), "M"), job("s", at(5000), "F")
	enqueue(t, q, late, early, mid, future)
	jobs, next := claim(t, q, queue.Claim{Now: at(300), Limit: 2})
	if !slices.Equal(ids(jobs), []int64{early.ID, mid.ID}) {
		t.Errorf("claimed %v, want the two due first %v", ids(jobs), []int64{early.ID, mid.ID})
	}
	if !next.Equal(at(300)) {
		t.Errorf("next %v, want %v (the one left due)", next, at(300))
	}
	jobs, next = claim(t, q, queue.Claim{Now: at(300)})
	if !slices.Equal(ids(jobs), []int64{late.ID}) {
		t.Errorf("claimed %v, want %v", ids(jobs), []int64{late.ID})
	}
	if !next.Equal(at(5000)) {
		t.Errorf("next %v, want %v", next, at(5000))
	}
	if jobs, _ := claim(t, q, queue.Claim{Now: at(4999)}); len(jobs) != 0 {
		t.Errorf("claimed %v before it was due", ids(jobs))
	}
}

// Without PerSession a claim takes the earliest due jobs, whatever their
// session: a session's backlog goes before another's later job.
func testDueOrderAcrossSessions(t *testing.T, q queue.Queue) {
	a0, a1, a2, b0 := job("a", at(100), "A0"), job("a", at(110), "A1"), job("a", at(120), "A2"), job("b", at(200), "B0")
	enqueue(t, q, a0, a1, a2, b0)
	jobs, _ := claim(t, q, queue.Claim{Now: at(300), Limit: 2})
	if !slices.Equal(ids(jobs), []int64{a0.ID, a1.ID}) {
		t.Errorf("claimed %v, want the two due first %v", ids(jobs), []int64{a0.ID, a1.ID})
	}
	jobs, _ = claim(t, q, queue.Claim{Now: at(300)})
	if !slices.Equal(ids(jobs), []int64{a2.ID, b0.ID}) {
		t.Errorf("claimed %v, want the rest in due order %v", ids(jobs), []int64{a2.ID, b0.ID})
	}
}

func testLease(t *testing.T, q queue.Queue) {
	j := job("s", at(0), "A")
	enqueue(t, q, j)
	if jobs, _ := claim(t, q, queue.Claim{Now: at(0), Lease: time.Minute}); len(jobs) != 1 {
		t.Fatalf("claimed %d", len(jobs))
	}
	if jobs, _ := claim(t, q, queue.Claim{Now: at(59999)}); len(jobs) != 0 {
		t.Errorf("claimed again within the lease: %v", ids(jobs))
	}
	// The claimer died: once the lease ends, the job is claimed again.
	jobs, _ := claim(t, q, queue.Claim{Now: at(60000)})
	if !slices.Equal(ids(jobs), []int64{j.ID}) {
		t.Errorf("claimed %v after the lease, want %v", ids(jobs), []int64{j.ID})
	}
}

func testSettleDone(t *testing.T, q queue.Queue) {
	j := job("s", at(0), "A", "B", "C")
	enqueue(t, q, j)
	claim(t, q, queue.Claim{Now: at(0)})
	if err := q.Settle(context.Background(), j.ID, queue.Outcome{Sent: 2, Failed: 1, Reason: "invalid_receipt"}); err != nil {
		t.Fatal(err)
	}
	if jobs, next := claim(t, q, queue.Claim{Now: at(1e9)}); len(jobs) != 0 || !next.IsZero() {
		t.Errorf("a settled job is still there: %v, next %v", ids(jobs), next)
	}
	checkStats(t, q, []queue.SessionStats{{Session: "s", Sent: 2, Failed: 1}})
}

func testSettleRetry(t *testing.T, q queue.Queue) {
	j := job("s", at(0), "A", "B", "C")
	j.Typing, j.Auto = true, true
	enqueue(t, q, j)
	claim(t, q, queue.Claim{Now: at(0)})
	retry := j.Receipts[2:]
	err := q.Settle(context.Background(), j.ID, queue.Outcome{Sent: 1, Failed: 1, Reason: "internal",
		Retry: retry, RetryAt: at(2000), LastError: "session_not_connected", Typing: true, Auto: true})
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, q, []queue.SessionStats{{Session: "s", Sent: 1, Failed: 1, Pending: 1, OldestPending: j.Accepted}})
	if jobs, next := claim(t, q, queue.Claim{Now: at(1999)}); len(jobs) != 0 || !next.Equal(at(2000)) {
		t.Errorf("claimed %v before the retry, next %v (want %v)", ids(jobs), next, at(2000))
	}
	jobs, _ := claim(t, q, queue.Claim{Now: at(2000)})
	if len(jobs) != 1 {
		t.Fatalf("claimed %d at the retry, want 1", len(jobs))
	}
	got := jobs[0]
	if got.ID != j.ID || got.Attempts != 1 || got.LastError != "session_not_connected" || !got.Accepted.Equal(j.Accepted) || !got.Typing || !got.Auto ||
		fmt.Sprint(got.Receipts) != fmt.Sprint(retry) {
		t.Errorf("retried job %+v, want attempt 1 with %+v", got, retry)
	}
	if err := q.Settle(context.Background(), j.ID, queue.Outcome{Sent: 1}); err != nil {
		t.Fatal(err)
	}
	checkStats(t, q, []queue.SessionStats{{Session: "s", Sent: 2, Failed: 1}})
}

func testSettleUnclaimed(t *testing.T, q queue.Queue) {
	j := job("s", at(0), "A")
	enqueue(t, q, j)
	if err := q.Settle(context.Background(), j.ID, queue.Outcome{Sent: 1}); err == nil {
		t.Error("Settle of a job nobody claimed succeeded")
	}
	if err := q.Settle(context.Background(), j.ID+1000, queue.Outcome{Sent: 1}); err == nil {
		t.Error("Settle of a job that does not exist succeeded")
	}
	checkStats(t, q, []queue.SessionStats{{Session: "s", Pending: 1, OldestPending: j.Accepted}})
}

func testRelease(t *testing.T, q queue.Queue) {
	a, b := job("s", at(0), "A"), job("s", at(0), "B")
	enqueue(t, q, a, b)
	claim(t, q, queue.Claim{Now: at(0), Lease: time.Hour})
	if err := q.Release(context.Background(), []int64{a.ID}); err != nil {
		t.Fatal(err)
	}
	jobs, _ := claim(t, q, queue.Claim{Now: at(1)})
	if !slices.Equal(ids(jobs), []int64{a.ID}) {
		t.Errorf("claimed %v after releasing %d", ids(jobs), a.ID)
	}
	if jobs[0].Attempts != 0 {
		t.Errorf("a released job counts %d attempts", jobs[0].Attempts)
	}
}

func testLocal(t *testing.T, q queue.Queue) {
	mine, theirs := job("mine", at(0), "A"), job("theirs", at(0), "B")
	enqueue(t, q, theirs, mine)
	jobs, _ := claim(t, q, queue.Claim{Now: at(0), Local: func(s string) bool { return s == "mine" }})
	if !slices.Equal(ids(jobs), []int64{mine.ID}) {
		t.Errorf("claimed %v, want only the local session's %v", ids(jobs), []int64{mine.ID})
	}
	jobs, _ = claim(t, q, queue.Claim{Now: at(0)})
	if !slices.Equal(ids(jobs), []int64{theirs.ID}) {
		t.Errorf("the other node claimed %v, want %v", ids(jobs), []int64{theirs.ID})
	}
}

// Claims at once never hand a job to two claimers.
func testConcurrentClaims(t *testing.T, q queue.Queue) {
	const n, claimers = 60, 6
	for i := range n {
		enqueue(t, q, job(fmt.Sprint("s", i%3), at(i), fmt.Sprint("M", i)))
	}
	var (
		mu  sync.Mutex
		got = map[int64]int{}
		wg  sync.WaitGroup
	)
	for range claimers {
		wg.Go(func() {
			for {
				jobs, _, err := q.Claim(context.Background(), queue.Claim{Now: at(n), Limit: 4, Lease: time.Minute})
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					got[j.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Errorf("%d distinct jobs claimed, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("job %d claimed %d times", id, c)
		}
	}
}

func testStats(t *testing.T, q queue.Queue) {
	checkStats(t, q, nil)
	a1, a2, b := job("a", at(0), "1", "2"), job("a", at(0), "3"), job("b", at(0), "4")
	a1.Accepted, a2.Accepted, b.Accepted = at(-500), at(-900), at(-100)
	enqueue(t, q, a1, a2, b)
	checkStats(t, q, []queue.SessionStats{
		{Session: "a", Pending: 3, OldestPending: at(-900)},
		{Session: "b", Pending: 1, OldestPending: at(-100)},
	})
	// Named sessions only; one that never had a job is left out.
	checkStats(t, q, []queue.SessionStats{{Session: "b", Pending: 1, OldestPending: at(-100)}}, "b", "never")
	claimed, _ := claim(t, q, queue.Claim{Now: at(0), Limit: 10, Lease: time.Minute})
	for _, j := range claimed {
		if j.Session == "a" {
			if err := q.Settle(context.Background(), j.ID, queue.Outcome{Sent: len(j.Receipts)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkStats(t, q, []queue.SessionStats{{Session: "a", Sent: 3}}, "a")
}

// checkStats checks what Stats(sessions...) returns.
func checkStats(t *testing.T, q queue.Queue, want []queue.SessionStats, sessions ...string) {
	t.Helper()
	got, err := q.Stats(context.Background(), sessions...)
	if err != nil {
		t.Fatal(err)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.Session == w.Session && g.Sent == w.Sent && g.Failed == w.Failed && g.Pending == w.Pending &&
			g.OldestPending.Equal(w.OldestPending)
	}
	if !ok {
		t.Errorf("Stats(%q) = %+v\nwant    %+v", sessions, got, want)
	}
}

// Pending counts what is pending now — in all, of a session, of a token —
// from the jobs the queue holds: enqueued, retried in part, settled.
func testPending(t *testing.T, q queue.Queue) {
	checkPending(t, q, "a", "tok-1", queue.PendingCounts{})
	a1, a2, b := job("a", at(0), "1", "2"), job("a", at(0), "3"), job("b", at(0), "4", "5", "6")
	a1.Token, b.Token = "tok-1", "tok-1"
	a2.Token = "tok-2"
	enqueue(t, q, a1, a2, b)
	checkPending(t, q, "a", "tok-1", queue.PendingCounts{Total: 6, Session: 3, Token: 5})
	checkPending(t, q, "b", "tok-2", queue.PendingCounts{Total: 6, Session: 3, Token: 1})
	checkPending(t, q, "never", "", queue.PendingCounts{Total: 6})
	claimed, _ := claim(t, q, queue.Claim{Now: at(0), Limit: 10})
	if len(claimed) != 3 {
		t.Fatalf("claimed %d jobs, want 3", len(claimed))
	}
	checkPending(t, q, "a", "tok-1", queue.PendingCounts{Total: 6, Session: 3, Token: 5}) // claimed jobs are pending still
	for _, j := range claimed {
		var o queue.Outcome
		switch j.ID {
		case a1.ID: // one sent, one to retry
			o = queue.Outcome{Sent: 1, Retry: j.Receipts[1:], RetryAt: at(2000), LastError: "session_not_connected"}
		case b.ID:
			o = queue.Outcome{Sent: 2, Failed: 1, Reason: "internal"}
		default:
			continue
		}
		if err := q.Settle(context.Background(), j.ID, o); err != nil {
			t.Fatal(err)
		}
	}
	checkPending(t, q, "a", "tok-1", queue.PendingCounts{Total: 2, Session: 2, Token: 1})
	checkPending(t, q, "b", "tok-2", queue.PendingCounts{Total: 2, Session: 0, Token: 1})
}

// checkPending checks what Pending returns for name and token, with the
// whole queue's count and without it.
func checkPending(t *testing.T, q queue.Queue, name, token string, want queue.PendingCounts) {
	t.Helper()
	for _, total := range []bool{true, false} {
		of := queue.PendingOf{Session: name, Token: token, Total: total}
		got, err := q.Pending(context.Background(), of)
		if err != nil {
			t.Fatal(err)
		}
		if !total {
			got.Total = want.Total // not asked: any
		}
		if got != want {
			t.Errorf("Pending(%+v) = %+v, want %+v", of, got, want)
		}
	}
}

// With PerSession, sessions take turns: each one's earliest due job, the
// earliest due first, then each one's second…; a backlog does not go
// first for being older.
func testFairTurns(t *testing.T, q queue.Queue) {
	var backlog []*queue.Job
	for i := range 6 {
		backlog = append(backlog, job("busy", at(i), fmt.Sprint("A", i)))
	}
	enqueue(t, q, backlog...)
	other, third := job("other", at(50), "B0"), job("third", at(60), "C0")
	third2 := job("third", at(61), "C1")
	enqueue(t, q, other, third, third2)
	jobs, _ := claim(t, q, queue.Claim{Now: at(100), Limit: 4, PerSession: 10})
	want := []int64{backlog[0].ID, backlog[1].ID, other.ID, third.ID} // turn 1: busy, other, third; turn 2: busy
	checkSet(t, "the first claim", jobs, want)
	// At most PerSession of a session: busy has 2 held, PerSession 3.
	jobs, _ = claim(t, q, queue.Claim{Now: at(100), Limit: 10, PerSession: 3, Held: map[string]int{"busy": 2, "other": 1, "third": 1}})
	checkSet(t, "the second claim", jobs, []int64{backlog[2].ID, third2.ID})
}

// Held makes a session's turns start after the jobs its claimer holds: a
// session with nothing held goes before a backlog whose jobs are older.
func testFairHeld(t *testing.T, q queue.Queue) {
	var backlog []*queue.Job
	for i := range 10 {
		backlog = append(backlog, job("busy", at(i), fmt.Sprint("A", i)))
	}
	enqueue(t, q, backlog...)
	late := job("late", at(500), "B0")
	enqueue(t, q, late)
	jobs, _ := claim(t, q, queue.Claim{Now: at(1000), Limit: 2, PerSession: 4})
	checkSet(t, "the first claim", jobs, []int64{backlog[0].ID, late.ID})
	// A worker that holds 2 of busy's and freed one slot gets busy's next.
	jobs, _ = claim(t, q, queue.Claim{Now: at(1000), Limit: 1, PerSession: 4, Held: map[string]int{"busy": 1}})
	checkSet(t, "the second claim", jobs, []int64{backlog[1].ID})
	// Another session's job, due later than busy's backlog, goes first
	// once busy holds jobs.
	newer := job("newer", at(900), "C0")
	enqueue(t, q, newer)
	jobs, _ = claim(t, q, queue.Claim{Now: at(1000), Limit: 1, PerSession: 4, Held: map[string]int{"busy": 2, "late": 1}})
	checkSet(t, "the third claim", jobs, []int64{newer.ID})
	// A session that holds PerSession jobs gets none.
	jobs, _ = claim(t, q, queue.Claim{Now: at(1000), Limit: 5, PerSession: 4, Held: map[string]int{"busy": 4}})
	if len(jobs) != 0 {
		t.Errorf("claimed %v for a session holding PerSession jobs", ids(jobs))
	}
}

// checkSet checks that jobs are want, in any order.
func checkSet(t *testing.T, what string, jobs []queue.Job, want []int64) {
	t.Helper()
	got := ids(jobs)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: claimed %v, want %v", what, got, want)
	}
}
