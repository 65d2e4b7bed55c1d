package seenhandler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func TestAsync(t *testing.T) {
	synctest.Test(t, testAsync)
}

func testAsync(t *testing.T) {
	var draws []float64
	var mu sync.Mutex
	rnd := func() float64 { mu.Lock(); defer mu.Unlock(); draws = append(draws, 0.5); return 0.5 }
	h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond, Rand: rnd}))

	w := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"` + group + `","messageIds":["false_` + group + `_A1_15557654321@c.us","false_` + group + `_A2_15550001111@c.us","true_` + group + `_A3"],"async":true}`}.do(t, h)
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	got := decode[seenhandler.Response](t, w)
	want := seenhandler.Response{Success: true, Accepted: true, Session: "demo", ChatID: group,
		Receipts: []seenhandler.SentReceipt{
			{ChatID: group, Sender: sender, MessageIDs: []string{"A1"}, Type: "read"},
			{ChatID: group, Sender: sender2, MessageIDs: []string{"A2"}, Type: "read"},
		},
		Skipped: []seenhandler.Skipped{{MessageID: "true_" + group + "_A3", Reason: "from_me"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if n := len(fake.Receipts()); n != 0 {
		t.Errorf("sent %d receipts before the delay", n)
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
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 2, Sent: 2}) {
		t.Errorf("stats %+v", st)
	}
	if len(fake.ChatReads()) != 1 {
		t.Errorf("chat reads %+v, want 1 after the async receipts", fake.ChatReads())
	}
	mu.Lock()
	if len(draws) != 1 {
		t.Errorf("rand drawn %d times, want once per request", len(draws))
	}
	mu.Unlock()

	// "async": false overrides; everything skipped is not queued.
	if w := (request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["S1"],"async":false}`}).do(t, h); w.Code != http.StatusOK {
		t.Errorf("async false: %d", w.Code)
	}
	if w := (request{path: seenhandler.PathWawp, body: `{"session":"demo","messageIds":["true_15551234567@c.us_OWN"],"async":true}`}).do(t, h); w.Code != http.StatusOK {
		t.Errorf("nothing to send: %d %s", w.Code, w.Body)
	}
}

func TestAsyncByDefaultAndQueueFull(t *testing.T) {
	h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{Default: true, MinDelay: time.Hour, MaxDelay: time.Hour, QueueSize: 3}))
	body := func(ids string) string { return `{"session":"demo","chatId":"15551234567","messageIds":[` + ids + `]}` }
	for _, tc := range []struct {
		ids    string
		status int
		code   string
	}{
		{`"A1"`, 202, ""},
		{`"A2"`, 202, ""},
		// Receipts, not ids, fill the queue: one per sender. One more fits,
		// a second request does not.
		{`"A3","A4"`, 202, ""},
		{`"A5"`, 503, "queue_full"},
	} {
		w := request{path: seenhandler.PathWawp, body: body(tc.ids)}.do(t, h)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, body %s", tc.ids, w.Code, w.Body)
		}
		if tc.code != "" {
			if got := decode[seenhandler.ErrorResponse](t, w); got.Error.Code != tc.code || w.Header().Get("Retry-After") == "" {
				t.Errorf("%s: %+v, Retry-After %q", tc.ids, got, w.Header().Get("Retry-After"))
			}
		}
	}
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 3, Pending: 3}) {
		t.Errorf("stats %+v", st)
	}
	if n := len(fake.Receipts()); n != 0 {
		t.Errorf("%d sent before the delay", n)
	}
}

