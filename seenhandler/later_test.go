package seenhandler_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// newAsyncHandler is newHandler whose Later is a queue.Worker of o,
// started; when the test ends the handler is shut down, then the worker,
// as the queue package says.
func newAsyncHandler(t *testing.T, o queue.Options, opts ...seenhandler.Option) (*seenhandler.Handler, *sessiontest.Fake, *queue.Worker) {
	t.Helper()
	w, err := queue.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h, fake := newHandler(t, append([]seenhandler.Option{seenhandler.WithLater(w)}, opts...)...)
	w.Start(h)
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = w.Shutdown(context.Background())
	})
	return h, fake, w
}

// totals is the sum of a Worker's counts over its sessions.
type totals struct{ Accepted, Sent, Failed, Pending int64 }

func totalsOf(t *testing.T, w *queue.Worker) totals {
	t.Helper()
	sessions, err := w.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var st totals
	for _, s := range sessions {
		st.Sent += s.Sent
		st.Failed += s.Failed
		st.Pending += s.Pending
	}
	st.Accepted = st.Sent + st.Failed + st.Pending
	return st
}

// An asynchronous request is answered 202 with the receipts planned (the
// account's own skipped), sends nothing before its delay (drawn between
// MinDelay and MaxDelay) and everything by its end, then marks the chat
// read; "async": false overrides, and a request with nothing to send is
// not queued.
func TestAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fake, w := newAsyncHandler(t, queue.Options{MinDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond})
		rec := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"` + group + `","messageIds":["false_` + group + `_A1_15557654321@c.us","false_` + group + `_A2_15550001111@c.us","true_` + group + `_A3"],"async":true}`}.do(t, h)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status %d, body %s", rec.Code, rec.Body)
		}
		got := decode[seenhandler.Response](t, rec)
		want := seenhandler.Response{Success: true, Accepted: true, Session: "demo", ChatID: group,
			Receipts: []seenhandler.SentReceipt{
				{ChatID: group, Sender: sender, MessageIDs: []string{"A1"}, Type: "read"},
				{ChatID: group, Sender: sender2, MessageIDs: []string{"A2"}, Type: "read"},
			},
			Skipped: []seenhandler.Skipped{{MessageID: "true_" + group + "_A3", Reason: "from_me"}}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
		time.Sleep(200*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 0 {
			t.Errorf("sent %d receipts before the least delay", n)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 2 {
			t.Errorf("%d receipts sent by the greatest delay, want 2", n)
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 2, Sent: 2}) {
			t.Errorf("stats %+v", st)
		}
		if len(fake.ChatReads()) != 1 {
			t.Errorf("chat reads %+v, want 1 after the async receipts", fake.ChatReads())
		}

		// "async": false overrides; everything skipped is not queued.
		if rec := (request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["S1"],"async":false}`}).do(t, h); rec.Code != http.StatusOK {
			t.Errorf("async false: %d", rec.Code)
		}
		if rec := (request{path: seenhandler.PathWawp, body: `{"session":"demo","messageIds":["true_15551234567@c.us_OWN"],"async":true}`}).do(t, h); rec.Code != http.StatusOK {
			t.Errorf("nothing to send: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestAsyncByDefaultAndQueueFull(t *testing.T) {
	h, fake, w := newAsyncHandler(t, queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour, QueueSize: 3}, seenhandler.WithAsyncByDefault())
	body := func(ids string) string { return `{"session":"demo","chatId":"15551234567","messageIds":[` + ids + `]}` }
	for _, tc := range []struct {
		ids    string
		status int
		code   seenhandler.Code
	}{
		{`"A1"`, 202, ""},
		{`"A2"`, 202, ""},
		// Receipts, not ids, fill the queue: one per sender. One more fits,
		// a second request does not.
		{`"A3","A4"`, 202, ""},
		{`"A5"`, 503, "queue_full"},
	} {
		rec := request{path: seenhandler.PathWawp, body: body(tc.ids)}.do(t, h)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, body %s", tc.ids, rec.Code, rec.Body)
		}
		if tc.code != "" {
			if got := decode[seenhandler.ErrorResponse](t, rec); got.Error.Code != tc.code || rec.Header().Get("Retry-After") == "" ||
				got.Error.Message != "too many receipts wait to be sent; nothing of this request was queued; retry later" {
				t.Errorf("%s: %+v, Retry-After %q", tc.ids, got, rec.Header().Get("Retry-After"))
			}
		}
	}
	if st := totalsOf(t, w); st != (totals{Accepted: 3, Pending: 3}) {
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
	h, _, w := newAsyncHandler(t, queue.Options{MinDelay: time.Hour, MaxDelay: time.Hour,
		QueueSize: 10, SessionQueueSize: 3, TokenQueueSize: 4}, seenhandler.WithAsyncByDefault())
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
		rec := request{body: `{"session":"` + tc.session + `","chatId":"15551234567","messageIds":["` + tc.id + `"]}`,
			header: map[string]string{"Authorization": "Bearer " + tc.token}}.do(t, h)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, body %s", tc.id, rec.Code, rec.Body)
			continue
		}
		if tc.bound != "" {
			got := decode[seenhandler.ErrorResponse](t, rec)
			if got.Error.Code != seenhandler.CodeQueueFull || !strings.Contains(got.Error.Message, "for this "+tc.bound) {
				t.Errorf("%s: %+v, want queue_full for this %s", tc.id, got.Error, tc.bound)
			}
		}
	}
	if st := totalsOf(t, w); st != (totals{Accepted: 5, Pending: 5}) {
		t.Errorf("stats %+v", st)
	}
}

