package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/ratelimit"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// autoObserver records what auto-read reports: the requests and the
// views.
type autoObserver struct {
	mu    sync.Mutex
	done  []seenhandler.RequestInfo
	views []seenhandler.ViewInfo
}

// observer is the Observer that records into o.
func (o *autoObserver) observer() seenhandler.Observer {
	return seenhandler.Observer{RequestDone: o.requestDone, MessageViewed: o.messageViewed}
}

func (o *autoObserver) messageViewed(_ context.Context, v seenhandler.ViewInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.views = append(o.views, v)
}

func (o *autoObserver) got() []seenhandler.ViewInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seenhandler.ViewInfo(nil), o.views...)
}

func (o *autoObserver) requestDone(_ context.Context, r seenhandler.RequestInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, r)
}

func (o *autoObserver) requests() []seenhandler.RequestInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seenhandler.RequestInfo(nil), o.done...)
}

// Auto-read under a fake clock: an arrival is queued at once (202 to the
// Observer) and its receipt goes out at its Due, not a moment before,
// timestamped then; the time to view is observed with Auto. The account's
// own message is skipped; an arrival over the session's rate limit is
// dropped (rate_limited); a group arrival names its sender.
func TestAutoRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &sessiontest.Arrivals{}
		obs := &autoObserver{}
		lim, err := ratelimit.NewMemory(0.01, 3)
		if err != nil {
			t.Fatal(err)
		}
		_, w, fake := startFake(t, queue.Options{Arrivals: src, Observer: obs.observer()}, seenhandler.WithObserver(obs.observer()), seenhandler.WithRateLimit(lim, nil))
		fake.AddMessage("demo", session.Message{Chat: user, ID: "OWN", FromMe: true})
		now := time.Now()
		arrived := now.Add(-2 * time.Second)
		src.Emit("demo", session.Arrival{Chat: user, Sender: user, ID: "AR1", Timestamp: arrived, Due: now.Add(7 * time.Second)})
		src.Emit("demo", session.Arrival{Chat: group, Sender: sender, ID: "AR2", Timestamp: arrived, Due: now.Add(9 * time.Second)})
		src.Emit("demo", session.Arrival{Chat: user, Sender: user, ID: "OWN", Timestamp: arrived, Due: now.Add(time.Second)})
		src.Emit("demo", session.Arrival{Chat: user, Sender: user, ID: "AR3", Timestamp: arrived, Due: now.Add(time.Second)}) // over the limit
		synctest.Wait()
		var codes []int
		for _, r := range obs.requests() {
			if r.Endpoint != seenhandler.EndpointAutoRead || r.Session != "demo" {
				t.Errorf("request info %+v", r)
			}
			codes = append(codes, r.Status)
		}
		if want := []int{http.StatusAccepted, http.StatusAccepted, http.StatusOK, http.StatusTooManyRequests}; len(codes) != 4 ||
			codes[0] != want[0] || codes[1] != want[1] || codes[2] != want[2] || codes[3] != want[3] {
			t.Errorf("statuses %v, want %v", codes, want)
		}
		time.Sleep(7*time.Second - time.Millisecond)
		synctest.Wait()
		if n := len(fake.Receipts()); n != 0 {
			t.Fatalf("%d receipts before the delay", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		got := fake.Receipts()
		if len(got) != 1 || got[0].MessageIDs[0] != "AR1" || got[0].Chat != user || got[0].Sender != "" || !got[0].Timestamp.Equal(now.Add(7*time.Second)) {
			t.Fatalf("receipts at the delay %+v", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got = fake.Receipts()
		if len(got) != 2 || got[1].MessageIDs[0] != "AR2" || got[1].Sender != sender {
			t.Errorf("receipts %+v", got)
		}
		views := obs.got()
		if len(views) != 2 || views[0] != (seenhandler.ViewInfo{Session: "demo", Type: session.ReceiptRead, TimeToView: 9 * time.Second, Auto: true}) {
			t.Errorf("views %+v", views)
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 2, Sent: 2}) {
			t.Errorf("stats %+v", st)
		}
	})
}

