package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Each request's delay is drawn once, between MinDelay and MaxDelay: the
// receipts wait exactly the delay drawn.
func TestDelayDrawnOncePerRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var draws atomic.Int32
		defer queue.SetRandom(func() float64 { draws.Add(1); return 0.5 })()
		h, _, fake := startFake(t, queue.Options{MinDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond})
		w := post(t, h, `{"session":"demo","chatId":"`+group+`","messageIds":["false_`+group+`_A1_15557654321@c.us","false_`+group+`_A2_15550001111@c.us"],"async":true}`)
		if w.Code != http.StatusAccepted {
			t.Fatalf("status %d, body %s", w.Code, w.Body)
		}
		time.Sleep(299 * time.Millisecond) // the delay drawn is 300 ms
		synctest.Wait()
		if n := len(fake.Receipts()); n != 0 {
			t.Errorf("sent %d receipts before the delay", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 2 {
			t.Errorf("%d receipts sent after the delay, want 2", n)
		}
		if n := draws.Load(); n != 1 {
			t.Errorf("delay drawn %d times, want once per request", n)
		}
	})
}

// A job claimed for a session that then leaves this process (Local says
// so no more: another node owns it now) is given back unsent when its turn
// comes, for the session's new owner to send.
func TestLaneGivesBackMovedSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var local atomic.Bool
		local.Store(true)
		h, w, fake := startFake(t, queue.Options{MinDelay: time.Millisecond, MaxDelay: time.Millisecond,
			Pace: time.Minute, Local: func(string) bool { return local.Load() }}, seenhandler.WithAsyncByDefault())
		for _, id := range []string{"L1", "L2", "L3"} {
			if rec := post(t, h, `{"session":"demo","chatId":"15551234567","messageIds":["`+id+`"]}`); rec.Code != http.StatusAccepted {
				t.Fatalf("%s: %d %s", id, rec.Code, rec.Body)
			}
		}
		time.Sleep(time.Second) // the first job goes out; the others wait their turn in the lane
		synctest.Wait()
		if n := len(fake.Receipts()); n != 1 {
			t.Fatalf("%d receipts sent, want the first job's", n)
		}
		local.Store(false)
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 1 {
			t.Errorf("%d receipts sent once the session had left, want still 1", n)
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 3, Sent: 1, Pending: 2}) {
			t.Errorf("stats %+v, want 2 pending, given back", st)
		}
		local.Store(true) // back: its jobs are claimed again
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: 3, Sent: 3}) {
			t.Errorf("stats %+v once the session is back, want 3 sent", st)
		}
	})
}

// Shutdown sends every queued receipt now, paced (one job of a session
// every Options.Pace: no burst), nothing is lost, and the handler refuses
// new work.
func TestShutdownFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		h, w, fake := startFake(t, queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour})
		fake.Inject(sessiontest.Fault{Chat: "15550000007@s.whatsapp.net", Err: session.ErrNotConnected})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				chat := "15551234567"
				if i%10 == 7 {
					chat = "15550000007" // the backend fails these
				}
				rec := post(t, h, fmt.Sprintf(`{"session":"demo","chatId":"%s","messageIds":["M%d"],"async":true}`, chat, i))
				if rec.Code != http.StatusAccepted {
					t.Errorf("request %d: %d %s", i, rec.Code, rec.Body)
				}
			})
		}
		wg.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: n, Pending: n}) {
			t.Fatalf("before shutdown: %+v", st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		// 50 jobs of one session, 100 ms apart: the last starts after 4.9 s,
		// and the lane waits its pace once more before it ends.
		if took := time.Since(start); took != n*queue.DefaultPace {
			t.Errorf("the flush took %v, want %v (paced)", took, n*queue.DefaultPace)
		}
		failed := int64(n / 10)
		if st, want := totalsOf(t, w), (totals{Accepted: n, Sent: n - failed, Failed: failed}); st != want {
			t.Errorf("after shutdown: %+v, want %+v", st, want)
		}
		if got := int64(len(fake.Receipts())); got != n-failed {
			t.Errorf("the fake got %d receipts, want %d", got, n-failed)
		}
		if got := int64(len(fake.Calls())); got != n {
			t.Errorf("the fake saw %d calls, want every one of the %d accepted", got, n)
		}
		rec := post(t, h, `{"session":"demo","chatId":"15551234567","messageIds":["LATE"]}`)
		if got := decode[errorAnswer](t, rec); rec.Code != http.StatusServiceUnavailable || got.Error.Code != "shutting_down" {
			t.Errorf("after shutdown: %d %+v", rec.Code, got)
		}
		if _, err := w.Defer(context.Background(), seenhandler.Deferred{Session: "demo", Chat: user,
			Receipts: []session.Receipt{{Chat: user, MessageIDs: []string{"LATE"}, Type: session.ReceiptRead}}}); err == nil {
			t.Error("the Worker took a job after its Shutdown")
		}
	})
}

