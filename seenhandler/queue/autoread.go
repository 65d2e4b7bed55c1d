package queue

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/internal/floodlog"
	"github.com/bluetick/bluetick/session"
)

// autoReadBuffer bounds the arrivals waiting to be deferred; beyond it an
// arrival is dropped (logged, observed as queue_full). Those still waiting
// when the Worker shuts down are dropped too (counted in one log line,
// each observed as shutting_down).
const autoReadBuffer = 1024

// autoReader takes arrivals from the source's callbacks to one goroutine,
// which gives each to the handler's ReadLater.
type autoReader struct {
	w        *Worker
	stop     func()
	in       chan arrival
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	// mu guards closed, and orders the callbacks' sends to in before the
	// drain of shutdown: no arrival is left in the buffer unreported.
	mu     sync.Mutex
	closed bool
	// drops says when to log the arrivals dropped on a full buffer: a
	// flood of arrivals must not become a flood of log lines.
	drops floodlog.Counter
}

type arrival struct {
	session string
	a       session.Arrival
}

func (w *Worker) startAutoRead(h *seenhandler.Handler, src session.ArrivalSource) *autoReader {
	ar := &autoReader{w: w, in: make(chan arrival, autoReadBuffer), done: make(chan struct{})}
	ar.wg.Add(1)
	go func() {
		defer ar.wg.Done()
		for {
			select {
			case <-ar.done:
				return
			case x := <-ar.in:
				ar.readLater(h, x)
			}
		}
	}()
	ar.stop = src.SubscribeArrivals(func(name string, a session.Arrival) {
		ar.mu.Lock()
		if ar.closed {
			ar.mu.Unlock()
			w.arrivalDropped(seenhandler.CodeShuttingDown) // a callback racing the end of the subscription
			return
		}
		select {
		case ar.in <- arrival{name, a}:
			ar.mu.Unlock()
			return
		default:
		}
		ar.mu.Unlock()
		if n := ar.drops.Count(time.Now()); n > 0 {
			w.log.Warn("auto-read: too many arrivals waiting; dropping them",
				"dropped", n, "session", name, "chat", a.Chat)
		}
		w.arrivalDropped(seenhandler.CodeQueueFull)
	})
	return ar
}

// readLater gives one arrival to the handler, which reports it. A panic is
// logged; the goroutine goes on with the next arrival.
func (ar *autoReader) readLater(h *seenhandler.Handler, x arrival) {
	defer func() {
		if v := recover(); v != nil { // our goroutine: nobody else can
			ar.w.logJobPanic(v)
		}
	}()
	_ = h.ReadLater(context.Background(), x.session, x.a) // reported by the handler
}

// arrivalDropped reports to the Observer an arrival auto-read dropped
// before the handler saw it, with code (queue_full, shutting_down).
func (w *Worker) arrivalDropped(code seenhandler.Code) {
	if w.opts.Observer.RequestDone == nil {
		return
	}
	w.opts.Observer.RequestDone(context.Background(), seenhandler.RequestInfo{Endpoint: seenhandler.EndpointAutoRead,
		Status: http.StatusServiceUnavailable, Code: code})
}

// shutdown ends the subscription and waits for the arrival under way,
// until ctx ends: then the error wraps ctx.Err(), and that arrival is
// deferred (or refused: the handler is closing) when the session's calls
// return. The arrivals still waiting in the buffer are dropped, each
// reported to the Observer as shutting_down; shutdown returns how many.
func (ar *autoReader) shutdown(ctx context.Context) (dropped int, err error) {
	ar.stopOnce.Do(func() {
		ar.stop()
		ar.mu.Lock()
		ar.closed = true
		ar.mu.Unlock()
		close(ar.done)
	})
	idle := make(chan struct{})
	go func() {
		ar.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		err = fmt.Errorf("queue: shutdown: %w while auto-read was deferring an arrival", ctx.Err())
	}
	for {
		select {
		case <-ar.in:
			dropped++
			ar.w.arrivalDropped(seenhandler.CodeShuttingDown)
		default:
			return dropped, err
		}
	}
}
