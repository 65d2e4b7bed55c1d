package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/bluetick/bluetick/session"
)

// The lifecycle of a session in a [Manager] shared with other processes (a
// cluster over one PostgreSQL store): Refresh finds the devices paired
// elsewhere, Acquire connects the sessions this process owns, Release and
// ReleaseAll disconnect them when it must let go. One process alone only
// needs Start, which acquires every paired session.

// defaultConnectConcurrency is how many clients a [Manager] connects at
// once by default (see [WithConnectConcurrency]).
const defaultConnectConcurrency = 64

// loginWait bounds how long Acquire waits for a connected client to log in.
const loginWait = 30 * time.Second

// errReleased says a session was released (Release, ReleaseAll, Close)
// before its connection attempt ended.
var errReleased = errors.New("released before it connected")

// WithConnectConcurrency sets how many clients Start and Acquire connect at
// once, all calls together: each connection is a TLS and Noise handshake
// and a login, a few milliseconds of CPU and a network round trip or
// three. n must be at least 1. Default: 64.
func WithConnectConcurrency(n int) Option {
	return func(o *options) error {
		o.forOpen("WithConnectConcurrency")
		if n < 1 {
			return errors.New("whatsmeow: WithConnectConcurrency: need at least 1")
		}
		o.connects = n
		return nil
	}
}

// gate is a lock that a context can stop waiting for.
type gate chan struct{}

func newGate() gate { return make(gate, 1) }

func (g gate) lock(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g gate) unlock() { <-g }

// get returns the registry's entry for name, or nil.
func (m *Manager) get(name string) *managed {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sessions[name]
}

func notFound(name string) error {
	return fmt.Errorf("%w: %q", session.ErrSessionNotFound, name)
}

// Refresh brings the registry in line with the store, which other
// processes sharing it may have changed since Open: a device with a name in
// bluetick_session that the registry lacks is added (not connected: see
// Acquire); a session whose device has left the store is dropped, and one
// renamed in the store is dropped and added again under its new name (not
// connected). A device without a name yet is being paired by another
// process, which stores its name once paired: a later Refresh adds it.
// Sessions being paired here are kept. It returns the names of all
// sessions, sorted.
func (m *Manager) Refresh(ctx context.Context) ([]string, error) {
	names, err := m.storedNames(ctx)
	if err != nil {
		return nil, err
	}
	devices, err := m.container.GetAllDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("load devices: %w", err)
	}
	present := make(map[string]*store.Device, len(devices))
	for _, dev := range devices {
		present[dev.ID.String()] = dev
	}
	have := make(map[string]bool) // jids in the registry
	for _, ms := range m.list() {
		id := ms.session.device.ID
		if id == nil {
			continue // being paired here
		}
		jid := id.String()
		if present[jid] == nil {
			// GetAllDevices ends its list early, without an error, when
			// its rows stop (ctx ended, a connection lost): only the
			// device's own row, looked up, says it has left.
			dev, err := m.container.GetDevice(ctx, *id)
			if err != nil {
				return nil, fmt.Errorf("load the device of session %q: %w", ms.name, err)
			}
			if dev == nil {
				m.opts.logger.Info("the session's device left the store; it leaves the registry", "session", ms.name)
				m.drop(ms)
				continue
			}
		}
		if name, ok := names[jid]; ok && name != ms.name {
			m.opts.logger.Info("the session was renamed in the store", "session", ms.name, "name", name)
			m.drop(ms)
			continue
		}
		have[jid] = true
	}
	jids := make([]string, 0, len(present))
	for jid := range present {
		jids = append(jids, jid)
	}
	slices.Sort(jids)
	for _, jid := range jids {
		name, ok := names[jid]
		if !ok || have[jid] {
			continue
		}
		if _, err := m.add(name, present[jid]); errors.Is(err, ErrSessionExists) {
			m.opts.logger.Warn("a device's stored name is taken by another session here; not loaded", "session", name, "jid", jid)
		} else if err != nil {
			return nil, err
		}
	}
	return m.Names(), nil
}

