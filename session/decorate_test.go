package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// decorated returns reg decorated with opts, closed when the test ends.
func decorated(t *testing.T, reg session.Registry, opts session.DecorateOptions) *session.Decorated {
	t.Helper()
	d := session.Decorate(reg, opts)
	t.Cleanup(func() {
		if err := d.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// lookup looks name up in reg and fails the test on error.
func lookup(t *testing.T, reg session.Registry, name string) session.Session {
	t.Helper()
	s, err := reg.Lookup(t.Context(), name)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", name, err)
	}
	return s
}

// sendAsync sends r through s in a new goroutine; the channel gets its error.
func sendAsync(ctx context.Context, s session.Session, r session.Receipt) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := s.SendReceipt(ctx, r)
		done <- err
	}()
	return done
}

// returned reports whether done has an answer now, and fails the test if it
// is an error.
func returned(t *testing.T, done <-chan error) bool {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SendReceipt: %v", err)
		}
		return true
	default:
		return false
	}
}

// coalescerOf returns the Coalescer in s's chain.
func coalescerOf(t *testing.T, s session.Session) *session.Coalescer {
	t.Helper()
	c, ok := session.As[*session.Coalescer](s)
	if !ok {
		t.Fatalf("no Coalescer in %T's chain", s)
	}
	return c
}

func sentIDs(fake *sessiontest.Fake) [][]string {
	var ids [][]string
	for _, r := range fake.Receipts() {
		ids = append(ids, r.MessageIDs)
	}
	return ids
}

func TestDecorateConformance(t *testing.T) {
	defer goleak.VerifyNone(t)
	tests := []struct {
		name string
		opts session.DecorateOptions
	}{
		{"Nothing", session.DecorateOptions{}},
		{"Coalesce", session.DecorateOptions{Coalesce: &session.CoalesceOptions{}}},
		{"CoalesceMaxBatch=2", session.DecorateOptions{Coalesce: &session.CoalesceOptions{MaxBatch: 2}}},
		{"Dedup", session.DecorateOptions{Dedup: &session.DedupOptions{}}},
		{"Both", session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{},
			Dedup:    &session.DedupOptions{},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
				fake := sessiontest.New()
				d := decorated(t, fake.Registry("conformance"), tc.opts)
				return sessiontest.Harness{
					Session:    lookup(t, d, "conformance"),
					Sent:       fake.Receipts,
					Disconnect: func() { fake.Inject(sessiontest.Fault{Err: session.ErrNotConnected}) },
				}
			})
		})
	}
}

// With nothing to decorate, Decorated is the registry it wraps.
func TestDecorateNothing(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("support")
	d := decorated(t, reg, session.DecorateOptions{IdleTTL: time.Minute})
	if s := lookup(t, d, "support"); s != session.Session(fake.Session("support")) {
		t.Errorf("Lookup = %T %p, want the registry's session", s, s)
	}
	if _, err := d.Lookup(t.Context(), "nobody"); !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("Lookup(nobody) = %v", err)
	}
	if d.Unwrap() != session.Registry(reg) {
		t.Error("Unwrap is not the wrapped registry")
	}
	if st := d.Stats(); st != (session.CoalesceStats{}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestDecorateLookupErrors(t *testing.T) {
	errBoom := errors.New("boom")
	errGone := fmt.Errorf("registry: %w: %q", session.ErrSessionNotFound, "support")
	both := session.DecorateOptions{Coalesce: &session.CoalesceOptions{}, Dedup: &session.DedupOptions{}}
	tests := []struct {
		name    string
		opts    session.DecorateOptions
		s       session.Session
		err     error
		wantErr error // errors.Is
		same    bool  // the very error the registry returned
	}{
		{name: "other error", opts: both, err: errBoom, wantErr: errBoom, same: true},
		{name: "not found", opts: both, err: errGone, wantErr: session.ErrSessionNotFound, same: true},
		{name: "nil session", opts: both, wantErr: session.ErrSessionNotFound},
		{name: "error with a session", opts: both, s: sessiontest.New().Session("x"), err: errBoom, wantErr: errBoom, same: true},
		{name: "nothing decorated: other error", err: errBoom, wantErr: errBoom, same: true},
		{name: "nothing decorated: nil session", wantErr: session.ErrSessionNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := session.RegistryFunc(func(context.Context, string) (session.Session, error) { return tc.s, tc.err })
			d := decorated(t, reg, tc.opts)
			s, err := d.Lookup(t.Context(), "support")
			if s != nil {
				t.Errorf("Lookup returned a session, %T", s)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want one wrapping %v", err, tc.wantErr)
			}
			if tc.same && err != tc.err {
				t.Errorf("err = %#v, want the registry's own %#v", err, tc.err)
			}
		})
	}
}