// The queue's receipts are bounded per session and per token too: a
// request that would pass either bound gets 503 queue_full saying which,
// and another session's or token's request still fits.
func TestAsyncBoundsPerSessionAndToken(t *testing.T) {
	h, _ := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{Default: true, MinDelay: time.Hour, MaxDelay: time.Hour,
		QueueSize: 10, SessionQueueSize: 3, TokenQueueSize: 4}))
	for _, tc := range []struct {
		token, session, id string
		status             int
		bound              string // in the message of a 503
	}{
		{token, "demo", "A1", 201, ""},
		{token, "demo", "A2", 201, ""},
		{token, "other", "B1", 201, ""},
		{token, "other", "B2", 201, ""},
		{token, "other", "B3", 503, "token"}, // the token's fifth
		{demoToken, "demo", "A3", 201, ""},   // another token: the session's third
		{demoToken, "demo", "A4", 503, "session"},
	} {
		w := request{body: `{"session":"` + tc.session + `","chatId":"15551234567","messageIds":["` + tc.id + `"]}`,
			header: map[string]string{"Authorization": "Bearer " + tc.token}}.do(t, h)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, body %s", tc.id, w.Code, w.Body)
			continue
		}
		if tc.bound != "" {
			got := decode[seenhandler.ErrorResponse](t, w)
			if got.Error.Code != seenhandler.CodeQueueFull || !strings.Contains(got.Error.Message, "for this "+tc.bound) {
				t.Errorf("%s: %+v, want queue_full for this %s", tc.id, got.Error, tc.bound)
			}
		}
	}
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 5, Pending: 5}) {
		t.Errorf("stats %+v", st)
	}
}

// A job claimed for a session that then leaves this process (Local says
// so no more: another node owns it now) is given back unsent when its turn
// comes, for the session's new owner to send.
func TestAsyncLaneGivesBackMovedSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var local atomic.Bool
		local.Store(true)
		h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{Default: true, MinDelay: time.Millisecond, MaxDelay: time.Millisecond,
			Pace: time.Minute, Local: func(string) bool { return local.Load() }}))
		for _, id := range []string{"L1", "L2", "L3"} {
			if w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["` + id + `"]}`}).do(t, h); w.Code != http.StatusCreated {
				t.Fatalf("%s: %d %s", id, w.Code, w.Body)
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
		if st := h.Stats(); st != (seenhandler.Stats{Accepted: 3, Sent: 1, Pending: 2}) {
			t.Errorf("stats %+v, want 2 pending, given back", st)
		}
		local.Store(true) // back: its jobs are claimed again
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if st := h.Stats(); st != (seenhandler.Stats{Accepted: 3, Sent: 3}) {
			t.Errorf("stats %+v once the session is back, want 3 sent", st)
		}
	})
}

// Shutdown sends every queued receipt now, paced (one job of a session
// every AsyncOptions.Pace: no burst), nothing is lost, and the handler
// refuses new work.
func TestShutdownFlushesAsync(t *testing.T) {
	synctest.Test(t, testShutdownFlushesAsync)
}

func testShutdownFlushesAsync(t *testing.T) {
	const n = 50
	h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: time.Hour, MaxDelay: time.Hour}))
	fake.Inject(sessiontest.Fault{Chat: "15550000007@s.whatsapp.net", Err: session.ErrNotConnected})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chat := "15551234567"
			if i%10 == 7 {
				chat = "15550000007" // the backend fails these
			}
			w := request{path: seenhandler.PathWawp, body: fmt.Sprintf(`{"session":"demo","chatId":"%s","messageIds":["M%d"],"async":true}`, chat, i)}.do(t, h)
			if w.Code != http.StatusAccepted {
				t.Errorf("request %d: %d %s", i, w.Code, w.Body)
			}
		}()
	}
	wg.Wait()
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: n, Pending: n}) {
		t.Fatalf("before shutdown: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	st, err := h.Shutdown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 50 jobs of one session, 100 ms apart: the last starts after 4.9 s,
	// and the lane waits its pace once more before it ends.
	if took := time.Since(start); took != n*seenhandler.DefaultAsyncPace {
		t.Errorf("the flush took %v, want %v (paced)", took, n*seenhandler.DefaultAsyncPace)
	}
	failed := int64(n / 10)
	if want := (seenhandler.Stats{Accepted: n, Sent: n - failed, Failed: failed}); st != want {
		t.Errorf("after shutdown: %+v, want %+v", st, want)
	}
	if got := int64(len(fake.Receipts())); got != n-failed {
		t.Errorf("the fake got %d receipts, want %d", got, n-failed)
	}
	if got := int64(len(fake.Calls())); got != n {
		t.Errorf("the fake saw %d calls, want every one of the %d accepted", got, n)
	}
	w := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["LATE"]}`}.do(t, h)
	if got := decode[seenhandler.ErrorResponse](t, w); w.Code != http.StatusServiceUnavailable || got.Error.Code != "shutting_down" {
		t.Errorf("after shutdown: %d %+v", w.Code, got)
	}
}