// An asynchronous request for a session that is down is accepted into the
// queue with a 202 that says so; its receipts are retried with backoff and
// go out once the session is back; the status endpoint shows the queue
// meanwhile.
func TestAsyncSessionDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fake, w := newAsyncHandler(t, queue.Options{MinDelay: time.Second, MaxDelay: time.Second})
		back := fake.Inject(sessiontest.Fault{Session: "demo", Err: session.ErrNotConnected})
		start := time.Now()
		rec := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["D1"],"async":true}`}.do(t, h)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status %d %s", rec.Code, rec.Body)
		}
		got := decode[seenhandler.Response](t, rec)
		if got.Queued == nil || got.Queued.Reason != seenhandler.CodeSessionNotConnected ||
			!got.Queued.RetryUntil.Equal(start.Add(queue.DefaultRetryFor)) {
			t.Errorf("queued %+v, want session_not_connected until %v", got.Queued, start.Add(queue.DefaultRetryFor))
		}

		time.Sleep(time.Second) // due: the first attempt fails, the next is 2 s later
		synctest.Wait()
		if n := len(fake.Calls()); n != 1 || len(fake.Receipts()) != 0 {
			t.Fatalf("%d calls, %d receipts after the delay; want one failed attempt", n, len(fake.Receipts()))
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 1, Pending: 1}) {
			t.Errorf("while down: %+v", st)
		}
		time.Sleep(4 * time.Second)
		rec = request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?session=demo"}.do(t, http.HandlerFunc(h.ServeStatus))
		status := decode[seenhandler.StatusResponse](t, rec)
		if q := status.Queue; q == nil || q.Pending != 1 || q.OldestPendingSeconds != 5 {
			t.Errorf("status queue %+v, want 1 pending for 5 s", q)
		}

		back() // the session reconnects: the next retry (at 7 s) sends it
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if rs := fake.Receipts(); len(rs) != 1 || rs[0].MessageIDs[0] != "D1" {
			t.Errorf("receipts %+v once the session is back, want D1", rs)
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 1, Sent: 1}) {
			t.Errorf("once back: %+v", st)
		}
		rec = request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?session=demo"}.do(t, http.HandlerFunc(h.ServeStatus))
		if q := decode[seenhandler.StatusResponse](t, rec).Queue; q == nil || *q != (seenhandler.QueueStatus{Sent: 1}) {
			t.Errorf("status queue %+v, want 1 sent", q)
		}
	})
}

// WithAsyncByDefault without a Later is a configuration error, found at
// construction.
func TestAsyncByDefaultNeedsLater(t *testing.T) {
	if _, err := seenhandler.New(session.NewMemoryRegistry(), seenhandler.WithNoAuth(), seenhandler.WithAsyncByDefault()); err == nil {
		t.Error("New accepted WithAsyncByDefault without WithLater")
	}
	if _, err := seenhandler.New(session.NewMemoryRegistry(), seenhandler.WithNoAuth(), seenhandler.WithLater(nil)); err == nil {
		t.Error("New accepted WithLater(nil)")
	}
}

// laterFunc is a Later whose Defer is f and whose QueueStatus records the
// sessions it is asked about.
type laterFunc struct {
	deferFunc func(context.Context, seenhandler.Deferred) (time.Time, error)
	asked     chan string
}

func (l laterFunc) Defer(ctx context.Context, d seenhandler.Deferred) (time.Time, error) {
	return l.deferFunc(ctx, d)
}

func (l laterFunc) QueueStatus(_ context.Context, name string) (seenhandler.QueueStatus, error) {
	if l.asked != nil {
		l.asked <- name
	}
	return seenhandler.QueueStatus{Pending: 1}, nil
}

// What a request defers reaches the Later whole: its session, chat,
// receipts, typing and token digest (never the token); a Later's refusal
// other than a full queue's or storage's is a 500 whose text stays in the
// log, and a 503 shutting_down once the handler is shutting down (a
// Worker refuses after its Shutdown, which comes after the handler's).
func TestLaterGetsTheRequest(t *testing.T) {
	var (
		got      seenhandler.Deferred
		refuse   bool
		shutdown func() // the handler shuts down while the Later refuses
	)
	l := laterFunc{deferFunc: func(_ context.Context, d seenhandler.Deferred) (time.Time, error) {
		got = d
		if shutdown != nil {
			shutdown()
		}
		if refuse {
			return time.Time{}, fmt.Errorf("the queue's secret trouble")
		}
		return time.Unix(1e9, 0), nil
	}}
	h, _ := newHandler(t, seenhandler.WithLater(l))
	shutdownNow := func() { _ = h.Shutdown(context.Background()) }
	rec := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["T1","T2"],"typing":true,"async":true}`}.do(t, h)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	if got.Session != "demo" || got.Chat != user || len(got.Receipts) != 1 || strings.Join(got.Receipts[0].MessageIDs, ",") != "T1,T2" ||
		!got.Typing || got.Token == "" || got.Token == token || got.Auto || !got.Due.IsZero() {
		t.Errorf("deferred %+v", got)
	}
	refuse = true
	rec = request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["T3"],"async":true}`}.do(t, h)
	if e := decode[seenhandler.ErrorResponse](t, rec); rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("a refusal: %d %+v", rec.Code, e)
	}
	shutdown = shutdownNow
	rec = request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["T4"],"async":true}`}.do(t, h)
	if e := decode[seenhandler.ErrorResponse](t, rec); rec.Code != http.StatusServiceUnavailable || e.Error.Code != seenhandler.CodeShuttingDown {
		t.Errorf("after Shutdown: %d %+v", rec.Code, e)
	}
}

// syncBuffer is a bytes.Buffer safe for a goroutine to write while the
// test reads it.
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