// An arrival given to a handler without a Later is refused and reported:
// auto-read goes through the queue.
func TestReadLaterNeedsLater(t *testing.T) {
	fake := sessiontest.New()
	obs := &autoObserver{}
	h, err := seenhandler.New(fake.Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithObserver(obs.observer()))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ReadLater(context.Background(), "demo", session.Arrival{Chat: user, Sender: user, ID: "AR1", Timestamp: time.Now(), Due: time.Now()}); err == nil {
		t.Error("ReadLater without WithLater accepted the arrival")
	}
	if got := obs.requests(); len(got) != 1 || got[0].Endpoint != seenhandler.EndpointAutoRead || got[0].Status < 500 {
		t.Errorf("observed %+v, want one auto_read refusal", got)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("%d calls to the session", n)
	}
}

// Auto-read reads the chat when its arrival is due, as WhatsApp Web reads a
// chat when it is opened: every message of the chat still unread then —
// those that arrived meanwhile included, in arrival order, one receipt per
// sender — at the send time; a message the account read meanwhile is left
// out.
func TestAutoReadReadsTheChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &sessiontest.Arrivals{}
		_, _, fake := startFake(t, queue.Options{Arrivals: src})
		now := time.Now()
		fake.AddMessage("demo", session.Message{Chat: user, ID: "AR1", Sender: user, Timestamp: now})
		src.Emit("demo", session.Arrival{Chat: user, Sender: user, ID: "AR1", Timestamp: now, Due: now.Add(5 * time.Second)})
		synctest.Wait()
		for i, id := range []string{"AR2", "AR3", "AR4"} {
			fake.AddMessage("demo", session.Message{Chat: user, ID: id, Sender: user, Timestamp: now.Add(time.Duration(i+1) * time.Second),
				Read: id == "AR3"})
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got := fake.Receipts()
		if len(got) != 1 || strings.Join(got[0].MessageIDs, ",") != "AR1,AR2,AR4" || !got[0].Timestamp.Equal(now.Add(5*time.Second)) {
			t.Fatalf("receipts %+v, want one for AR1, AR2 and AR4 at the due time", got)
		}
	})
}

// Shutdown does not wait past its context for an arrival whose queueing is
// stuck in a registry deaf to its context.
func TestAutoReadShutdownReturnsWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		reg := session.RegistryFunc(func(context.Context, string) (session.Session, error) {
			<-release
			return nil, session.ErrSessionNotFound
		})
		src := &sessiontest.Arrivals{}
		h, w := start(t, reg, queue.Options{Arrivals: src})
		src.Emit("demo", session.Arrival{Chat: user, Sender: user, ID: "AR1", Timestamp: time.Now(), Due: time.Now()})
		synctest.Wait() // the arrival is in the Lookup
		time.AfterFunc(2*time.Second, func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_ = h.Shutdown(ctx)
		if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want deadline exceeded", err)
		}
		if took := time.Since(start); took != 100*time.Millisecond {
			t.Errorf("Shutdown returned after %v, want 100ms (its context)", took)
		}
		time.Sleep(2 * time.Second)
	})
}