// A Shutdown whose deadline passes while the backend hangs reports the
// receipts it could not send as failed, and the counts still add up.
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, testShutdownDeadline)
}

func testShutdownDeadline(t *testing.T) {
	h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: time.Hour, MaxDelay: time.Hour}),
		seenhandler.WithTimeout(time.Hour))
	fake.Inject(sessiontest.Fault{Latency: time.Hour})
	for i := range 3 {
		request{path: seenhandler.PathWawp, body: fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["H%d"],"async":true}`, i)}.do(t, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st, err := h.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	if st.Accepted != st.Sent+st.Failed+st.Pending {
		t.Errorf("stats do not add up: %+v", st)
	}
	synctest.Wait() // the flush goes on after the deadline: the rest fail at once
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 3, Failed: 3}) {
		t.Errorf("once the flush ends: %+v, want {Accepted:3 Failed:3}", st)
	}
}

func TestWithAsyncRejectsBadOptions(t *testing.T) {
	for _, o := range []seenhandler.AsyncOptions{
		{MinDelay: 2 * time.Second, MaxDelay: time.Second},
		{MinDelay: -time.Second, MaxDelay: time.Second},
		{QueueSize: -1},
		{SessionQueueSize: -1},
		{TokenQueueSize: -1},
	} {
		if _, err := seenhandler.New(session.NewMemoryRegistry(), seenhandler.WithNoAuth(), seenhandler.WithAsync(o)); err == nil {
			t.Errorf("WithAsync(%+v) accepted", o)
		}
	}
}

// An asynchronous request for a session that is down is
// accepted into the queue with a 202 that says so; its receipts are
// retried with backoff and go out once the session is back; the status
// endpoint shows the queue meanwhile.
func TestAsyncSessionDown(t *testing.T) {
	synctest.Test(t, testAsyncSessionDown)
}

func testAsyncSessionDown(t *testing.T) {
	h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: time.Second, MaxDelay: time.Second}))
	back := fake.Inject(sessiontest.Fault{Session: "demo", Err: session.ErrNotConnected})
	start := time.Now()
	w := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["D1"],"async":true}`}.do(t, h)
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	got := decode[seenhandler.Response](t, w)
	if got.Queued == nil || got.Queued.Reason != seenhandler.CodeSessionNotConnected ||
		!got.Queued.RetryUntil.Equal(start.Add(seenhandler.DefaultAsyncRetryFor)) {
		t.Errorf("queued %+v, want session_not_connected until %v", got.Queued, start.Add(seenhandler.DefaultAsyncRetryFor))
	}

	time.Sleep(time.Second) // due: the first attempt fails, the next is 2 s later
	synctest.Wait()
	if n := len(fake.Calls()); n != 1 || len(fake.Receipts()) != 0 {
		t.Fatalf("%d calls, %d receipts after the delay; want one failed attempt", n, len(fake.Receipts()))
	}
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 1, Pending: 1}) {
		t.Errorf("while down: %+v", st)
	}
	time.Sleep(4 * time.Second)
	w = request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?session=demo"}.do(t, http.HandlerFunc(h.ServeStatus))
	status := decode[seenhandler.StatusResponse](t, w)
	if q := status.Queue; q == nil || q.Pending != 1 || q.OldestPendingSeconds != 5 {
		t.Errorf("status queue %+v, want 1 pending for 5 s", q)
	}

	back() // the session reconnects: the next retry (at 7 s) sends it
	time.Sleep(3 * time.Second)
	synctest.Wait()
	if rs := fake.Receipts(); len(rs) != 1 || rs[0].MessageIDs[0] != "D1" {
		t.Errorf("receipts %+v once the session is back, want D1", rs)
	}
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 1, Sent: 1}) {
		t.Errorf("once back: %+v", st)
	}
	w = request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?session=demo"}.do(t, http.HandlerFunc(h.ServeStatus))
	if q := decode[seenhandler.StatusResponse](t, w).Queue; q == nil || *q != (seenhandler.QueueStatus{Sent: 1}) {
		t.Errorf("status queue %+v, want 1 sent", q)
	}
}

