package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// hooked is a member's devices with hooks: a Release and sends that can
// block, and a look at the world each time the node disconnects every
// session (ReleaseAll).
type hooked struct {
	*devices
	release func(ctx context.Context, name string) error // nil: the world's
	// send runs before the send's fence is checked (a backend looking the
	// message up), write after, as the receipt is being written.
	send, write func(ctx context.Context, name string) error // nil: none
	releaseAll  func()                                       // nil: none; runs before the world's ReleaseAll
	inflight    atomic.Int32                                 // sends in a hook
}

func (h *hooked) Lookup(ctx context.Context, name string) (session.Session, error) {
	s, err := h.devices.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	return &hookedDevice{device: s.(*device), h: h}, nil
}

func (h *hooked) Release(ctx context.Context, name string) error {
	if h.release != nil {
		if err := h.release(ctx, name); err != nil {
			return err
		}
	}
	return h.devices.Release(ctx, name)
}

func (h *hooked) ReleaseAll() {
	if h.releaseAll != nil {
		h.releaseAll()
	}
	h.devices.ReleaseAll()
}

// hookedDevice is a device of a hooked member: its sends run the send
// hook first.
type hookedDevice struct {
	*device
	h *hooked
}

func (s *hookedDevice) SendReceipt(ctx context.Context, r session.Receipt) (session.Result, error) {
	hook := func(f func(context.Context, string) error) error {
		if f == nil {
			return nil
		}
		s.h.inflight.Add(1)
		defer s.h.inflight.Add(-1)
		return f(ctx, s.name)
	}
	if err := hook(s.h.send); err != nil {
		return session.Result{}, err
	}
	if err := session.Fence(ctx); err != nil {
		return session.Result{}, err
	}
	if err := hook(s.h.write); err != nil {
		return session.Result{}, err
	}
	return s.device.write()
}

// startHooked starts a node over h on dsn, alone, and waits until it holds
// every session of the world.
func startHooked(t *testing.T, w *world, dsn, id string, h *hooked) *member {
	t.Helper()
	m := &member{id: id, dev: h.devices}
	m.node, m.srv, _ = serveNode(t, dsn, h, cluster.Config{NodeID: id})
	settle(t, w, []*member{m}, 10*testTTL)
	return m
}

// A node that fences itself lets the sends in flight land first (up to
// half a renewal period): one being written is answered 201 (WAHA's path), its receipt
// sent before the disconnection; one that is cut by it is answered 503
// with a Retry-After (its owner is moving), not 500. And a send still
// looking its message up when the node let the session go (as after a
// stall past the lease) writes nothing: the lease is checked again right
// before the write, and it is answered 503 with a Retry-After.
func TestFenceLetsSendsLand(t *testing.T) {
	dsn := pgtest.New(t)
	w := newWorld(3)
	host := dsn[strings.Index(dsn, "@")+1:]
	host = host[:strings.Index(host, "/")]
	p := newProxy(t, host)
	defer p.cut.Store(false) // so that Close reaches the database
	var (
		c            *member
		entered      = make(chan string, 3)
		disconnected = make(chan struct{})
		fenced       sync.Once
		atFence      atomic.Int32
	)
	h := &hooked{devices: &devices{w: w, node: "node-c"}}
	h.releaseAll = func() {
		fenced.Do(func() {
			atFence.Store(h.inflight.Load())
			close(disconnected)
		})
	}
	letGo := func(name string) {
		for c.node.Local(name) { // until the node has let it go
			time.Sleep(time.Millisecond)
		}
	}
	h.send = func(ctx context.Context, name string) error {
		if name == "s02" { // still looking up when the node lets go
			entered <- name
			letGo(name)
		}
		return nil
	}
	h.write = func(ctx context.Context, name string) error {
		if name == "s02" {
			return nil // written at once, if it gets here
		}
		entered <- name
		if name == "s01" { // ends only when cut off
			<-disconnected
			return errors.New("failed to write frame: use of closed network connection")
		}
		letGo(name) // lands once the node has let it go
		return nil
	}
	c = startHooked(t, w, strings.Replace(dsn, "@"+host+"/", "@"+p.ln.Addr().String()+"/", 1), "node-c", h)
	type answer struct {
		status int
		after  string
		body   string
	}
	answers := make(map[string]chan answer)
	for _, name := range w.names {
		ch := make(chan answer, 1)
		answers[name] = ch
		go func() {
			body := fmt.Sprintf(`{"session":%q,"chatId":"15551234567@c.us","messageIds":["3EB0F%s"]}`, name, name)
			resp, err := http.Post(c.srv.URL+"/api/sendSeen", "application/json", strings.NewReader(body))
			if err != nil {
				ch <- answer{body: err.Error()}
				return
			}
			defer resp.Body.Close()
			ch <- answer{status: resp.StatusCode, after: resp.Header.Get("Retry-After")}
		}()
	}
	for range w.names {
		<-entered
	}
	p.cut.Store(true) // node-c cannot renew: it fences itself

	if a := <-answers["s00"]; a.status != 201 {
		t.Errorf("s00, landing during the fence: %d %s, want 201 (WAHA's path)", a.status, a.body)
	}
	if a := <-answers["s01"]; a.status != 503 || a.after == "" {
		t.Errorf("s01, cut by the fence: %d Retry-After %q %s, want 503 with a Retry-After", a.status, a.after, a.body)
	}
	if a := <-answers["s02"]; a.status != 503 || a.after == "" {
		t.Errorf("s02, not yet writing when the node let go: %d Retry-After %q %s, want 503 with a Retry-After", a.status, a.after, a.body)
	}
	if n := atFence.Load(); n != 1 {
		t.Errorf("%d sends in flight when the node disconnected, want 1 (the one that never lands)", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := w.sent["s00"]; len(got) != 1 {
		t.Errorf("s00's receipt sent by %v, want once by node-c", got)
	}
	if got := w.sent["s02"]; len(got) != 0 {
		t.Errorf("s02's receipt sent by %v after node-c let the session go, want never", got)
	}
}
