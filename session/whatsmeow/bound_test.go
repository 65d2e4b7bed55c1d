package whatsmeow_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/session"
)

// A Session says it is bound by its context — group commit then sends a
// receipt alone from its caller's goroutine — until its calls have run for
// a second with none ending, as when whatsmeow's write lock is held by a
// write the connection does not take; then group commit sends from
// goroutines of its own, and callers answer at their deadlines. Once a
// call ends it is bound again.
func TestBoundByContextUntilStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		block := make(chan struct{})
		fc.markBlock = block
		s := mustNew(t, fc, newDevice(t, true))
		defer s.Close()
		if !s.BoundByContext() {
			t.Error("idle: not bound")
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, "R1"))
			done <- err
		}()
		synctest.Wait() // R1 waits in MarkRead
		time.Sleep(time.Second - time.Nanosecond)
		if !s.BoundByContext() {
			t.Error("a call running for just under a second: not bound")
		}
		time.Sleep(time.Nanosecond)
		if s.BoundByContext() {
			t.Error("a call running for a second, none ending: still bound")
		}
		close(block)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !s.BoundByContext() {
			t.Error("the call ended: not bound")
		}
	})
}

// With two calls running, the end of one starts the second anew; after
// the last one ends, the next call's second counts from its start.
func TestBoundByContextFromTheLastEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		block := make(chan struct{})
		fc.markBlock = block
		s := mustNew(t, fc, newDevice(t, true))
		defer s.Close()
		done := make(chan error, 3)
		send := func(id string) {
			go func() {
				_, err := s.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptRead, id))
				done <- err
			}()
			synctest.Wait() // it waits in MarkRead
		}
		bound := func(when string, want bool) {
			t.Helper()
			if got := s.BoundByContext(); got != want {
				t.Errorf("%s: BoundByContext() = %v, want %v", when, got, want)
			}
		}
		// edge checks both sides of a second of what runs.
		edge := func(what string) {
			t.Helper()
			time.Sleep(time.Second - time.Nanosecond)
			bound(what+" for just under a second", true)
			time.Sleep(time.Nanosecond)
			bound(what+" for a second", false)
		}
		// end waits for a call let out of MarkRead to return.
		end := func() {
			t.Helper()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		send("R1")
		time.Sleep(500 * time.Millisecond)
		send("R2")
		time.Sleep(400 * time.Millisecond)
		block <- struct{}{} // one of them ends, at 0.9 s
		end()
		edge("the other running, since the first ended,")
		close(block)
		end()
		bound("both ended", true)

		time.Sleep(5 * time.Second)
		block = make(chan struct{})
		fc.set(func(f *fakeClient) { f.markBlock = block })
		send("R3")
		edge("a call running, after a pause,")
		close(block)
		end()
		bound("the call ended", true)
	})
}
