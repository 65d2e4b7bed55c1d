package queue

import (
	"container/heap"
	"time"
)

// Turn is a session's part in a fair claim ([Claim.PerSession]), for
// [Deal]: its first turn comes after the Held jobs its claimer holds of
// it, it may take Left more jobs, and its earliest due job was due at Due.
type Turn struct {
	Session string
	Held    int
	Left    int
	Due     time.Time
}

// Share is how many due jobs of Session a claim takes, its earliest.
type Share struct {
	Session string
	Jobs    int
}

// Deal deals up to limit jobs among turns as [Claim.PerSession] says: in
// turns, the session whose next turn comes first taking its next job, then
// within a turn the one whose earliest job is due first, then by name. It
// returns the sessions that take any, in the order each took its first,
// with how many each takes: a Queue then claims that many of each
// session's earliest due jobs. Turns with nothing Left take none. It is
// the one dealer of the package's queues and of sqlqueue's; turns is
// reordered.
func Deal(turns []Turn, limit int) []Share {
	h := make(turnHeap, 0, len(turns))
	for i := range turns {
		if turns[i].Left > 0 {
			h = append(h, &turns[i])
		}
	}
	heap.Init(&h)
	at := map[string]int{} // a session's index in out
	var out []Share
	for n := 0; n < limit && h.Len() > 0; n++ {
		t := h[0]
		i, ok := at[t.Session]
		if !ok {
			i = len(out)
			at[t.Session] = i
			out = append(out, Share{Session: t.Session})
		}
		out[i].Jobs++
		t.Held++
		if t.Left--; t.Left == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return out
}

// turnHeap orders the turns of a claim by their next turn, then by when
// their earliest job was due, then by session.
type turnHeap []*Turn

func (h turnHeap) Len() int { return len(h) }
func (h turnHeap) Less(i, k int) bool {
	a, b := h[i], h[k]
	if a.Held != b.Held {
		return a.Held < b.Held
	}
	if !a.Due.Equal(b.Due) {
		return a.Due.Before(b.Due)
	}
	return a.Session < b.Session
}
func (h turnHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *turnHeap) Push(x any)   { *h = append(*h, x.(*Turn)) }
func (h *turnHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