// A registry that makes a new SessionFunc on every lookup: the receipts of
// the lookups are still coalesced, and the batch goes through the latest one.
func TestDecorateFreshSessionPerLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 10 * time.Millisecond
		fake := sessiontest.New()
		var (
			gen atomic.Int64
			mu  sync.Mutex
			via []int64 // the generation of the SessionFunc of each call
		)
		reg := session.RegistryFunc(func(_ context.Context, name string) (session.Session, error) {
			g := gen.Add(1)
			return session.SessionFunc(func(ctx context.Context, r session.Receipt) (session.Result, error) {
				mu.Lock()
				via = append(via, g)
				mu.Unlock()
				return fake.Session(name).SendReceipt(ctx, r)
			}), nil
		})
		d := decorated(t, reg, session.DecorateOptions{Coalesce: &session.CoalesceOptions{}})
		// A call in flight for window: what comes meanwhile waits for it.
		fake.Inject(sessiontest.Fault{Call: 1, Latency: window})
		held := sendAsync(t.Context(), lookup(t, d, "support"), rcpt(chatA, "", "hold"))
		synctest.Wait()

		var dones []<-chan error
		for _, id := range []string{"A1", "A2", "A3"} {
			dones = append(dones, sendAsync(t.Context(), lookup(t, d, "support"), rcpt(chatA, "", id)))
			synctest.Wait() // joined the batch
		}
		time.Sleep(window)
		synctest.Wait()
		for _, done := range append(dones, held) {
			if !returned(t, done) {
				t.Error("a caller still waits after the call in flight landed")
			}
		}
		if got, want := sentIDs(fake), [][]string{{"hold"}, {"A1", "A2", "A3"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("sent %v, want %v", got, want)
		}
		if want := []int64{1, 4}; !slices.Equal(via, want) {
			t.Errorf("sent through SessionFuncs %v, want %v (the latest)", via, want)
		}
		if st, want := d.Stats(), (session.CoalesceStats{Calls: 4, Sends: 2}); st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}

		// A session looked up earlier sends through the latest one too.
		first := lookup(t, d, "support") // generation 5
		lookup(t, d, "support")          // generation 6
		if _, err := first.SendReceipt(t.Context(), rcpt(chatA, "", "A4")); err != nil {
			t.Fatal(err)
		}
		if want := []int64{1, 4, 6}; !slices.Equal(via, want) {
			t.Errorf("sent through SessionFuncs %v, want %v", via, want)
		}
	})
}

// A registry that replaced the session of a name: the batch waiting goes to
// the new session.
func TestDecorateReplacedSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		reg := session.NewMemoryRegistry()
		reg.Set("support", fake.Session("old"))
		d := decorated(t, reg, session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{},
			Dedup:    &session.DedupOptions{},
		})
		s1 := lookup(t, d, "support")
		fake.Inject(sessiontest.Fault{Call: 1, Latency: 5 * time.Second}) // in flight: A1 and A2 wait for it
		held := sendAsync(t.Context(), s1, rcpt(chatA, "", "hold"))
		synctest.Wait()
		done1 := sendAsync(t.Context(), s1, rcpt(chatA, "", "A1"))
		synctest.Wait()

		reg.Set("support", fake.Session("new"))
		s2 := lookup(t, d, "support")
		done2 := sendAsync(t.Context(), s2, rcpt(chatA, "", "A2"))
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		if !returned(t, held) || !returned(t, done1) || !returned(t, done2) {
			t.Fatal("a caller still waits after the call in flight landed")
		}
		calls := fake.Calls()
		if len(calls) != 2 || calls[1].Session != "new" || !slices.Equal(calls[1].Receipt.MessageIDs, []string{"A1", "A2"}) {
			t.Errorf("calls = %+v, want the held one, then one to new with A1 and A2", calls)
		}
		// The dedup memory is the name's, whichever session is behind it.
		res, err := s1.SendReceipt(t.Context(), rcpt(chatA, "", "A1"))
		if err != nil || !slices.Equal(res.Duplicates, []string{"A1"}) {
			t.Errorf("A1 again = %+v, %v; want it a duplicate", res, err)
		}
	})
}

