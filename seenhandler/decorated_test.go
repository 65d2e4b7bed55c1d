package seenhandler_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// decorated returns a handler over fake's "demo" and "other" sessions
// decorated by o, and the decorated registry (closed at the test's end).
func decorated(t *testing.T, o session.DecorateOptions) (*seenhandler.Handler, *session.Decorated, *sessiontest.Fake) {
	t.Helper()
	fake := sessiontest.New()
	reg := session.Decorate(fake.Registry("demo", "other"), o)
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	return h, reg, fake
}

// Receipts of requests arriving while a call for their chat is in flight
// share one backend call; each request is answered with its own ids.
func TestCoalescingAcrossRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, fake := decorated(t, session.DecorateOptions{Coalesce: &session.CoalesceOptions{}})
		fake.Inject(sessiontest.Fault{Call: 1, Latency: 50 * time.Millisecond})
		const n = 8
		var wg sync.WaitGroup
		wg.Go(func() { // in flight for 50 ms: the others gather behind it
			if w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["HOLD"]}`}.do(t, h)); w.Code != http.StatusCreated {
				t.Errorf("the first request: %d %s", w.Code, w.Body)
			}
		})
		synctest.Wait()
		for i := range n {
			wg.Go(func() {
				w := request{body: fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["C%d"]}`, i)}.do(t, h)
				got := decode[seenhandler.Response](t, w)
				if w.Code != http.StatusCreated || len(got.Receipts) != 1 || fmt.Sprint(got.Receipts[0].MessageIDs) != fmt.Sprintf("[C%d]", i) {
					t.Errorf("request %d: %d %+v", i, w.Code, got)
				}
			})
		}
		wg.Wait()
		calls := fake.Calls()
		if len(calls) != 2 || len(calls[1].Receipt.MessageIDs) != n {
			t.Errorf("backend calls %+v; want the first request's, then 1 call for the %d others", calls, n)
		}
	})
}

