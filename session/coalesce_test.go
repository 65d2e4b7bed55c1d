package session_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Addresses the decorator tests send to.
const (
	chatA = "15551234567@s.whatsapp.net"
	chatB = "15559876543@s.whatsapp.net"
	group = "120363012345678901@g.us"
	alice = "15557654321@s.whatsapp.net"
	bob   = "15557654322@s.whatsapp.net"
)

var ts0 = time.Unix(1767225600, 0)

// rcpt is a read receipt at ts0.
func rcpt(chat, sender string, ids ...string) session.Receipt {
	return session.Receipt{Chat: chat, Sender: sender, MessageIDs: ids, Type: session.ReceiptRead, Timestamp: ts0}
}

func played(r session.Receipt) session.Receipt { r.Type = session.ReceiptPlayed; return r }

func at(r session.Receipt, t time.Time) session.Receipt { r.Timestamp = t; return r }

// reportDups wraps s so that it reports the ids starting with "dup" as
// duplicates, as a Dedup would.
func reportDups(s session.Session) session.Session {
	return session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
		res, err := s.SendReceipt(ctx, r)
		if err == nil {
			for _, id := range r.MessageIDs {
				if strings.HasPrefix(id, "dup") {
					res.Duplicates = append(res.Duplicates, id)
				}
			}
		}
		return res, err
	})
}

func closeCoalescer(t testing.TB, c *session.Coalescer) {
	t.Helper()
	if err := c.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestCoalesceConformance(t *testing.T) {
	defer goleak.VerifyNone(t)
	for name, o := range map[string]session.CoalesceOptions{
		"Defaults": {}, "MaxBatch=2": {MaxBatch: 2},
	} {
		t.Run(name, func(t *testing.T) {
			sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
				fake := sessiontest.New()
				c := session.Coalesce(fake.Session("conformance"), o)
				t.Cleanup(func() { closeCoalescer(t, c) })
				return sessiontest.Harness{
					Session:    c,
					Sent:       fake.Receipts,
					Disconnect: func() { fake.Inject(sessiontest.Fault{Err: session.ErrNotConnected}) },
				}
			})
		})
	}
}

// hold wraps s: a receipt whose first id is "hold" stays in it until
// release is closed, so that the receipts for its chat, sender and type
// that come meanwhile gather in the next batch, as behind any call in
// flight.
func hold(s session.Session, release <-chan struct{}) session.Session {
	return session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
		if len(r.MessageIDs) > 0 && (r.MessageIDs[0] == "hold" || r.MessageIDs[0] == "100") { // "100": a channel's

			<-release
		}
		return s.SendReceipt(ctx, r)
	})
}