// When the registry no longer knows a name, its batches go out at once, in
// the Lookup, which waits for the calls in flight, and a later session of
// that name gets fresh decorators.
func TestDecorateNotFoundDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		reg := fake.Registry("support")
		d := decorated(t, reg, session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{},
			Dedup:    &session.DedupOptions{},
		})
		old := lookup(t, d, "support")
		fake.Inject(sessiontest.Fault{Call: 1, Latency: 5 * time.Second}) // in flight: A1 waits for it
		held := sendAsync(t.Context(), old, rcpt(chatA, "", "hold"))
		synctest.Wait()
		done := sendAsync(t.Context(), old, rcpt(chatA, "", "A1"))
		synctest.Wait()

		reg.Remove("support")
		start := time.Now()
		if _, err := d.Lookup(t.Context(), "support"); !errors.Is(err, session.ErrSessionNotFound) {
			t.Fatalf("Lookup after Remove = %v", err)
		}
		synctest.Wait()
		if !returned(t, done) || !returned(t, held) {
			t.Fatal("the batch still waits after the Lookup that found no session")
		}
		if elapsed := time.Since(start); elapsed != 5*time.Second {
			t.Errorf("the Lookup took %v, want the rest of the call in flight", elapsed)
		}
		if got := sentIDs(fake); len(got) != 2 {
			t.Errorf("sent %v, want hold and A1", got)
		}
		start = time.Now()

		// A session looked up before passes receipts straight through: no
		// window, no dedup memory.
		if _, err := old.SendReceipt(t.Context(), rcpt(chatA, "", "A1")); err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed != 0 {
			t.Errorf("the old session waited %v", elapsed)
		}
		if got := sentIDs(fake); len(got) != 3 {
			t.Errorf("sent %v, want A1 twice", got)
		}

		reg.Set("support", fake.Session("support"))
		if c := coalescerOf(t, lookup(t, d, "support")); c == coalescerOf(t, old) {
			t.Error("the name got its dropped Coalescer back")
		}
		if st, want := d.Stats(), (session.CoalesceStats{Calls: 2, Sends: 2}); st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
	})
}

// Decorators unused for IdleTTL are closed and dropped by a later Lookup;
// those a call is in flight through are kept.
func TestDecorateIdleEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		fake := sessiontest.New()
		d := decorated(t, fake.Registry("a", "b"), session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{SendTimeout: time.Hour},
			Dedup:    &session.DedupOptions{},
			IdleTTL:  ttl,
		})
		a1 := lookup(t, d, "a")
		if _, err := a1.SendReceipt(t.Context(), rcpt(chatA, "", "A1")); err != nil {
			t.Fatal(err)
		}
		st1 := d.Stats()

		// Used within the TTL: kept.
		time.Sleep(ttl / 2)
		lookup(t, d, "b")
		if coalescerOf(t, lookup(t, d, "a")) != coalescerOf(t, a1) {
			t.Fatal("dropped before IdleTTL")
		}

		// Unused for longer: the next Lookup of another name drops it.
		time.Sleep(2 * ttl)
		lookup(t, d, "b")
		start := time.Now()
		res, err := a1.SendReceipt(t.Context(), rcpt(chatA, "", "A1"))
		if err != nil || res.Duplicates != nil || time.Since(start) != 0 {
			t.Errorf("A1 through the dropped decorators = %+v, %v after %v; want sent at once", res, err, time.Since(start))
		}
		if st := d.Stats(); st.Calls < st1.Calls || st.Sends < st1.Sends {
			t.Errorf("Stats went backwards: %+v, then %+v", st1, st)
		}

		// A new Lookup builds fresh decorators, with an empty memory.
		a2 := lookup(t, d, "a")
		if coalescerOf(t, a2) == coalescerOf(t, a1) {
			t.Fatal("the name got its dropped Coalescer back")
		}
		res, err = a2.SendReceipt(t.Context(), rcpt(chatA, "", "A1"))
		if err != nil || res.Duplicates != nil || time.Since(start) != 0 {
			t.Errorf("A1 through fresh decorators = %+v, %v after %v; want sent at once", res, err, time.Since(start))
		}

		// A call in flight for longer than the TTL keeps them, and gets its
		// answer.
		slow := fake.Inject(sessiontest.Fault{Session: "a", Latency: 3 * ttl})
		done := sendAsync(t.Context(), a2, rcpt(chatA, "", "A9"))
		time.Sleep(2 * ttl)
		lookup(t, d, "b")
		if coalescerOf(t, lookup(t, d, "a")) != coalescerOf(t, a2) {
			t.Error("dropped with a call in flight")
		}
		time.Sleep(2 * ttl)
		synctest.Wait()
		if !returned(t, done) {
			t.Error("the call in flight did not return")
		}
		if ids := sentIDs(fake); !slices.ContainsFunc(ids, func(ids []string) bool { return slices.Equal(ids, []string{"A9"}) }) {
			t.Errorf("sent %v, want A9 among them", ids)
		}
		if st, want := d.Stats(), (session.CoalesceStats{Calls: 3, Sends: 3}); st != want {
			// A1, A1 again through fresh decorators, A9; not the A1 sent
			// straight through the dropped ones.
			t.Errorf("Stats = %+v, want %+v", st, want)
		}

		// The dropped Coalescer was closed: it passes receipts straight on.
		slow()
		start = time.Now()
		if _, err := coalescerOf(t, a1).SendReceipt(t.Context(), rcpt(chatA, "", "A2")); err != nil || time.Since(start) != 0 {
			t.Errorf("the dropped Coalescer: %v after %v; want it closed", err, time.Since(start))
		}
	})
}