func TestDedupAcrossRequests(t *testing.T) {
	h, _, fake := decorated(t, session.DecorateOptions{Dedup: &session.DedupOptions{}})
	body := `{"session":"demo","chatId":"15551234567","messageIds":["D1","D2"]}`
	if w := (request{body: body}).do(t, h); w.Code != http.StatusCreated {
		t.Fatalf("first: %d", w.Code)
	}
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["D2","D3"]}`}.do(t, h)
	got := decode[seenhandler.Response](t, w)
	if len(got.Receipts) != 1 || fmt.Sprint(got.Receipts[0].MessageIDs) != "[D3]" ||
		len(got.Skipped) != 1 || got.Skipped[0] != (seenhandler.Skipped{MessageID: "D2", Reason: "duplicate"}) {
		t.Errorf("second: %+v", got)
	}
	w = request{body: body}.do(t, h)
	if got := decode[seenhandler.Response](t, w); got.Acknowledged || len(got.Skipped) != 2 {
		t.Errorf("third (all duplicates): %+v", got)
	}
	if n := len(fake.Calls()); n != 2 {
		t.Errorf("backend called %d times, want 2", n)
	}
	// The other session has its own memory; played is not read.
	if got := decode[seenhandler.Response](t, request{body: `{"session":"other","chatId":"15551234567","messageIds":["D1"]}`}.do(t, h)); !got.Acknowledged {
		t.Errorf("other session: %+v", got)
	}
	if got := decode[seenhandler.Response](t, request{body: `{"session":"demo","chatId":"15551234567","messageIds":["D1"],"type":"played"}`}.do(t, h)); !got.Acknowledged {
		t.Errorf("played after read: %+v", got)
	}
	// The fake's optional interfaces are still found through the decorators.
	fake.AddMessage("demo", session.Message{Chat: "15551234567@s.whatsapp.net", ID: "MINE", FromMe: true})
	if got := decode[seenhandler.Response](t, request{body: `{"session":"demo","chatId":"15551234567","messageIds":["MINE"]}`}.do(t, h)); len(got.Skipped) != 1 || got.Skipped[0].Reason != "from_me" {
		t.Errorf("resolver through decorators: %+v", got)
	}
}

// Closing the registry during the handler's Shutdown flushes a batch
// waiting behind a long call in flight: the waiting request is answered
// 201 at once.
func TestRegistryCloseFlushesCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, reg, fake := decorated(t, session.DecorateOptions{Coalesce: &session.CoalesceOptions{}})
		fake.Inject(sessiontest.Fault{Call: 1, Latency: 5 * time.Second})
		go func() { request{body: `{"session":"demo","chatId":"15551234567","messageIds":["HOLD"]}`}.do(t, h) }()
		synctest.Wait() // in flight for 5 s
		done := make(chan int, 1)
		go func() {
			done <- request{body: `{"session":"demo","chatId":"15551234567","messageIds":["W1"]}`}.do(t, h).Code
		}()
		synctest.Wait() // the request waits in its batch
		if len(fake.Receipts()) != 0 || len(done) != 0 {
			t.Fatal("the batch went out while the call ahead of it was in flight")
		}
		ctx := context.Background()
		start := time.Now()
		shut := make(chan error, 1)
		go func() { shut <- h.Shutdown(ctx) }()
		closed := make(chan error, 1)
		go func() { closed <- reg.Close(ctx) }()
		synctest.Wait()
		select {
		case code := <-done:
			if code != http.StatusCreated || time.Since(start) != 0 {
				t.Errorf("status %d after %v", code, time.Since(start))
			}
		default:
			t.Fatal("the request still waits after Close")
		}
		if err := <-shut; err != nil {
			t.Fatal(err)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if n := len(fake.Receipts()); n != 2 {
			t.Errorf("%d receipts, want 2", n)
		}
	})
}

// A request's receipts (one per sender) are sent at the same time: the
// backend sees all three in flight at once (sent one after another, the
// barrier below would never open), and the answer lists those that went
// out before reporting the failure.
func TestSendersAtOnce(t *testing.T) {
	var (
		mu      sync.Mutex
		arrived int
		open    = make(chan struct{})
	)
	backend := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
		mu.Lock()
		if arrived++; arrived == 3 {
			close(open)
		}
		mu.Unlock()
		select {
		case <-open:
		case <-time.After(5 * time.Second):
			return session.Result{}, errors.New("the receipts were not sent at once")
		}
		if r.Sender == sender2 {
			return session.Result{}, session.ErrNotConnected
		}
		return session.Result{Type: r.Type}, nil
	})
	reg := session.NewMemoryRegistry()
	reg.Set("demo", backend)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	w := request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["false_` + group + `_A_15557654321@c.us","false_` + group + `_B_15550001111@c.us","false_` + group + `_C_15550002222@c.us"]}`}.do(t, h)
	got := decode[seenhandler.ErrorResponse](t, w)
	if w.Code != http.StatusServiceUnavailable || len(got.Receipts) != 2 ||
		got.Receipts[0].MessageIDs[0] != "A" || got.Receipts[1].MessageIDs[0] != "C" {
		t.Errorf("status %d, %+v", w.Code, got)
	}
}

// A request whose timeout ends while its receipt is in a group-commit
// batch still being sent is answered then, 202 with the receipt in
// inFlight — not a 504 that a client would retry, sending it twice — and
// the batch goes out all the same.
func TestGroupCommitDeadlineAnswersInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		slow := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			time.Sleep(time.Second) // WhatsApp is slow today
			return fake.Session("demo").SendReceipt(ctx, r)
		})
		inner := session.NewMemoryRegistry()
		inner.Set("demo", slow)
		reg := session.Decorate(inner, session.DecorateOptions{Coalesce: &session.CoalesceOptions{}})
		defer reg.Close(context.Background())
		h, err := seenhandler.New(reg, seenhandler.WithNoAuth(), seenhandler.WithTimeout(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		w := request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"],"typing":true}`}.do(t, h)
		if took := time.Since(start); took != 50*time.Millisecond {
			t.Errorf("answered after %v, want 50ms (the request's timeout)", took)
		}
		if w.Code != http.StatusAccepted {
			t.Fatalf("status %d, body %s", w.Code, w.Body)
		}
		got := decode[seenhandler.Response](t, w)
		want := seenhandler.Response{Success: true, Accepted: true, Session: "demo", ChatID: user,
			Receipts: []seenhandler.SentReceipt{}, Skipped: []seenhandler.Skipped{}, Typing: seenhandler.TypingUnavailable,
			InFlight: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"A1"}, Type: "read"}}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
		time.Sleep(time.Second)
		if rs := fake.Receipts(); len(rs) != 1 || rs[0].MessageIDs[0] != "A1" {
			t.Errorf("the backend got %+v, want A1 once", rs)
		}
	})
}