// Acquire connects the named sessions, which must be paired:
// [WithConnectConcurrency] at a time, shared with other calls. A session
// not connected by this process (loaded, released, or replaced by another
// connection) gets a fresh whatsmeow client over its device as the store
// holds it now, since another process may have used and changed the
// device's rows meanwhile; one already acquired is left as it is.
//
// Acquire returns once each session has logged in or its first attempt has
// failed, with the failures joined (each names its session). A session that
// failed to reach WhatsApp stays acquired: its client keeps reconnecting in
// the background, answering session.ErrNotConnected meanwhile; one that
// failed otherwise (a refused handshake, a login WhatsApp refused) is not
// acquired, and a later Acquire tries it again. An unknown name fails with
// session.ErrSessionNotFound, and so does a session whose device has left
// the store (it leaves the registry). A session beyond [Manager.Capacity]
// is refused with [ErrCapacity] (logged at Error, an [EventRefused]), not
// connected.
//
// If ctx ends first, Acquire returns ctx's error at once: the sessions whose
// connection had begun go on connecting in the background (Release them if
// they are not wanted), the others are left as they were. A session released
// (Release, ReleaseAll) before its connection attempt ends is not connected.
func (m *Manager) Acquire(ctx context.Context, names ...string) error {
	return m.acquireAll(ctx, false, names)
}