// Close sends the waiting batches at once, without waiting for the calls in
// flight, then waits for every call; afterwards everything passes straight
// through.
func TestDecorateClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		d := session.Decorate(fake.Registry("support"), session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{},
			Dedup:    &session.DedupOptions{},
		})
		old := lookup(t, d, "support")
		fake.Inject(sessiontest.Fault{Chat: chatA, Call: 1, Latency: 5 * time.Second})
		fake.Inject(sessiontest.Fault{Chat: group, Call: 1, Latency: 5 * time.Second})
		dones := []<-chan error{
			sendAsync(t.Context(), old, rcpt(chatA, "", "hold")),
			sendAsync(t.Context(), old, rcpt(group, alice, "hold")),
		}
		synctest.Wait() // in flight: A1 and G1 wait for them
		dones = append(dones,
			sendAsync(t.Context(), old, rcpt(chatA, "", "A1")),
			sendAsync(t.Context(), old, rcpt(group, alice, "G1")))
		synctest.Wait()
		start := time.Now()
		closed := make(chan error, 1)
		go func() { closed <- d.Close(t.Context()) }()
		synctest.Wait()
		if got := len(fake.Receipts()); got != 2 {
			t.Errorf("sent %d receipts while the held calls are in flight, want A1 and G1", got)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if elapsed := time.Since(start); elapsed != 5*time.Second {
			t.Errorf("Close took %v, want the rest of the calls in flight", elapsed)
		}
		synctest.Wait()
		for _, done := range dones {
			if !returned(t, done) {
				t.Error("a caller still waits after Close")
			}
		}
		if got := len(fake.Receipts()); got != 4 {
			t.Errorf("sent %d receipts, want 4", got)
		}
		start = time.Now()

		if s := lookup(t, d, "support"); s != session.Session(fake.Session("support")) {
			t.Errorf("Lookup after Close = %T, want the registry's session", s)
		}
		if _, err := old.SendReceipt(t.Context(), rcpt(chatA, "", "A1")); err != nil || time.Since(start) != 0 {
			t.Errorf("an old session after Close: %v after %v", err, time.Since(start))
		}
		if got := len(fake.Receipts()); got != 5 {
			t.Errorf("sent %d receipts, want 5 (A1 again, no dedup)", got)
		}
		if err := d.Close(t.Context()); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if st, want := d.Stats(), (session.CoalesceStats{Calls: 4, Sends: 4}); st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
	})
}

// Close gives up when ctx ends; a later Close waits for the rest.
func TestDecorateCloseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := sessiontest.New()
		fake.Inject(sessiontest.Fault{Latency: time.Minute})
		d := session.Decorate(fake.Registry("support"), session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{SendTimeout: time.Hour},
		})
		done := sendAsync(t.Context(), lookup(t, d, "support"), rcpt(chatA, "", "A1"))
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want context.DeadlineExceeded", err)
		}
		if returned(t, done) {
			t.Fatal("the caller returned before its batch")
		}
		start := time.Now()
		if err := d.Close(t.Context()); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if elapsed := time.Since(start); elapsed != time.Minute-time.Second {
			t.Errorf("second Close returned after %v, want the rest of the send", elapsed)
		}
		synctest.Wait()
		if !returned(t, done) {
			t.Error("the caller still waits")
		}
		if st, want := d.Stats(), (session.CoalesceStats{Calls: 1, Sends: 1}); st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
	})
}