// TestCoalesce sends each receipt from its own goroutine, one after the
// other has joined its batch, in a synctest bubble, behind a "hold"
// receipt of its key in flight (see hold), then lets that one land: what
// came meanwhile goes out in batches, exactly, and nothing waits on a
// timer.
func TestCoalesce(t *testing.T) {
	tests := []struct {
		name     string
		opts     session.CoalesceOptions
		fault    sessiontest.Fault
		receipts []session.Receipt
		// wantCalls are the receipts the wrapped session got, in any order.
		wantCalls []session.Receipt
		// want is each caller's Result, or wantErr every caller's error.
		want    []session.Result
		wantErr error
	}{
		{
			name: "same chat and sender: one call with the union",
			receipts: []session.Receipt{
				at(rcpt(group, alice, "hold"), ts0),
				at(rcpt(group, alice, "A1"), ts0.Add(1*time.Second)),
				at(rcpt(group, alice, "A2", "A3"), ts0.Add(3*time.Second)),
				at(rcpt(group, alice, "A3", "A4"), ts0.Add(2*time.Second)),
			},
			wantCalls: []session.Receipt{
				at(rcpt(group, alice, "hold"), ts0),
				at(rcpt(group, alice, "A1", "A2", "A3", "A4"), ts0.Add(3*time.Second)), // the latest timestamp
			},
			want: []session.Result{{Type: "read"}, {Type: "read"}, {Type: "read"}, {Type: "read"}},
		},
		{
			name: "different chats, senders and types: separate calls",
			receipts: []session.Receipt{
				rcpt(group, alice, "hold"),
				rcpt(group, alice, "A1"),
				rcpt(group, bob, "B1"),
				rcpt(group, alice, "A2"),
				played(rcpt(group, alice, "A3")),
				rcpt(chatA, "", "C1"),
				rcpt(chatB, "", "D1"),
			},
			wantCalls: []session.Receipt{
				rcpt(group, alice, "hold"),
				rcpt(group, alice, "A1", "A2"),
				rcpt(group, bob, "B1"),
				played(rcpt(group, alice, "A3")),
				rcpt(chatA, "", "C1"),
				rcpt(chatB, "", "D1"),
			},
			want: []session.Result{
				{Type: "read"}, {Type: "read"}, {Type: "read"}, {Type: "read"}, {Type: "played"}, {Type: "read"}, {Type: "read"},
			},
		},
		{
			name: "MaxBatch: full batches go at once",
			opts: session.CoalesceOptions{MaxBatch: 3},
			receipts: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1", "A2"),
				rcpt(chatA, "", "A3", "A4"), // would make 4: A1 A2 go, A3 A4 open the next batch
				rcpt(chatA, "", "A5"),       // makes 3: sent without waiting for the call in flight
			},
			wantCalls: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1", "A2"),
				rcpt(chatA, "", "A3", "A4", "A5"),
			},
			want: []session.Result{{Type: "read"}, {Type: "read"}, {Type: "read"}, {Type: "read"}},
		},
		{
			name: "MaxBatch: ids already in the batch do not count twice",
			opts: session.CoalesceOptions{MaxBatch: 3},
			receipts: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1", "A2"),
				rcpt(chatA, "", "A2", "A1"),
			},
			wantCalls: []session.Receipt{rcpt(chatA, "", "hold"), rcpt(chatA, "", "A1", "A2")},
			want:      []session.Result{{Type: "read"}, {Type: "read"}, {Type: "read"}},
		},
		{
			name: "MaxBatch: a bigger receipt goes alone, unsplit",
			opts: session.CoalesceOptions{MaxBatch: 2},
			receipts: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1"),
				rcpt(chatA, "", "A2", "A3", "A4"),
				rcpt(chatA, "", "A5"),
			},
			wantCalls: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1"),
				rcpt(chatA, "", "A2", "A3", "A4"),
				rcpt(chatA, "", "A5"),
			},
			want: []session.Result{{Type: "read"}, {Type: "read"}, {Type: "read"}, {Type: "read"}},
		},
		{
			name:  "a failed batch fails every caller",
			fault: sessiontest.Fault{Err: session.ErrNotConnected},
			receipts: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1"),
				rcpt(chatA, "", "A2"),
				rcpt(chatA, "", "A3"),
			},
			wantCalls: []session.Receipt{rcpt(chatA, "", "hold"), rcpt(chatA, "", "A1", "A2", "A3")},
			wantErr:   session.ErrNotConnected,
		},
		{
			name: "the type as sent reaches every caller",
			receipts: []session.Receipt{
				rcpt("120363000000000001@newsletter", "", "100"),
				rcpt("120363000000000001@newsletter", "", "101"),
				rcpt("120363000000000001@newsletter", "", "102"),
			},
			wantCalls: []session.Receipt{
				rcpt("120363000000000001@newsletter", "", "100"),
				rcpt("120363000000000001@newsletter", "", "101", "102"),
			},
			want: []session.Result{{Type: "view"}, {Type: "view"}, {Type: "view"}},
		},
		{
			name: "duplicates go back to their own caller",
			receipts: []session.Receipt{
				rcpt(chatA, "", "hold"),
				rcpt(chatA, "", "A1", "dup1"),
				rcpt(chatA, "", "dup2", "A2"),
				rcpt(chatA, "", "A3"),
				rcpt(chatA, "", "dup1", "dup3"),
			},
			wantCalls: []session.Receipt{rcpt(chatA, "", "hold"), rcpt(chatA, "", "A1", "dup1", "dup2", "A2", "A3", "dup3")},
			want: []session.Result{
				{Type: "read"},
				{Type: "read", Duplicates: []string{"dup1"}},
				{Type: "read", Duplicates: []string{"dup2"}},
				{Type: "read"},
				{Type: "read", Duplicates: []string{"dup1", "dup3"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := sessiontest.New()
				if tc.fault != (sessiontest.Fault{}) {
					fake.Inject(tc.fault)
				}
				release := make(chan struct{})
				c := session.Coalesce(hold(reportDups(fake.Session("s")), release), tc.opts)
				defer closeCoalescer(t, c)

				start := time.Now()
				results := make([]session.Result, len(tc.receipts))
				errs := make([]error, len(tc.receipts))
				var wg sync.WaitGroup
				for i, r := range tc.receipts {
					wg.Go(func() { results[i], errs[i] = c.SendReceipt(t.Context(), r) })
					synctest.Wait() // r has joined a batch before the next one comes
				}
				close(release)
				wg.Wait()
				if got := time.Since(start); got != 0 {
					t.Errorf("callers returned after %v: something waited on a timer", got)
				}

				for i := range tc.receipts {
					if tc.wantErr != nil {
						if !errors.Is(errs[i], tc.wantErr) {
							t.Errorf("caller %d: err = %v, want %v", i, errs[i], tc.wantErr)
						}
						continue
					}
					if errs[i] != nil || results[i].Type != tc.want[i].Type || !slices.Equal(results[i].Duplicates, tc.want[i].Duplicates) {
						t.Errorf("caller %d: %+v, %v; want %+v", i, results[i], errs[i], tc.want[i])
					}
				}
				var calls []session.Receipt
				for _, call := range fake.Calls() {
					calls = append(calls, call.Receipt)
				}
				sortReceipts(calls)
				sortReceipts(tc.wantCalls)
				if !slices.EqualFunc(calls, tc.wantCalls, sameReceipt) {
					t.Errorf("the session got\n  %+v\nwant\n  %+v", calls, tc.wantCalls)
				}
				if st := c.Stats(); st.Calls != int64(len(tc.receipts)) || st.Sends != int64(len(tc.wantCalls)) {
					t.Errorf("Stats = %+v, want %d calls, %d sends", st, len(tc.receipts), len(tc.wantCalls))
				}
			})
		})
	}
}