// A Shutdown whose deadline passes while the backend hangs reports the
// receipts it could not send as failed.
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, w, fake := startFake(t, queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour}, seenhandler.WithTimeout(time.Hour))
		fake.Inject(sessiontest.Fault{Latency: time.Hour})
		for i := range 3 {
			post(t, h, fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["H%d"],"async":true}`, i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = h.Shutdown(ctx)
		if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want deadline exceeded", err)
		}
		synctest.Wait() // the flush goes on after the deadline: the rest fail at once
		if st := totalsOf(t, w); st != (totals{Accepted: 3, Failed: 3}) {
			t.Errorf("once the flush ends: %+v, want {Accepted:3 Failed:3}", st)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []queue.Options{
		{MinDelay: 2 * time.Second, MaxDelay: time.Second},
		{MinDelay: -time.Second, MaxDelay: time.Second},
		{QueueSize: -1},
		{SessionQueueSize: -1},
		{TokenQueueSize: -1},
		{Pace: -1},
		{RetryFor: -1},
	} {
		if _, err := queue.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// A session that stays down past RetryFor: its receipts are counted
// failed with the reason, never silently dropped.
func TestRetryDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		h, w, fake := startFake(t, queue.Options{MinDelay: time.Second, MaxDelay: time.Second, RetryFor: time.Minute},
			seenhandler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		fake.Inject(sessiontest.Fault{Session: "demo", Err: session.ErrNotLoggedIn})
		rec := post(t, h, `{"session":"demo","chatId":"15551234567","messageIds":["D1"],"async":true}`)
		if got := decode[seenAnswer](t, rec); rec.Code != http.StatusAccepted || got.Queued == nil || got.Queued.Reason != seenhandler.CodeSessionNotLoggedIn {
			t.Fatalf("%d %+v", rec.Code, got)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: 1, Pending: 1}) {
			t.Errorf("before the deadline: %+v", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: 1, Failed: 1}) {
			t.Errorf("after the deadline: %+v", st)
		}
		// Attempts at 1, 3, 7, 15, 31 s (backoff 2 s doubling), then 30 s
		// apart, capped by the deadline at 60 s.
		if n := len(fake.Calls()); n != 6 {
			t.Errorf("%d attempts, want 6", n)
		}
		if !strings.Contains(logs.String(), "async receipt failed") || !strings.Contains(logs.String(), "session_not_logged_in until the retry deadline") {
			t.Errorf("log:\n%s", logs.String())
		}
	})
}

// panickySettle is a Queue whose Settle panics.
type panickySettle struct{ *queue.Memory }

func (panickySettle) Settle(context.Context, int64, queue.Outcome) error {
	panic("settle exploded")
}

// A Queue whose Settle panics does not take the worker's slots: each
// panic is logged and its job's slot given back, and the worker keeps
// claiming, past the 64 jobs it holds at once.
func TestQueueSettlePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		h, _, fake := startFake(t, queue.Options{MinDelay: time.Second, MaxDelay: time.Second,
			Queue: panickySettle{queue.NewMemory()}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		const n = 70
		for i := range n {
			rec := post(t, h, fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["P%d"],"async":true}`, i))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
			}
		}
		time.Sleep(time.Minute) // every job due, and 70 paced sends done (within the claims' lease)
		synctest.Wait()
		if got := len(fake.Calls()); got != n {
			t.Errorf("%d of %d jobs attempted", got, n)
		}
		if got := strings.Count(logs.String(), "panic in the asynchronous queue"); got != n {
			t.Errorf("%d panics logged, want %d", got, n)
		}
	})
}

