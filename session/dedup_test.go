package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func TestDedupConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		fake := sessiontest.New()
		return sessiontest.Harness{
			Session:    session.Dedup(fake.Session("conformance"), session.DedupOptions{}),
			Sent:       fake.Receipts,
			Disconnect: func() { fake.Inject(sessiontest.Fault{Err: session.ErrNotConnected}) },
		}
	})
}

// TestDedup runs each case's steps in order, in a synctest bubble so that
// the TTL runs on a fake clock.
func TestDedup(t *testing.T) {
	errBoom := errors.New("boom")
	type step struct {
		sleep time.Duration // before sending
		r     session.Receipt
		fail  error // the wrapped session fails with it
		// sent are the ids the wrapped session got; notCalled: it was not
		// called.
		sent      []string
		notCalled bool
		wantDups  []string
		wantType  session.ReceiptType
		wantErr   error
	}
	tests := []struct {
		name  string
		opts  session.DedupOptions
		steps []step
	}{
		{
			name: "the same ids again are duplicates, nothing sent",
			steps: []step{
				{r: rcpt(chatA, "", "A", "B"), sent: []string{"A", "B"}, wantType: "read"},
				{r: rcpt(chatA, "", "B", "A"), notCalled: true, wantDups: []string{"B", "A"}, wantType: "read"},
			},
		},
		{
			name: "partial duplicates: only the new ids are sent",
			steps: []step{
				{r: rcpt(chatA, "", "A", "B"), sent: []string{"A", "B"}, wantType: "read"},
				{r: rcpt(chatA, "", "B", "C", "A", "D"), sent: []string{"C", "D"}, wantDups: []string{"B", "A"}, wantType: "read"},
				{r: rcpt(chatA, "", "D", "E"), sent: []string{"E"}, wantDups: []string{"D"}, wantType: "read"},
			},
		},
		{
			name: "keyed by chat and type",
			steps: []step{
				{r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
				{r: rcpt(chatB, "", "A"), sent: []string{"A"}, wantType: "read"},
				{r: played(rcpt(chatA, "", "A")), sent: []string{"A"}, wantType: "played"},
				{r: played(rcpt(chatA, "", "A")), notCalled: true, wantDups: []string{"A"}, wantType: "played"},
			},
		},
		{
			name: "the type asked for is the key, not the type as sent",
			steps: []step{
				{r: rcpt("120363000000000001@newsletter", "", "101"), sent: []string{"101"}, wantType: "view"},
				{r: rcpt("120363000000000001@newsletter", "", "101"), notCalled: true, wantDups: []string{"101"}, wantType: "read"},
			},
		},
		{
			name: "an id repeated in a receipt is sent once",
			steps: []step{
				{r: rcpt(chatA, "", "A", "B", "A"), sent: []string{"A", "B"}, wantType: "read"},
			},
		},
		{
			name: "the wrapped session's duplicates are merged, in the receipt's order",
			steps: []step{
				{r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
				{r: rcpt(chatA, "", "dup1", "B", "A"), sent: []string{"dup1", "B"}, wantDups: []string{"dup1", "A"}, wantType: "read"},
			},
		},
		{
			name: "ids are forgotten after the TTL",
			opts: session.DedupOptions{TTL: time.Minute},
			steps: []step{
				{r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
				{sleep: time.Minute - time.Nanosecond, r: rcpt(chatA, "", "A"), notCalled: true, wantDups: []string{"A"}, wantType: "read"},
				{sleep: time.Nanosecond, r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
			},
		},
		{
			name: "the default TTL is 24 h",
			steps: []step{
				{r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
				{sleep: 23 * time.Hour, r: rcpt(chatA, "", "A"), notCalled: true, wantDups: []string{"A"}, wantType: "read"},
				{sleep: time.Hour, r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
			},
		},
		{
			name: "at most Size ids are remembered, the least recent forgotten",
			opts: session.DedupOptions{Size: 2},
			steps: []step{
				{r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
				{r: rcpt(chatA, "", "B"), sent: []string{"B"}, wantType: "read"},
				{r: rcpt(chatA, "", "C"), sent: []string{"C"}, wantType: "read"}, // A forgotten
				{r: rcpt(chatA, "", "A", "C"), sent: []string{"A"}, wantDups: []string{"C"}, wantType: "read"},
				{r: rcpt(chatA, "", "B"), sent: []string{"B"}, wantType: "read"}, // forgotten when A came back
			},
		},
		{
			name: "a failed send is not remembered",
			steps: []step{
				{r: rcpt(chatA, "", "A", "B"), fail: errBoom, sent: []string{"A", "B"}, wantErr: errBoom},
				{r: rcpt(chatA, "", "A"), fail: session.ErrNotConnected, sent: []string{"A"}, wantErr: session.ErrNotConnected},
				{r: rcpt(chatA, "", "A", "B"), sent: []string{"A", "B"}, wantType: "read"},
			},
		},
		{
			name: "invalid receipts go straight through",
			steps: []step{
				{r: rcpt(chatA, ""), sent: nil, wantErr: session.ErrInvalidReceipt},
				{r: rcpt("", "", "A"), sent: []string{"A"}, wantErr: session.ErrInvalidReceipt},
				{r: rcpt(chatA, "", "A"), sent: []string{"A"}, wantType: "read"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := sessiontest.New()
				var got []session.Receipt // what the wrapped session got
				var fail error
				inner := reportDups(session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
					got = append(got, r)
					if fail != nil {
						return session.Result{}, fail
					}
					return fake.Session("s").SendReceipt(ctx, r)
				}))
				d := session.Dedup(inner, tc.opts)
				for i, st := range tc.steps {
					time.Sleep(st.sleep)
					got, fail = nil, st.fail
					res, err := d.SendReceipt(t.Context(), st.r)
					if st.wantErr != nil {
						if !errors.Is(err, st.wantErr) {
							t.Errorf("step %d: err = %v, want %v", i, err, st.wantErr)
						}
					} else if err != nil || res.Type != st.wantType || !slices.Equal(res.Duplicates, st.wantDups) {
						t.Errorf("step %d: %+v, %v; want type %s, duplicates %v", i, res, err, st.wantType, st.wantDups)
					}
					switch {
					case st.notCalled && len(got) != 0:
						t.Errorf("step %d: the session got %+v, want no call", i, got)
					case !st.notCalled && (len(got) != 1 || !slices.Equal(got[0].MessageIDs, st.sent)):
						t.Errorf("step %d: the session got %+v, want one call with %v", i, got, st.sent)
					case !st.notCalled:
						if want := st.r; got[0].Chat != want.Chat || got[0].Sender != want.Sender ||
							got[0].Type != want.Type || !got[0].Timestamp.Equal(want.Timestamp) {
							t.Errorf("step %d: the session got %+v, want %+v with ids %v", i, got[0], want, st.sent)
						}
					}
				}
			})
		})
	}
}

// An id being sent counts as a duplicate for a concurrent call; if that send
// fails, the id is not remembered.
func TestDedupInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan error)
		var mu sync.Mutex
		var got [][]string
		inner := session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
			mu.Lock()
			got = append(got, r.MessageIDs)
			mu.Unlock()
			if slices.Contains(r.MessageIDs, "X") {
				if err := <-gate; err != nil {
					return session.Result{}, err
				}
			}
			return session.Result{Type: r.Type}, nil
		})
		d := session.Dedup(inner, session.DedupOptions{})

		errBoom := errors.New("boom")
		first := make(chan error, 1)
		go func() {
			_, err := d.SendReceipt(t.Context(), rcpt(chatA, "", "X"))
			first <- err
		}()
		synctest.Wait() // X is in flight
		res, err := d.SendReceipt(t.Context(), rcpt(chatA, "", "X", "Y"))
		if err != nil || !slices.Equal(res.Duplicates, []string{"X"}) {
			t.Errorf("while X is in flight: %+v, %v; want X a duplicate", res, err)
		}
		gate <- errBoom
		if err := <-first; !errors.Is(err, errBoom) {
			t.Errorf("first send: %v, want boom", err)
		}
		go func() { gate <- nil }()
		if res, err := d.SendReceipt(t.Context(), rcpt(chatA, "", "X")); err != nil || res.Duplicates != nil {
			t.Errorf("after the failure: %+v, %v; want X sent", res, err)
		}
		if want := [][]string{{"X"}, {"Y"}, {"X"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("the session got %v, want %v", got, want)
		}
	})
}