func sortReceipts(rs []session.Receipt) {
	slices.SortFunc(rs, func(a, b session.Receipt) int {
		return cmp.Or(cmp.Compare(a.Chat, b.Chat), cmp.Compare(a.Sender, b.Sender),
			cmp.Compare(a.Type, b.Type), cmp.Compare(a.MessageIDs[0], b.MessageIDs[0]))
	})
}

func sameReceipt(a, b session.Receipt) bool {
	return a.Chat == b.Chat && a.Sender == b.Sender && a.Type == b.Type &&
		slices.Equal(a.MessageIDs, b.MessageIDs) && a.Timestamp.Equal(b.Timestamp)
}

// Under no load nothing waits: each receipt goes out at once, alone, with
// the values of its caller's context, and no timer is waited on.
func TestCoalesceNoLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		type key struct{}
		ctx := context.WithValue(t.Context(), key{}, "caller")
		inner := session.SessionFunc(func(got context.Context, r session.Receipt) (session.Result, error) {
			if got.Value(key{}) != "caller" {
				t.Errorf("the session got context %v, want the caller's values", got)
			}
			return fake.Session("s").SendReceipt(got, r)
		})
		c := session.Coalesce(inner, session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		start := time.Now()
		for _, id := range []string{"A1", "A2", "A3"} {
			if _, err := c.SendReceipt(ctx, rcpt(chatA, "", id)); err != nil {
				t.Fatal(err)
			}
			if n := len(fake.Calls()); n == 0 || fake.Calls()[n-1].Receipt.MessageIDs[0] != id {
				t.Fatalf("after SendReceipt(%s) returned, the session had %+v", id, fake.Calls())
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("waited %v", d)
		}
		if n := len(fake.Receipts()); n != 3 {
			t.Errorf("the session got %d receipts, want 3", n)
		}
		if st := c.Stats(); st != (session.CoalesceStats{Calls: 3, Sends: 3}) {
			t.Errorf("Stats = %+v", st)
		}
	})
}

// Invalid receipts are not batched: the wrapped session refuses them at once.
func TestCoalesceInvalidReceipt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		c := session.Coalesce(fake.Session("s"), session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		start := time.Now()
		for _, r := range []session.Receipt{rcpt(chatA, ""), rcpt("", "", "A1")} {
			if _, err := c.SendReceipt(t.Context(), r); !errors.Is(err, session.ErrInvalidReceipt) {
				t.Errorf("SendReceipt(%+v) = %v, want ErrInvalidReceipt", r, err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("invalid receipts waited %v", d)
		}
		if n := len(fake.Receipts()); n != 0 {
			t.Errorf("%d receipts sent", n)
		}
	})
}

// A caller whose context ends while it waits returns at once, and its ids
// leave the batch.
func TestCoalesceCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		release := make(chan struct{})
		c := session.Coalesce(hold(fake.Session("s"), release), session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		start := time.Now()
		go func() { _, _ = c.SendReceipt(t.Context(), rcpt(chatA, "", "hold")) }()
		synctest.Wait()

		ctxA, cancelA := context.WithCancel(t.Context())
		doneA := make(chan error, 1)
		go func() {
			_, err := c.SendReceipt(ctxA, rcpt(chatA, "", "A1", "X"))
			doneA <- err
		}()
		synctest.Wait()
		var errB error
		var wg sync.WaitGroup
		wg.Go(func() { _, errB = c.SendReceipt(t.Context(), rcpt(chatA, "", "B1", "X")) })
		synctest.Wait()

		cancelA()
		synctest.Wait()
		select {
		case err := <-doneA:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled caller: %v, want context.Canceled", err)
			}
		default:
			t.Fatal("the cancelled caller is still waiting")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the cancelled caller returned after %v", d)
		}

		time.Sleep(5 * time.Second) // the call in flight takes long
		close(release)
		wg.Wait()
		if errB != nil {
			t.Errorf("the other caller: %v", errB)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("the batch went out after %v, want once the call in flight landed", d)
		}
		want := []session.Receipt{rcpt(chatA, "", "hold"), rcpt(chatA, "", "B1", "X")}
		if got := fake.Receipts(); !slices.EqualFunc(got, want, sameReceipt) {
			t.Errorf("sent %+v, want %+v", got, want)
		}
	})
}

// A batch whose every caller gave up is not sent.
func TestCoalesceEveryoneCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		release := make(chan struct{})
		c := session.Coalesce(hold(fake.Session("s"), release), session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		held := make(chan error, 1)
		go func() { _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "hold")); held <- err }()
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for _, id := range []string{"A1", "A2"} {
			wg.Go(func() {
				if _, err := c.SendReceipt(ctx, rcpt(chatA, "", id)); !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v, want context.Canceled", id, err)
				}
			})
		}
		synctest.Wait()
		cancel()
		wg.Wait()
		close(release)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if calls := fake.Calls(); len(calls) != 1 || calls[0].Receipt.MessageIDs[0] != "hold" {
			t.Errorf("the session got %+v, want the held receipt only", calls)
		}
		if st := c.Stats(); st.Sends != 1 {
			t.Errorf("Stats = %+v", st)
		}
		// A context that has already ended sends nothing either.
		if _, err := c.SendReceipt(ctx, rcpt(chatA, "", "A3")); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: %v", err)
		}
	})
}