// Shutdown returns when its context ends, even while a send whose backend
// ignores its context is out (whatsmeow's NewsletterMarkViewed waits for
// WhatsApp's answer regardless), and says what it left: the job being
// sent, settled once the backend returns.
func TestShutdownReturnsWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		reg := session.NewMemoryRegistry()
		reg.Set("demo", session.SessionFunc(func(_ context.Context, r session.Receipt) (session.Result, error) {
			<-release // deaf to its context
			return session.Result{Type: r.Type}, nil
		}))
		h, w := start(t, reg, queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour})
		if rec := post(t, h, `{"session":"demo","chatId":"15551234567","messageIds":["N1"],"async":true}`); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d %s", rec.Code, rec.Body)
		}
		time.AfterFunc(2*time.Second, func() { close(release) }) // the backend answers, late
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_ = h.Shutdown(ctx)
		err := w.Shutdown(ctx)
		if took := time.Since(start); took != 100*time.Millisecond {
			t.Errorf("Shutdown returned after %v, want 100ms (its context)", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(fmt.Sprint(err), "1 queued jobs claimed and not settled") {
			t.Errorf("Shutdown = %v, want deadline exceeded with 1 job left", err)
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 1, Pending: 1}) {
			t.Errorf("stats at the deadline %+v, want the job pending", st)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: 1, Sent: 1}) {
			t.Errorf("once the backend returned: %+v, want it sent", st)
		}
	})
}

// Jobs deferred before Start wait in the queue, and go out once the
// Worker is started.
func TestDeferBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		w, err := queue.New(queue.Options{MinDelay: time.Second, MaxDelay: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		h, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithLater(w))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = h.Shutdown(context.Background()); _ = w.Shutdown(context.Background()) }()
		if rec := post(t, h, `{"session":"demo","chatId":"15551234567","messageIds":["B1"],"async":true}`); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d %s", rec.Code, rec.Body)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 0 {
			t.Fatalf("%d receipts sent before Start", n)
		}
		w.Start(h)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 1 {
			t.Errorf("%d receipts sent once started, want 1", n)
		}
	})
}

// A job cut short by Shutdown's deadline counts the receipts it had
// already failed, and the queue depth reported ends at 0.
func TestCountsAfterShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := session.NewMemoryRegistry()
		reg.Set("demo", session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			<-ctx.Done() // WhatsApp never answers: the first send fails when the deadline passes
			return session.Result{}, errors.New("boom")
		}))
		var (
			mu    sync.Mutex
			depth []int
		)
		queueDepth := func(_ context.Context, d int) { mu.Lock(); depth = append(depth, d); mu.Unlock() }
		h, w := start(t, reg, queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour, QueueDepth: queueDepth})
		rec := post(t, h, `{"session":"demo","chatId":"`+group+`","messageIds":["false_`+group+`_A1_15557654321@c.us","false_`+group+`_A2_15550001111@c.us"],"async":true}`)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status %d %s", rec.Code, rec.Body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = h.Shutdown(ctx)
		if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v, want the deadline", err)
		}
		synctest.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: 2, Failed: 2}) {
			t.Errorf("stats %+v, want {Accepted:2 Failed:2}", st)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(depth) == 0 || depth[len(depth)-1] != 0 {
			t.Errorf("queue depths reported %v, want the last to be 0", depth)
		}
	})
}

// statsRecorder is a Memory queue that records the sessions each Stats
// call names.
type statsRecorder struct {
	*queue.Memory
	mu    sync.Mutex
	asked [][]string
}

func (q *statsRecorder) Stats(ctx context.Context, sessions ...string) ([]queue.SessionStats, error) {
	q.mu.Lock()
	q.asked = append(q.asked, sessions)
	q.mu.Unlock()
	return q.Memory.Stats(ctx, sessions...)
}

// A status request reads its own session's queue counts, not every
// session's: its cost grows with that session's jobs, not the queue's.
func TestQueueStatusReadsOneSession(t *testing.T) {
	q := &statsRecorder{Memory: queue.NewMemory()}
	now := time.Now()
	for _, name := range []string{"demo", "other"} {
		j := &queue.Job{Session: name, Chat: user, Accepted: now, Due: now.Add(time.Hour),
			Receipts: []session.Receipt{{Chat: user, MessageIDs: []string{"M1", "M2"}}}}
		if err := q.Enqueue(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := start(t, sessiontest.New().Registry("demo", "other"), queue.Options{Queue: q})
	r := httptest.NewRequest(http.MethodGet, seenhandler.PathWawpStatus+"?session=demo", nil)
	rec := httptest.NewRecorder()
	serveStatus(h, rec, r)
	if st := decode[statusAnswer](t, rec).Queue; st == nil || st.Pending != 1 {
		t.Errorf("status queue %+v, want demo's 1 pending job", st)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !reflect.DeepEqual(q.asked, [][]string{{"demo"}}) {
		t.Errorf("Stats was asked for %q, want demo's counts alone", q.asked)
	}
}