// Arrivals still waiting to be queued when the handler shuts down are
// not dropped in silence: Shutdown logs how many, and the Observer gets
// each, shutting_down.
func TestAutoReadShutdownReportsBufferedArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		reg := session.RegistryFunc(func(context.Context, string) (session.Session, error) {
			<-release // the first arrival holds the goroutine; the others wait in the buffer
			return nil, session.ErrSessionNotFound
		})
		// A source whose stop does not stop it: a callback may race the
		// end of the subscription.
		var emit func(string, session.Arrival)
		src := arrivalSourceFunc(func(f func(string, session.Arrival)) func() { emit = f; return func() {} })
		obs := &autoObserver{}
		var logs syncBuffer
		h, w := start(t, reg, queue.Options{Arrivals: src, Observer: obs.observer(), Logger: slog.New(slog.NewTextHandler(&logs, nil))},
			seenhandler.WithObserver(obs.observer()))
		for _, id := range []string{"AR1", "AR2", "AR3", "AR4"} {
			emit("demo", session.Arrival{Chat: user, Sender: user, ID: id, Timestamp: time.Now(), Due: time.Now()})
			synctest.Wait()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = h.Shutdown(ctx)
		_ = w.Shutdown(ctx)
		if !strings.Contains(logs.String(), "auto-read: arrivals not queued: the handler shut down first") || !strings.Contains(logs.String(), "dropped=3") {
			t.Errorf("log:\n%s", logs.String())
		}
		close(release)
		synctest.Wait()
		emit("demo", session.Arrival{Chat: user, Sender: user, ID: "LATE", Timestamp: time.Now(), Due: time.Now()})
		var codes []seenhandler.Code
		for _, r := range obs.requests() {
			codes = append(codes, r.Code)
		}
		// The three waiting, the one under way (its Lookup's answer), the
		// late one.
		if want := []seenhandler.Code{"shutting_down", "shutting_down", "shutting_down", "session_not_found", "shutting_down"}; !slices.Equal(codes, want) {
			t.Errorf("observed %q, want %q: every arrival reported once", codes, want)
		}
	})
}

// lineCounter is a slog handler that counts the records it gets.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *lineCounter) WithGroup(string) slog.Handler            { return c }
func (c *lineCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, r.Message)
	return nil
}

func (c *lineCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, msg) {
			n++
		}
	}
	return n
}

// Strangers cannot starve the API through auto-read: arrivals spend a
// budget of their own, apart from the requests' (the session's limit, 2 a
// second, burst 20), so a flood of messages from strangers over its
// budget leaves the operator's own requests served; and the flood — more
// than the buffer holds, most over the budget — is logged in one line per
// reason, not one per arrival.
//
// Before: the arrivals spent the session's budget — the next request was a
// 429 rate_limited — and each dropped or refused arrival was a Warn line of
// its own (3,000 here).
func TestAutoReadHasItsOwnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &sessiontest.Arrivals{}
		lines := &lineCounter{}
		lim, err := ratelimit.NewMemory(2, 20)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := start(t, sessiontest.New().Registry("demo"), queue.Options{Arrivals: src, Logger: slog.New(lines)},
			seenhandler.WithRateLimit(lim, nil), seenhandler.WithLogger(slog.New(lines)))
		now := time.Now()
		for i := range 3000 {
			src.Emit("demo", session.Arrival{Chat: fmt.Sprintf("1555%07d@s.whatsapp.net", i), ID: fmt.Sprintf("3EB0FLOOD%04d", i),
				Timestamp: now, Due: now.Add(time.Hour)})
		}
		synctest.Wait()
		rec := post(t, h, `{"session":"demo","chatId":"15551234567","messageIds":["3EB0MINE"]}`)
		if rec.Code != http.StatusOK {
			t.Errorf("the operator's request after the flood: %d %s", rec.Code, rec.Body)
		}
		if n := lines.count("auto-read not queued"); n != 1 {
			t.Errorf("%d lines for the arrivals over the budget, want 1", n)
		}
		if n := lines.count("too many arrivals waiting"); n > 1 {
			t.Errorf("%d lines for the arrivals dropped on a full buffer, want at most 1", n)
		}
	})
}

// arrivalSourceFunc adapts a function to session.ArrivalSource.
type arrivalSourceFunc func(f func(session string, a session.Arrival)) (stop func())

// SubscribeArrivals calls s(f).
func (s arrivalSourceFunc) SubscribeArrivals(f func(session string, a session.Arrival)) (stop func()) {
	return s(f)
}