// Once the batch is out, a caller that gives up returns at once, and the
// batch's call goes on for the others: it does not run on the first
// caller's context.
func TestCoalesceCancelAfterSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var batchCtx context.Context
		var got []session.Receipt
		inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			if r.MessageIDs[0] == "hold" {
				return session.Result{Type: r.Type}, nil
			}
			batchCtx = ctx
			got = append(got, r)
			<-release
			return session.Result{Type: r.Type}, ctx.Err()
		})
		c := session.Coalesce(hold(inner, release), session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		go func() { _, _ = c.SendReceipt(t.Context(), rcpt(chatA, "", "hold")) }()
		synctest.Wait()

		ctxA, cancelA := context.WithCancel(t.Context())
		doneA := make(chan error, 1)
		go func() {
			_, err := c.SendReceipt(ctxA, rcpt(chatA, "", "A1"))
			doneA <- err
		}()
		synctest.Wait()
		doneB := make(chan error, 1)
		go func() {
			_, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "B1"))
			doneB <- err
		}()
		synctest.Wait()
		c.Flush()
		synctest.Wait() // the batch is in the session

		cancelA()
		synctest.Wait()
		select {
		case err := <-doneA:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled caller: %v", err)
			}
		default:
			t.Fatal("the cancelled caller is still waiting")
		}
		if err := batchCtx.Err(); err != nil {
			t.Errorf("the first caller's cancellation reached the batch: %v", err)
		}
		close(release)
		if err := <-doneB; err != nil {
			t.Errorf("the other caller: %v", err)
		}
		if want := []session.Receipt{rcpt(chatA, "", "A1", "B1")}; !slices.EqualFunc(got, want, sameReceipt) {
			t.Errorf("the session got %+v, want %+v", got, want)
		}
	})
}

// The batch's call is bounded by SendTimeout, whatever the callers' contexts.
func TestCoalesceSendTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"default", 0, 10 * time.Second},
		{"set", 3 * time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
					<-ctx.Done()
					return session.Result{}, ctx.Err()
				})
				c := session.Coalesce(inner, session.CoalesceOptions{SendTimeout: tc.timeout})
				defer closeCoalescer(t, c)
				start := time.Now()
				if _, err := c.SendReceipt(context.Background(), rcpt(chatA, "", "A1")); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want DeadlineExceeded", err)
				}
				if d := time.Since(start); d != tc.want {
					t.Errorf("returned after %v, want %v", d, tc.want)
				}
			})
		})
	}
}

// A panic in the wrapped session becomes every caller's error.
func TestCoalescePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		fake.Inject(sessiontest.Fault{Panic: "boom"})
		c := session.Coalesce(fake.Session("s"), session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		var wg sync.WaitGroup
		for _, id := range []string{"A1", "A2"} {
			wg.Go(func() {
				if _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", id)); err == nil || !strings.Contains(err.Error(), "boom") {
					t.Errorf("%s: err = %v, want the panic", id, err)
				}
			})
		}
		wg.Wait()
	})
}

