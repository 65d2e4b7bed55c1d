package sqlqueue_test

import (
	"context"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
)

// node is a handler whose Later is a started queue.Worker, every request
// asynchronous.
type node struct {
	h *seenhandler.Handler
	w *queue.Worker
}

func newNode(tb testing.TB, reg session.Registry, o queue.Options, opts ...seenhandler.Option) node {
	tb.Helper()
	w, err := queue.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := seenhandler.New(reg, append([]seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithLater(w),
		seenhandler.WithAsyncByDefault()}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	w.Start(h)
	return node{h, w}
}

// shutdown stops the handler, then the worker, as the queue package says.
func (n node) shutdown(ctx context.Context) error {
	_ = n.h.Shutdown(ctx)
	return n.w.Shutdown(ctx)
}

// totals is the sum of a Worker's counts over its sessions.
type totals struct{ Accepted, Sent, Failed, Pending int64 }

func (n node) totals(tb testing.TB) totals {
	tb.Helper()
	sessions, err := n.w.Stats(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	sum := queue.Total(sessions)
	return totals{Accepted: sum.Sent + sum.Failed + sum.Pending, Sent: sum.Sent, Failed: sum.Failed, Pending: sum.Pending}
}