// A panic in the wrapped session does not leave the ids in flight.
func TestDedupPanic(t *testing.T) {
	fake := sessiontest.New()
	fake.Inject(sessiontest.Fault{Call: 1, Panic: "boom"})
	d := session.Dedup(fake.Session("s"), session.DedupOptions{})
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic", p)
			}
		}()
		_, _ = d.SendReceipt(context.Background(), rcpt(chatA, "", "A"))
	}()
	if res, err := d.SendReceipt(context.Background(), rcpt(chatA, "", "A")); err != nil || res.Duplicates != nil {
		t.Errorf("after the panic: %+v, %v; want A sent", res, err)
	}
	if n := len(fake.Receipts()); n != 1 {
		t.Errorf("%d receipts sent, want 1", n)
	}
}

// The same id from many goroutines at once is sent once; the Deduper leaves
// no goroutine behind.
func TestDedupConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	fake := sessiontest.New()
	fake.Inject(sessiontest.Fault{Latency: time.Millisecond}) // keep sends in flight a while
	d := session.Dedup(fake.Session("s"), session.DedupOptions{})
	const workers = 64
	var wg sync.WaitGroup
	results := make([]session.Result, workers)
	for w := range workers {
		wg.Go(func() {
			var err error
			results[w], err = d.SendReceipt(context.Background(), rcpt(chatA, "", "SAME", fmt.Sprintf("OWN%02d", w)))
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	sent := map[string]int{}
	for _, r := range fake.Receipts() {
		for _, id := range r.MessageIDs {
			sent[id]++
		}
	}
	if sent["SAME"] != 1 || len(sent) != workers+1 {
		t.Errorf("sent %v, want SAME once and every OWN id", sent)
	}
	dups := 0
	for _, res := range results {
		if slices.Equal(res.Duplicates, []string{"SAME"}) {
			dups++
		}
	}
	if dups != workers-1 {
		t.Errorf("%d callers had SAME as a duplicate, want %d", dups, workers-1)
	}
}

// Optional interfaces are found through the decorators.
func TestDecoratorsUnwrap(t *testing.T) {
	fake := sessiontest.New()
	inner := fake.Session("s")
	c := session.Coalesce(inner, session.CoalesceOptions{})
	d := session.Dedup(c, session.DedupOptions{})
	if d.Unwrap() != c || c.Unwrap() != inner {
		t.Errorf("Unwrap: %v, %v", d.Unwrap(), c.Unwrap())
	}
	if r, ok := session.As[session.Resolver](d); !ok || r != inner {
		t.Errorf("As[Resolver] = %v, %v; want the fake", r, ok)
	}
}