// Close sends what waits without waiting for the calls in flight, then
// passes calls through.
func TestCoalesceClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		release := make(chan struct{})
		c := session.Coalesce(hold(fake.Session("s"), release), session.CoalesceOptions{})
		start := time.Now()
		var wg sync.WaitGroup
		for _, r := range []session.Receipt{rcpt(chatA, "", "hold"), rcpt(chatB, "", "hold"), rcpt(chatA, "", "A1"), rcpt(chatB, "", "B1"), rcpt(chatA, "", "A2")} {
			wg.Go(func() {
				if _, err := c.SendReceipt(t.Context(), r); err != nil {
					t.Errorf("%+v: %v", r, err)
				}
			})
			synctest.Wait()
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close(t.Context()) }()
		synctest.Wait() // the waiting batches went out; the held calls did not land
		if n := len(fake.Receipts()); n != 2 {
			t.Errorf("after Close, %d receipts sent, want 2: %+v", n, fake.Receipts())
		}
		close(release)
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
		if d := time.Since(start); d != 0 {
			t.Errorf("the callers returned after %v, want at once", d)
		}

		if _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "A3")); err != nil {
			t.Errorf("after Close: %v", err)
		}
		if n := len(fake.Receipts()); n != 5 || time.Since(start) != 0 {
			t.Errorf("after Close, SendReceipt did not pass through: %d receipts, %v", n, time.Since(start))
		}
		if err := c.Close(t.Context()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// Close gives up waiting when its context ends; the batch still finishes.
func TestCoalesceCloseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			<-release
			return session.Result{Type: r.Type}, nil
		})
		c := session.Coalesce(inner, session.CoalesceOptions{})
		done := make(chan error, 1)
		go func() {
			_, err := c.SendReceipt(context.Background(), rcpt(chatA, "", "A1"))
			done <- err
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Errorf("caller: %v", err)
		}
		if err := c.Close(t.Context()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// Many callers on real time: every id goes out once, each caller is
// answered, and nothing is left running after Close.
func TestCoalesceConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	fake := sessiontest.New()
	c := session.Coalesce(fake.Session("s"), session.CoalesceOptions{MaxBatch: 10})
	const workers, each = 32, 20
	chats := []string{chatA, chatB, group}
	var wg sync.WaitGroup
	var canceled atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := context.WithCancel(context.Background())
				if i%7 == 3 {
					cancel() // now and then a caller that has given up already
				}
				id := fmt.Sprintf("W%02dI%02d", w, i)
				chat, sender := chats[(w+i)%len(chats)], ""
				if chat == group {
					sender = alice // a group receipt names its sender
				}
				_, err := c.SendReceipt(ctx, rcpt(chat, sender, id))
				cancel()
				switch {
				case i%7 == 3 && errors.Is(err, context.Canceled):
					canceled.Add(1)
				case err != nil:
					t.Errorf("%s: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	closeCoalescer(t, c)

	sent := map[string]int{}
	for _, r := range fake.Receipts() {
		if len(r.MessageIDs) > 10 {
			t.Errorf("a batch of %d ids, over MaxBatch", len(r.MessageIDs))
		}
		for _, id := range r.MessageIDs {
			sent[id]++
		}
	}
	if want := workers*each - int(canceled.Load()); len(sent) != want {
		t.Errorf("%d distinct ids sent, want %d", len(sent), want)
	}
	for id, n := range sent {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	st := c.Stats()
	if st.Calls != workers*each || st.Sends >= st.Calls {
		t.Errorf("Stats = %+v", st)
	}
	t.Logf("%d calls in, %d out", st.Calls, st.Sends)
}

// BenchmarkCoalesce sends bursts of 1,000 receipts over 10 chats from 64
// goroutines and reports the calls the wrapped session got per receipt
// (calls/req). A caller waits for its batch before sending its next receipt,
// so a batch holds at most the callers waiting on its chat at that moment:
// with the chats interleaved (receipt i to chat i%10) and the callers in
// lockstep that is 64 receipts in 10 batches, 0.16 calls/req, less as the
// callers drift apart. When each chat's receipts come together (chat by
// chat) the batches fill up. Last measured with group commit: 0.048
// calls/req chat by chat, 0.29 interleaved (examples/BENCHMARKS.md).
func BenchmarkCoalesce(b *testing.B) {
	const requests, chats, workers = 1000, 10, 64
	interleaved := func(i int) int { return i % chats }
	chatByChat := func(i int) int { return i / (requests / chats) }
	for _, bc := range []struct {
		name   string
		chatOf func(i int) int
	}{
		{"GroupCommit/Interleaved", interleaved},
		{"GroupCommit/ChatByChat", chatByChat},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fake := sessiontest.New()
			// A backend call takes 200 µs, as a frame written to WhatsApp's socket
			// roughly does; group commit batches what arrives meanwhile.
			fake.Inject(sessiontest.Fault{Latency: 200 * time.Microsecond})
			c := session.Coalesce(fake.Session("bench"), session.CoalesceOptions{})
			defer closeCoalescer(b, c)
			receipts := make([]session.Receipt, requests)
			for i := range receipts {
				receipts[i] = rcpt(fmt.Sprintf("1555000%04d@s.whatsapp.net", bc.chatOf(i)), "", fmt.Sprintf("3EB0%06d", i))
			}
			for b.Loop() {
				var next atomic.Int64
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for i := int(next.Add(1) - 1); i < requests; i = int(next.Add(1) - 1) {
							if _, err := c.SendReceipt(context.Background(), receipts[i]); err != nil {
								b.Error(err)
							}
						}
					})
				}
				wg.Wait()
				fake.Reset() // keep its record of calls small
				fake.Inject(sessiontest.Fault{Latency: 200 * time.Microsecond})
			}
			st := c.Stats()
			b.ReportMetric(float64(st.Sends)/float64(st.Calls), "calls/req")
		})
	}
}

// A batch never carries more ids than one receipt stanza
// may (MaxReceiptIDs), whatever MaxBatch says.
func TestCoalesceMaxBatchCappedAtStanzaSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		release := make(chan struct{})
		c := session.Coalesce(hold(fake.Session("s"), release), session.CoalesceOptions{MaxBatch: 1000})
		defer closeCoalescer(t, c)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = c.SendReceipt(t.Context(), rcpt(chatA, "", "hold")) })
		synctest.Wait()
		for i := range 300 {
			wg.Go(func() {
				if _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", fmt.Sprintf("ID%03d", i))); err != nil {
					t.Error(err)
				}
			})
			synctest.Wait()
		}
		close(release)
		wg.Wait()
		var sizes []int
		for _, r := range fake.Receipts() {
			if r.MessageIDs[0] == "hold" {
				continue
			}
			sizes = append(sizes, len(r.MessageIDs))
		}
		if !slices.Equal(sizes, []int{session.MaxReceiptIDs, 300 - session.MaxReceiptIDs}) {
			t.Errorf("batch sizes %v, want [256 44]", sizes)
		}
	})
}

