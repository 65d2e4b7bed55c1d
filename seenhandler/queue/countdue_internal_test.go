package queue

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

// countDue counts a heap's due jobs as a scan of all of them would, up to
// its bound.
func TestCountDue(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(500, 0)
	for range 200 {
		var h jobHeap
		due := 0
		for i := range r.IntN(60) {
			j := &memJob{job: Job{ID: int64(i), Due: time.Unix(int64(r.IntN(1000)), 0)}}
			heap.Push(&h, j)
			if !j.job.Due.After(now) {
				due++
			}
		}
		for _, most := range []int{1, 3, 1000} {
			if got, want := h.countDue(now, most), min(due, most); got != want {
				t.Fatalf("countDue(most %d) = %d over %d jobs, want %d", most, got, len(h), want)
			}
		}
	}
}
