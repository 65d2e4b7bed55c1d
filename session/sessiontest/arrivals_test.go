package sessiontest_test

import (
	"testing"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// An emitted arrival reaches every subscriber until it stops.
func TestArrivals(t *testing.T) {
	var src sessiontest.Arrivals
	var got1, got2 []string
	stop1 := src.SubscribeArrivals(func(name string, a session.Arrival) { got1 = append(got1, name+"/"+a.ID) })
	src.SubscribeArrivals(func(name string, a session.Arrival) { got2 = append(got2, name+"/"+a.ID) })
	src.Emit("demo", session.Arrival{ID: "A1"})
	stop1()
	stop1() // again: nothing
	src.Emit("demo", session.Arrival{ID: "A2"})
	if len(got1) != 1 || got1[0] != "demo/A1" {
		t.Errorf("first subscriber got %q, want [demo/A1]", got1)
	}
	if len(got2) != 2 || got2[0] != "demo/A1" || got2[1] != "demo/A2" {
		t.Errorf("second subscriber got %q, want [demo/A1 demo/A2]", got2)
	}
}