// A receipt goes out at once when nothing is in flight for
// its chat (no timer is waited on); those arriving while a call is in flight
// go out together as soon as it returns.
func TestCoalesceGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var (
			mu   sync.Mutex
			sent [][]string
		)
		backend := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			mu.Lock()
			sent = append(sent, slices.Clone(r.MessageIDs))
			first := len(sent) == 1
			mu.Unlock()
			if first {
				<-release // the first call stays in flight until the test says
			}
			return session.Result{Type: r.Type}, nil
		})
		c := session.Coalesce(backend, session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "G0")); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait()
		for i := 1; i <= 5; i++ {
			wg.Go(func() {
				res, err := c.SendReceipt(t.Context(), rcpt(chatA, "", fmt.Sprintf("G%d", i)))
				if err != nil || res.Type != session.ReceiptRead {
					t.Errorf("G%d: %+v %v", i, res, err)
				}
			})
		}
		// Another chat is not held up by chatA's call in flight.
		if _, err := c.SendReceipt(t.Context(), rcpt(chatB, "", "OTHER")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mu.Lock()
		if len(sent) != 2 || !slices.Equal(sent[1], []string{"OTHER"}) {
			t.Errorf("while G0 is in flight: sent %v, want [G0] [OTHER]", sent)
		}
		mu.Unlock()
		close(release)
		wg.Wait()
		if waited := time.Since(start); waited != 0 {
			t.Errorf("waited %v on a timer", waited)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(sent) != 3 || len(sent[2]) != 5 {
			t.Errorf("sent %v, want G1…G5 in one call after G0 landed", sent)
		}
		if st := c.Stats(); st != (session.CoalesceStats{Calls: 7, Sends: 3}) {
			t.Errorf("stats %+v", st)
		}
	})
}

// A caller that gives up while its batch waits for the
// call in flight leaves it; Close sends the batch that is waiting.
func TestCoalesceGroupCommitCancelAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		fake := sessiontest.New()
		var calls atomic.Int32
		backend := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			if calls.Add(1) == 1 {
				<-release
			}
			return fake.Session("s").SendReceipt(ctx, r)
		})
		c := session.Coalesce(backend, session.CoalesceOptions{})
		go func() { _, _ = c.SendReceipt(context.Background(), rcpt(chatA, "", "FIRST")) }()
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		gone := make(chan error, 1)
		go func() { _, err := c.SendReceipt(ctx, rcpt(chatA, "", "GONE")); gone <- err }()
		stays := make(chan error, 1)
		go func() { _, err := c.SendReceipt(context.Background(), rcpt(chatA, "", "STAYS")); stays <- err }()
		synctest.Wait()
		cancel()
		if err := <-gone; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller: %v", err)
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close(context.Background()) }()
		synctest.Wait()
		close(release)
		if err := <-stays; err != nil {
			t.Errorf("waiting caller: %v", err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		synctest.Wait()  // FIRST lands
		var ids []string // Close sent STAYS's batch while FIRST was still in flight
		for _, r := range fake.Receipts() {
			ids = append(ids, strings.Join(r.MessageIDs, "+"))
		}
		if slices.Sort(ids); !slices.Equal(ids, []string{"FIRST", "STAYS"}) {
			t.Errorf("sent %v, want FIRST and STAYS, GONE left out", ids)
		}
	})
}

// The receipt that opens a batch returns when its own
// deadline ends, not when the batch's call does, and says its receipt is
// in flight; the batch goes on for the others. A caller that leaves a
// batch not yet sent gets the bare context error: nothing of it went out.
func TestCoalesceGroupCommitLeaderDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		backend := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			time.Sleep(time.Second) // WhatsApp is slow today
			return fake.Session("s").SendReceipt(ctx, r)
		})
		c := session.Coalesce(backend, session.CoalesceOptions{})
		defer closeCoalescer(t, c)

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		lead := make(chan error, 1)
		go func() { _, err := c.SendReceipt(ctx, rcpt(chatA, "", "L1")); lead <- err }()
		synctest.Wait() // L1's batch is out
		other := make(chan error, 1)
		go func() { _, err := c.SendReceipt(ctx, rcpt(chatA, "", "N1")); other <- err }() // waits for the next batch
		stays := make(chan error, 1)
		go func() { _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "S1")); stays <- err }()

		err := <-lead
		if took := time.Since(start); took != 50*time.Millisecond {
			t.Errorf("the leader returned after %v, want 50ms (its deadline)", took)
		}
		if !errors.Is(err, session.ErrInFlight) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the leader: %v, want ErrInFlight and DeadlineExceeded", err)
		}
		if err := <-other; errors.Is(err, session.ErrInFlight) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("left before its batch went out: %v, want the bare deadline", err)
		}
		if err := <-stays; err != nil {
			t.Errorf("the caller that waited: %v", err)
		}
		var ids []string
		for _, r := range fake.Receipts() {
			ids = append(ids, strings.Join(r.MessageIDs, "+"))
		}
		if !slices.Equal(ids, []string{"L1", "S1"}) {
			t.Errorf("sent %v, want L1 (in flight when its caller left), then S1 without N1", ids)
		}
	})
}