// The optional interfaces of the registry's latest session are found
// through the decorators.
func TestDecorateAs(t *testing.T) {
	fake := sessiontest.New()
	fake.AddMessage("old", session.Message{Chat: chatA, ID: "A1", Sender: chatA})
	fake.AddMessage("new", session.Message{Chat: chatA, ID: "A2", Sender: chatA})
	reg := session.NewMemoryRegistry()
	reg.Set("support", fake.Session("old"))
	d := decorated(t, reg, session.DecorateOptions{
		Coalesce: &session.CoalesceOptions{},
		Dedup:    &session.DedupOptions{},
	})
	s := lookup(t, d, "support")
	for _, found := range []bool{
		func() bool { _, ok := session.As[*session.Deduper](s); return ok }(),
		func() bool { _, ok := session.As[*session.Coalescer](s); return ok }(),
		func() bool { _, ok := session.As[session.UnreadLister](s); return ok }(),
		func() bool { _, ok := session.As[session.ChatReadMarker](s); return ok }(),
		func() bool { _, ok := session.As[session.StatusReporter](s); return ok }(),
	} {
		if !found {
			t.Error("an interface of the chain was not found")
		}
	}
	resolve := func(id string) error {
		r, ok := session.As[session.Resolver](s)
		if !ok {
			t.Fatal("no Resolver found")
		}
		_, err := r.ResolveMessage(t.Context(), chatA, id)
		return err
	}
	if err := resolve("A1"); err != nil {
		t.Errorf("old session's A1: %v", err)
	}
	reg.Set("support", fake.Session("new"))
	lookup(t, d, "support")
	if err := resolve("A2"); err != nil {
		t.Errorf("new session's A2 through a session looked up before: %v", err)
	}
	if err := resolve("A1"); !errors.Is(err, session.ErrMessageNotFound) {
		t.Errorf("old session's A1 after the replacement: %v, want ErrMessageNotFound", err)
	}
}

// Lookups, sends, sessions removed and put back and idle decorators dropped,
// all at once: every receipt goes out once, and Stats never goes backwards.
func TestDecorateConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			workers, each = 8, 25
			ttl           = 20 * time.Millisecond
		)
		fake := sessiontest.New()
		names := []string{"a", "b", "c"}
		reg := fake.Registry(names...)
		d := session.Decorate(reg, session.DecorateOptions{
			Coalesce: &session.CoalesceOptions{MaxBatch: 5},
			Dedup:    &session.DedupOptions{},
			IdleTTL:  ttl,
		})

		stop := make(chan struct{})
		var bg sync.WaitGroup
		bg.Go(func() { // the registry changes under the handler's feet
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(3 * time.Millisecond):
				}
				name := names[i%len(names)]
				reg.Remove(name)
				time.Sleep(time.Millisecond)
				reg.Set(name, fake.Session(name))
			}
		})
		bg.Go(func() { // Stats never goes backwards
			var last session.CoalesceStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				st := d.Stats()
				if st.Calls < last.Calls || st.Sends < last.Sends {
					t.Errorf("Stats went backwards: %+v, then %+v", last, st)
				}
				last = st
			}
		})

		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					name := names[(w+i)%len(names)]
					r := rcpt(chatA, "", fmt.Sprintf("3EB0%02d%02d", w, i))
					for {
						s, err := d.Lookup(t.Context(), name)
						if errors.Is(err, session.ErrSessionNotFound) {
							time.Sleep(time.Millisecond) // removed for now
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						if _, err := s.SendReceipt(t.Context(), r); err != nil {
							t.Error(err)
						}
						break
					}
					if i%5 == 0 {
						time.Sleep(2 * ttl) // let the decorators go idle
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		bg.Wait()
		if err := d.Close(t.Context()); err != nil {
			t.Errorf("Close: %v", err)
		}

		sent := map[string]int{}
		for _, r := range fake.Receipts() {
			for _, id := range r.MessageIDs {
				sent[id]++
			}
		}
		if len(sent) != workers*each {
			t.Errorf("sent %d distinct ids, want %d", len(sent), workers*each)
		}
		for id, n := range sent {
			if n != 1 {
				t.Errorf("%s sent %d times", id, n)
			}
		}
		if st := d.Stats(); st.Calls > workers*each || st.Sends > st.Calls || st.Sends == 0 {
			t.Errorf("Stats = %+v after %d receipts", st, workers*each)
		}
	})
}
