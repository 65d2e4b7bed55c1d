package seenhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// autoReadBuffer bounds the arrivals waiting to be queued; beyond it an
// arrival is dropped (logged, observed as queue_full). Those still waiting
// when the handler shuts down are dropped too (counted in one log line,
// each observed as shutting_down).
const autoReadBuffer = 1024

// EndpointAutoRead is the [RequestInfo] endpoint of an arrival that
// auto-read queued (or refused): one per message offered.
const EndpointAutoRead Endpoint = "auto_read"

// WithAutoRead subscribes the handler to src's arrivals (incoming messages
// a session offers to mark read by itself, such as a whatsmeow Manager's
// with its sessions' WithAutoRead) and sends each through the path of an
// asynchronous request: the session's rate limit — a budget of auto-read's
// own, as large as the requests' but apart (key "auto:" and the session's
// name), so that strangers messaging the account cannot spend the budget of
// its API; an arrival over it is dropped — the account's own messages skipped, the [Queue] (due at the
// arrival's Due, kept across restarts by a durable one), the [Observer]
// (RequestDone with [EndpointAutoRead], and the time to view with Auto
// set). A message the account has read by the time its receipt is due (on
// another of its devices, as the session's session.Resolver tells) is not
// sent. It needs [WithAsync]; [Handler.Shutdown] ends the subscription.
// Default: none.
func WithAutoRead(src session.ArrivalSource) Option {
	return func(c *config) error {
		if src == nil {
			return errors.New("seenhandler: WithAutoRead: nil ArrivalSource")
		}
		c.arrivals = src
		return nil
	}
}

// autoReader takes arrivals from the source's callbacks to one goroutine.
type autoReader struct {
	stop     func()
	in       chan arrival
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	// mu guards closed, and orders the callbacks' sends to in before the
	// drain of shutdown: no arrival is left in the buffer unreported.
	mu     sync.Mutex
	closed bool
	// drops counts the arrivals dropped on a full buffer, and refused
	// the arrivals refused by code, for one log line a period each: a
	// flood of arrivals must not become a flood of log lines.
	drops   logCounter
	refused sync.Map // code → *logCounter
}

// floodLogEvery is how often at most a failure that repeats is logged,
// with how many times it happened since the last line: auto-read's drops
// and refusals (once per reason), requests failed by a full storage (see
// Handler.fail).
const floodLogEvery = time.Minute

// logCounter counts events and says when one log line is due for them.
type logCounter struct {
	mu     sync.Mutex
	last   time.Time // the last line
	events int       // since
}

// count counts one event at now and returns how many to log now (those
// since the last line), or 0 when a line was logged within
// floodLogEvery.
func (c *logCounter) count(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if !c.last.IsZero() && now.Sub(c.last) < floodLogEvery {
		return 0
	}
	n := c.events
	c.last, c.events = now, 0
	return n
}

type arrival struct {
	session string
	a       session.Arrival
}

func (h *Handler) startAutoRead(src session.ArrivalSource) {
	ar := &autoReader{in: make(chan arrival, autoReadBuffer), done: make(chan struct{})}
	h.auto = ar
	ar.wg.Add(1)
	go func() {
		defer ar.wg.Done()
		for {
			select {
			case <-ar.done:
				return
			case x := <-ar.in:
				h.autoRead(x.session, x.a)
			}
		}
	}()
	ar.stop = src.SubscribeArrivals(func(name string, a session.Arrival) {
		ar.mu.Lock()
		if ar.closed {
			ar.mu.Unlock()
			h.arrivalDropped(name, a, errShuttingDown) // a callback racing the end of the subscription
			return
		}
		select {
		case ar.in <- arrival{name, a}:
			ar.mu.Unlock()
			return
		default:
		}
		ar.mu.Unlock()
		if n := ar.drops.count(time.Now()); n > 0 {
			h.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "auto-read: too many arrivals waiting; dropping them",
				slog.Int("dropped", n), slog.String("session", name), slog.String("chat", a.Chat))
		}
		h.arrivalDropped(name, a, errQueueFull)
	})
}