// A member of a batch that is being sent when its context ends is
// told its receipt is in flight.
func TestCoalesceBatchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			<-release
			return session.Result{Type: r.Type}, nil
		})
		c := session.Coalesce(inner, session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := c.SendReceipt(ctx, rcpt(chatA, "", "W1")); !errors.Is(err, session.ErrInFlight) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want ErrInFlight and DeadlineExceeded", err)
		}
		close(release)
	})
}

// goroutineID returns the id of the calling goroutine, from its stack's
// first line ("goroutine 7 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// Batches sent one after another, nothing joining them, go out on one
// sender goroutine that waits for the next: a goroutine per batch began on
// a small stack that every call into the backend grew again. Close ends
// the sender (goleak).
func TestCoalesceReusesItsSender(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var on []string
		inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			on = append(on, goroutineID()) // one call at a time: the sends below wait for theirs
			return session.Result{Type: r.Type}, nil
		})
		c := session.Coalesce(inner, session.CoalesceOptions{})
		for i, chat := range []string{chatA, chatB, group} {
			if _, err := c.SendReceipt(context.Background(), rcpt(chat, "", fmt.Sprint("R", i))); err != nil {
				t.Fatal(err)
			}
			// Its caller is answered before the sender waits again: the
			// next batch must find it waiting, not race it there.
			synctest.Wait()
		}
		closeCoalescer(t, c)
		if len(on) != 3 || on[0] != on[1] || on[1] != on[2] {
			t.Errorf("calls on goroutines %v, want one sender for the three", on)
		}
	})
}

// counting returns a coalescer over a backend that counts its calls.
func counting(t *testing.T) (*session.Coalescer, *atomic.Int64) {
	t.Helper()
	calls := new(atomic.Int64)
	inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
		calls.Add(1)
		return session.Result{Type: r.Type}, nil
	})
	c := session.Coalesce(inner, session.CoalesceOptions{})
	t.Cleanup(func() { closeCoalescer(t, c) })
	return c, calls
}

// Receipts for one chat that become runnable together, with nothing in
// flight, go out in one call: the first yields once before it sends, and
// the others join its batch meanwhile. On one processor the others run
// during the yield — but for the scheduler's look at its global queue
// every 61st turn, which may split a burst: ten bursts of ten took 10 to
// 12 calls; without the yield, 100 (each receipt went out alone, its
// sender running before the next receipt arrived).
func TestCoalesceYieldGathersABurst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c, calls := counting(t)
	for burst := range 10 {
		start := make(chan struct{})
		var ready, done sync.WaitGroup
		for i := range 10 {
			ready.Add(1)
			done.Go(func() {
				ready.Done()
				<-start
				if _, err := c.SendReceipt(context.Background(), rcpt(chatA, "", fmt.Sprint("B", burst, "-", i))); err != nil {
					t.Error(err)
				}
			})
		}
		ready.Wait()
		close(start)
		done.Wait()
	}
	if n := calls.Load(); n > 30 {
		t.Errorf("%d calls for 10 bursts of 10 receipts, want about 10", n)
	}
}

// boundFunc is a SessionFunc that says it is ContextBound.
type boundFunc session.SessionFunc

func (f boundFunc) SendReceipt(ctx context.Context, r session.Receipt) (session.Result, error) {
	return f(ctx, r)
}

func (boundFunc) BoundByContext() bool { return true }

// A receipt alone in its batch over a ContextBound Session goes out on its
// caller's goroutine with its caller's context: no hand-off to a sender,
// no timer of the batch's own. When that context ends during the call the
// backend sees it end, and the caller is told its receipt is in flight.
func TestCoalesceAloneOverBoundSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		var (
			on, value any
			saw       error
		)
		inner := boundFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			on, value = goroutineID(), ctx.Value(key{})
			<-ctx.Done()
			saw = ctx.Err()
			return session.Result{}, ctx.Err()
		})
		c := session.Coalesce(inner, session.CoalesceOptions{})
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "caller's"))
		go func() {
			synctest.Wait() // the call is in the backend
			cancel()
		}()
		_, err := c.SendReceipt(ctx, rcpt(chatA, "", "A1"))
		closeCoalescer(t, c)
		if !errors.Is(err, session.ErrInFlight) || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want ErrInFlight and Canceled", err)
		}
		if on != goroutineID() || value != "caller's" || saw != context.Canceled {
			t.Errorf("the backend ran on goroutine %v (the caller's: %v) with value %v and saw %v; want the caller's goroutine, its value and its cancellation",
				on, goroutineID(), value, saw)
		}
		if st := c.Stats(); st.Calls != 1 || st.Sends != 1 {
			t.Errorf("stats %+v, want one call, one send", st)
		}
	})
}