// acquireAll is Acquire; with reuse, a client never connected yet is
// connected as it is, its device as read at Open (Start: no other process
// shares a store it runs alone on).
func (m *Manager) acquireAll(ctx context.Context, reuse bool, names []string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	fence := m.fence
	m.connecting.Add(len(names))
	m.mu.Unlock()
	results := make(chan error, len(names))
	for _, name := range names {
		go func() {
			defer m.connecting.Done()
			err := m.acquire(ctx, name, fence, reuse)
			if err != nil {
				err = fmt.Errorf("session %q: %w", name, err)
			}
			results <- err
		}()
	}
	var errs []error
	for range names {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// acquire connects one session, holding one of the Manager's slots.
func (m *Manager) acquire(ctx context.Context, name string, fence uint64, reuse bool) error {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.life.Done():
		return errClosed
	}
	defer func() { <-m.slots }()
	ms, err := m.renew(ctx, name, fence, reuse)
	if err != nil || ms == nil {
		return err
	}
	return m.connect(ms)
}

// renew replaces name's entry, unless it is acquired, with an acquired one:
// a fresh client over the device as the store holds it now. It returns nil
// when the entry is acquired already.
func (m *Manager) renew(ctx context.Context, name string, fence uint64, reuse bool) (_ *managed, err error) {
	ms := m.get(name)
	if ms == nil {
		return nil, notFound(name)
	}
	if err := ms.gate.lock(ctx); err != nil {
		return nil, err
	}
	defer ms.gate.unlock()
	cur := m.get(name)
	if cur == nil {
		return nil, notFound(name)
	}
	if cur.acquired.Load() {
		return nil, nil
	}
	if reuse && cur.pristine.Load() {
		m.mu.Lock()
		held, capacity := m.heldLocked(), m.Capacity()
		switch {
		case m.closed:
			err = errClosed
		case m.fence != fence:
			err = errReleased
		case held >= capacity: // as for a fresh client below
			err = ErrCapacity
		default:
			cur.acquired.Store(true)
		}
		m.mu.Unlock()
		if err == ErrCapacity {
			return nil, m.refuse(cur, held, capacity)
		}
		if err != nil {
			return nil, err
		}
		return cur, nil
	}
	id := cur.session.device.ID
	if id == nil {
		return nil, fmt.Errorf("%w: the device is not paired", session.ErrNotLoggedIn)
	}
	dev, err := m.container.GetDevice(ctx, *id)
	if err != nil {
		return nil, fmt.Errorf("load the device: %w", err)
	}
	if dev == nil {
		m.opts.logger.Info("the session's device left the store; it leaves the registry", "session", name)
		m.drop(cur)
		return nil, fmt.Errorf("%w: its device left the store", session.ErrSessionNotFound)
	}
	fresh, err := m.newManaged(name, dev, cur.gate)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	held, capacity := m.heldLocked(), m.Capacity()
	switch {
	case m.closed:
		err = errClosed
	case m.sessions[name] != cur:
		err = notFound(name) // logged out or refreshed away meanwhile
	case m.fence != fence:
		err = errReleased // by ReleaseAll
	case held >= capacity:
		err = ErrCapacity
	default:
		fresh.acquired.Store(true)
		m.sessions[name] = fresh
	}
	m.mu.Unlock()
	if err == ErrCapacity {
		err = m.refuse(cur, held, capacity)
	}
	if err != nil {
		fresh.stop()
		return nil, err
	}
	cur.stop() // disconnected already, or never connected
	return fresh, nil
}

// connect connects an acquired entry's client and waits for the outcome of
// its first attempt.
func (m *Manager) connect(ms *managed) error {
	ms.pristine.Store(false)
	err := ms.client.ConnectContext(ms.conn)
	switch {
	case ms.conn.Err() != nil:
		return errReleased
	case errors.Is(err, whatsmeow.ErrAlreadyConnected):
		return nil
	case err != nil:
		// whatsmeow retries network errors itself (ConnectContext
		// returned nil then), not these: let a later Acquire try.
		ms.acquired.Store(false)
		ms.cancel()
		m.opts.logger.Warn("connecting failed", "session", ms.name, "error", err)
		return err
	}
	timer := time.NewTimer(loginWait)
	defer timer.Stop()
	select {
	case err := <-ms.attempt:
		if err != nil {
			m.opts.logger.Warn("connecting failed", "session", ms.name, "error", err)
		}
		return err
	case <-ms.conn.Done():
		return errReleased
	case <-timer.C:
		return fmt.Errorf("not logged in within %v; still trying", loginWait)
	}
}

// Release disconnects the session called name and returns once it is
// disconnected: its client does not reconnect by itself afterwards. The
// session stays in the registry, answering session.ErrNotConnected, until
// Acquire connects it again. An unknown name is an error wrapping
// session.ErrSessionNotFound; ctx bounds the wait for an Acquire or Release
// of the same session in progress.
func (m *Manager) Release(ctx context.Context, name string) error {
	ms := m.get(name)
	if ms == nil {
		return notFound(name)
	}
	if err := ms.gate.lock(ctx); err != nil {
		return err
	}
	defer ms.gate.unlock()
	cur := m.get(name)
	if cur == nil {
		return notFound(name)
	}
	cur.release()
	return nil
}

// releaseGrace is how long release lets Disconnect work before it cancels
// the connection's context.
const releaseGrace = time.Second

// release ends ms's connection for good: no reconnection after it. It
// disconnects the client first: whatsmeow closes the websocket with a close
// handshake (a round trip). If that takes longer than releaseGrace — a
// connection attempt holds the client's lock until its dial or handshake
// ends, or the peer does not answer the close — it cancels the connection's
// context, which ends the attempt, closes the socket at once
// (coder/websocket closes the connection when its read context ends) and
// stops whatsmeow's reconnect loop. Cancelling first would be faster but
// races whatsmeow's read loop (FrameSocket.readPump reads fs.closed, which
// Close writes, unlocked: found by -race). A last Disconnect closes what a
// reconnection racing the first one may have opened.
func (ms *managed) release() {
	ms.acquired.Store(false)
	if ms.session != nil {
		ms.session.quiesce() // nothing of the Session's writes as the socket closes
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ms.client.Disconnect()
	}()
	t := time.NewTimer(releaseGrace)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	ms.cancel()
	<-done
	ms.client.Disconnect()
}

// ReleaseAll disconnects every paired session's client at once, as
// Release does, and returns when all are disconnected: what a process that
// can no longer prove it owns its sessions does (self-fencing). It takes a
// close handshake's round trip, and at most about a second (releaseGrace)
// when WhatsApp does not answer. It does not wait for Acquire or Release
// calls in progress; an Acquire that began before ReleaseAll connects
// nothing afterwards. Sessions being paired are left alone (no other
// process can have their device yet).
func (m *Manager) ReleaseAll() {
	m.mu.Lock()
	m.fence++
	all := make([]*managed, 0, len(m.sessions))
	for _, ms := range m.sessions {
		if ms.session.paired() {
			all = append(all, ms)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, ms := range all {
		ms.acquired.Store(false)
		wg.Go(ms.release)
	}
	wg.Wait()
}