// arrivalDropped reports to the Observer an arrival auto-read dropped
// before queueing it, for err (errQueueFull, errShuttingDown).
func (h *Handler) arrivalDropped(name string, a session.Arrival, err error) {
	p := classify(err)
	x := &exchange{endpoint: EndpointAutoRead, start: time.Now(), asked: name, chat: a.Chat}
	h.observeDone(context.Background(), x, p.status, p.code)
}

// shutdown ends the subscription and waits for the arrival under way,
// until ctx ends: then the error wraps ctx.Err(), and that arrival is
// queued (or refused: the handler is closing) when the session's calls
// return. The arrivals still waiting in the buffer are dropped, each
// reported to the Observer as shutting_down; shutdown returns how many.
func (ar *autoReader) shutdown(ctx context.Context, h *Handler) (dropped int, err error) {
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
		err = fmt.Errorf("seenhandler: shutdown: %w while auto-read was queueing an arrival", ctx.Err())
	}
	for {
		select {
		case x := <-ar.in:
			dropped++
			h.arrivalDropped(x.session, x.a, errShuttingDown)
		default:
			return dropped, err
		}
	}
}

// autoRead queues one arrival and reports it to the Observer. A panic is
// logged; the goroutine goes on with the next arrival.
func (h *Handler) autoRead(name string, a session.Arrival) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.timeout)
	defer cancel()
	x := &exchange{ctx: ctx, endpoint: EndpointAutoRead, start: time.Now(), status: http.StatusAccepted, asked: name, chat: a.Chat}
	defer func() {
		if v := recover(); v != nil { // our goroutine: nobody else can
			h.logJobPanic(v)
		}
	}()
	if err := h.queueArrival(ctx, x, name, a); err != nil {
		p := classify(err)
		c, _ := h.auto.refused.LoadOrStore(p.code, new(logCounter))
		if n := c.(*logCounter).count(time.Now()); n > 0 {
			h.cfg.logger.LogAttrs(ctx, levelFor(p), "auto-read not queued",
				slog.Int("arrivals", n), slog.String("session", name), slog.String("chat", a.Chat), slog.String("message_id", a.ID),
				slog.String("code", p.code), slog.String("error", err.Error()))
		}
		h.cfg.observeBackend(ctx, x.session, err)
		h.observeDone(ctx, x, p.status, p.code)
		return
	}
	h.observeDone(ctx, x, x.status, "")
}

// queueArrival checks a as a request's plan would be, and queues its
// receipt, due at a.Due.
func (h *Handler) queueArrival(ctx context.Context, x *exchange, name string, a session.Arrival) error {
	if h.closing.Load() {
		return errShuttingDown
	}
	chat, err := validate.NormalizeChat(a.Chat)
	if err != nil {
		return validate.Errors{validate.Field("chatId", validate.TagChat, err)}
	}
	id := validate.MessageID{ID: a.ID}
	if sender, err := validate.NormalizeParticipant(a.Sender); err == nil {
		id.Participant = sender
	}
	p := &plan{session: name, chat: chat, chatID: chat.String(), typ: session.ReceiptRead, idsField: "messageIds", async: true}
	sess, err := h.lookup(ctx, x, name, nil)
	if err != nil {
		return err
	}
	var known messageTimes
	known.note(a.ID, a.Timestamp)
	receipts, skipped, err := h.group(ctx, x, sess, p, []planID{{raw: a.ID, index: idUnread, parsed: id}}, &known)
	if err != nil {
		return err
	}
	x.skipped = len(skipped)
	if len(receipts) == 0 {
		x.status = http.StatusOK // nothing to mark: the account's own, or read already
		return nil
	}
	for i := range receipts {
		receipts[i].Timestamp = a.Due // read then, as a person would have
	}
	job := &Job{Session: name, Chat: p.chatID, Receipts: receipts, Times: known,
		Accepted: time.Now(), Due: a.Due, Auto: true}
	if err := h.async.enqueue(ctx, job); err != nil {
		return fmt.Errorf("auto-read: %w", err)
	}
	return nil
}