// Over a ContextBound Session too, a batch that two callers share goes out
// from a goroutine of its own, with its opener's values but not its
// cancellation: one caller leaving while it is sent must not fail the
// other.
func TestCoalesceSharedBatchOverBoundSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first, shared := make(chan struct{}), make(chan struct{})
		var sent [][]string
		inner := boundFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			if r.MessageIDs[0] == "A1" {
				<-first
			} else {
				<-shared
			}
			if err := ctx.Err(); err != nil {
				return session.Result{}, err
			}
			sent = append(sent, slices.Sorted(slices.Values(r.MessageIDs))) // one call at a time
			return session.Result{Type: r.Type}, nil
		})
		c := session.Coalesce(inner, session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		a := make(chan error, 1)
		go func() { _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "A1")); a <- err }()
		synctest.Wait() // A1 is in the backend, alone, on its caller's goroutine
		ctx, cancel := context.WithCancel(t.Context())
		b1, b2 := make(chan error, 1), make(chan error, 1)
		go func() { _, err := c.SendReceipt(ctx, rcpt(chatA, "", "B1")); b1 <- err }()
		go func() { _, err := c.SendReceipt(t.Context(), rcpt(chatA, "", "B2")); b2 <- err }()
		synctest.Wait() // B1 and B2 wait in the next batch
		close(first)
		if err := <-a; err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // B1+B2 is in the backend
		cancel()
		if err := <-b1; !errors.Is(err, session.ErrInFlight) {
			t.Errorf("B1, cancelled while its batch was sent: %v, want ErrInFlight", err)
		}
		close(shared)
		if err := <-b2; err != nil {
			t.Errorf("B2: %v, want its receipt sent", err)
		}
		if want := [][]string{{"A1"}, {"B1", "B2"}}; fmt.Sprint(sent) != fmt.Sprint(want) {
			t.Errorf("sent %v, want %v", sent, want)
		}
	})
}

// Through Decorate too: the Session it wraps is asked whether it is
// ContextBound, and a receipt alone goes out on its caller's goroutine.
func TestDecorateAloneOverBoundSession(t *testing.T) {
	var on string
	reg := session.NewMemoryRegistry()
	reg.Set("s", boundFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
		on = goroutineID()
		return session.Result{Type: r.Type}, nil
	}))
	d := session.Decorate(reg, session.DecorateOptions{Coalesce: &session.CoalesceOptions{}})
	defer d.Close(context.Background())
	s, err := d.Lookup(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendReceipt(t.Context(), rcpt(chatA, "", "A1")); err != nil {
		t.Fatal(err)
	}
	if on != goroutineID() {
		t.Errorf("sent on goroutine %s, want the caller's, %s", on, goroutineID())
	}
}

// The opener of a batch yields only where its chat's receipts crowd: on
// one processor, two receipts for a chat made runnable together go out in
// one call when the chat's previous receipt came a moment before (the
// first yields, the second joins it), and in two when it came 2 ms before,
// longer ago than yieldWithin (250 µs): there the first goes at once, as
// nothing crowds, and the yield's trip through the scheduler is saved.
func TestCoalesceYieldsWhereReceiptsCrowd(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	synctest.Test(t, func(t *testing.T) {
		c, calls := counting(t)
		send := func(id string) {
			if _, err := c.SendReceipt(context.Background(), rcpt(chatA, "", id)); err != nil {
				t.Error(err)
			}
		}
		pairs := func(tag string, pause time.Duration) int64 {
			before := calls.Load()
			for p := range 10 {
				time.Sleep(pause)
				start := make(chan struct{})
				var done sync.WaitGroup
				for i := range 2 {
					done.Go(func() {
						<-start
						send(fmt.Sprint(tag, p, "-", i))
					})
				}
				synctest.Wait() // both wait for start
				close(start)
				done.Wait()
			}
			return calls.Load() - before
		}
		send("R0")
		// The scheduler's look at its global queue every 61st turn may
		// split a crowded pair; a pair that does not crowd never joins.
		if n := pairs("crowded", 0); n > 13 {
			t.Errorf("crowded: %d calls for 10 pairs, want about 10", n)
		}
		if n := pairs("apart", 2*time.Millisecond); n != 20 {
			t.Errorf("a millisecond apart: %d calls for 10 pairs, want 20 (no yield)", n)
		}
	})
}

// What the coalescing remembers of each chat's latest receipt, to tell
// where receipts crowd, is forgotten once it is over 250 µs old:
// receipts for ever new chats do not grow it without bound.
func TestCoalesceForgetsOldArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := session.Coalesce(sessiontest.New().Session("s"), session.CoalesceOptions{})
		defer closeCoalescer(t, c)
		most := 0
		for i := range 5000 {
			if i%100 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
			if _, err := c.SendReceipt(t.Context(), rcpt(fmt.Sprintf("1555%07d@s.whatsapp.net", i), "", "M1")); err != nil {
				t.Fatal(err)
			}
			most = max(most, c.RecentKeys())
		}
		if most > 1100 {
			t.Errorf("remembered up to %d chats, want at most about 1,024 (the prune threshold)", most)
		}
	})
}
