package queue_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler/queue"
)

// Deal gives jobs in turns: a session's turns come after those it holds,
// within a turn the earliest due first, then by name; a session takes no
// more than it has Left, and one with nothing Left takes none.
func TestDeal(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	turns := []queue.Turn{
		{Session: "busy", Held: 2, Left: 5, Due: at(1)},
		{Session: "b", Left: 1, Due: at(5)},
		{Session: "a", Left: 3, Due: at(5)},
		{Session: "none", Left: 0, Due: at(0)},
	}
	// Turn 0: a (due 5, before b by name), b; turn 1: a; turn 2: busy (due
	// 1, before a), then a, whose third is its last.
	got := queue.Deal(turns, 5)
	want := []queue.Share{{Session: "a", Jobs: 3}, {Session: "b", Jobs: 1}, {Session: "busy", Jobs: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Deal = %+v, want %+v", got, want)
	}
	if got := queue.Deal(nil, 5); got != nil {
		t.Errorf("Deal of no turns = %+v, want none", got)
	}
}