// A session that stays down past RetryFor: its receipts are counted
// failed with the reason, never silently dropped.
func TestAsyncRetryDeadline(t *testing.T) {
	synctest.Test(t, testAsyncRetryDeadline)
}

func testAsyncRetryDeadline(t *testing.T) {
	var logs syncBuffer
	h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: time.Second, MaxDelay: time.Second, RetryFor: time.Minute}),
		seenhandler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	fake.Inject(sessiontest.Fault{Session: "demo", Err: session.ErrNotLoggedIn})
	w := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["D1"],"async":true}`}.do(t, h)
	if got := decode[seenhandler.Response](t, w); w.Code != http.StatusAccepted || got.Queued == nil || got.Queued.Reason != seenhandler.CodeSessionNotLoggedIn {
		t.Fatalf("%d %+v", w.Code, got)
	}
	time.Sleep(59 * time.Second)
	synctest.Wait()
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 1, Pending: 1}) {
		t.Errorf("before the deadline: %+v", st)
	}
	time.Sleep(time.Second)
	synctest.Wait()
	if st := h.Stats(); st != (seenhandler.Stats{Accepted: 1, Failed: 1}) {
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
}

// syncBuffer is a bytes.Buffer safe for the worker to write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// panickySettle is a Queue whose Settle panics.
type panickySettle struct{ *seenhandler.MemoryQueue }

func (panickySettle) Settle(context.Context, int64, seenhandler.Outcome) error {
	panic("settle exploded")
}

// A Queue whose Settle panics does not take the worker's slots: each
// panic is logged and its job's slot given back, and the worker keeps
// claiming, past the 64 jobs it holds at once.
func TestQueueSettlePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		h, fake := newHandler(t, seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: time.Second, MaxDelay: time.Second,
			Queue: panickySettle{seenhandler.NewMemoryQueue()}}),
			seenhandler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		const n = 70
		for i := range n {
			w := request{path: seenhandler.PathWawp, body: fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["P%d"],"async":true}`, i)}.do(t, h)
			if w.Code != http.StatusAccepted {
				t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
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
		h, err := seenhandler.New(reg, seenhandler.WithNoAuth(),
			seenhandler.WithAsync(seenhandler.AsyncOptions{MinDelay: time.Hour, MaxDelay: time.Hour}))
		if err != nil {
			t.Fatal(err)
		}
		if w := (request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["N1"],"async":true}`}).do(t, h); w.Code != http.StatusAccepted {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		time.AfterFunc(2*time.Second, func() { close(release) }) // the backend answers, late
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		st, err := h.Shutdown(ctx)
		if took := time.Since(start); took != 100*time.Millisecond {
			t.Errorf("Shutdown returned after %v, want 100ms (its context)", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(fmt.Sprint(err), "1 queued jobs claimed and not settled") {
			t.Errorf("Shutdown = %v, want deadline exceeded with 1 job left", err)
		}
		if st != (seenhandler.Stats{Accepted: 1, Pending: 1}) {
			t.Errorf("stats at the deadline %+v, want the job pending", st)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if st := h.Stats(); st != (seenhandler.Stats{Accepted: 1, Sent: 1}) {
			t.Errorf("once the backend returned: %+v, want it sent", st)
		}
	})
}
