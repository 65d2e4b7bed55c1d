package whatsmeow

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	signallog "go.mau.fi/libsignal/logger"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"golang.org/x/time/rate"

	"github.com/bluetick/bluetick/session"
)

// ErrSessionExists is returned when pairing a name already in use.
var ErrSessionExists = errors.New("a session with this name exists")

// errClosed is returned when pairing with a closed [Manager].
var errClosed = errors.New("whatsmeow: the manager is closed")

// namePattern is what a session name may look like.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Manager runs one [Session] per device of a whatsmeow store and finds them
// by name: it implements session.Registry. Names live in a table of their
// own (bluetick_session) in the same database, removed with the device
// when WhatsApp logs it out. It is safe for concurrent use.
type Manager struct {
	db        *sql.DB
	lock      *os.File // a SQLite store's lock (see ErrStoreInUse), or nil
	dialect   string   // whatsmeow's name: "sqlite" or "postgres"
	container *sqlstore.Container
	opts      options
	chatReads *rate.Limiter // the sessions' chat-read patch budget (WithChatReadRate); nil: none

	// life ends when Close begins: it stops the pairings that retry in
	// the background (pairing, which Close waits for).
	life    context.Context
	endLife context.CancelFunc
	pairing sync.WaitGroup

	// slots bounds the connects in flight (WithConnectConcurrency).
	slots chan struct{}
	// The message index of the sessions: its table in the store, and the
	// memory cache in front of it that they share.
	messages *messageStore
	cache    *index
	owners   atomic.Int64 // numbers the sessions' messages in cache
	// reserve is the descriptors left to all but sessions (WithFDReserve).
	reserve int
	// arrivalSubs are the subscribers of SubscribeArrivals.
	arrivalMu   sync.Mutex
	arrivalSubs map[int]func(string, session.Arrival)
	arrivalNext int

	mu       sync.RWMutex
	closed   bool
	sessions map[string]*managed
	// fence counts the calls of ReleaseAll: an Acquire that began before
	// one does not connect after it.
	fence uint64
	// retiring counts the goroutines stopping dropped sessions, and
	// connecting those connecting acquired sessions; Close waits for them.
	retiring   sync.WaitGroup
	connecting sync.WaitGroup
}

var _ session.Registry = (*Manager)(nil)

// managed is the registry's entry for a session: its client and [Session].
// They are never swapped: Acquire replaces a released entry with a new one
// (a fresh client over the device as the store has it now), sharing gate.
type managed struct {
	name    string
	client  *whatsmeow.Client
	session *Session
	// gate serialises Acquire and Release of the name; the entries that
	// replace one another share it.
	gate gate
	// conn is the context the client connects under: its socket and
	// whatsmeow's reconnect loop end with it. Release and stop cancel it.
	conn   context.Context
	cancel context.CancelFunc
	// acquired: Acquire connected the client (or is connecting it) and
	// neither Release nor a replaced stream has stopped it since.
	acquired atomic.Bool
	// pristine: the client was never connected (Start connects it as it
	// is, rather than a fresh one).
	pristine atomic.Bool
	// attempt receives the outcome of the client's first connection
	// attempt: nil once logged in, or why it failed.
	attempt chan error
}

// WithDBPool sets the store's connection pool; see [DBPool] for the
// defaults of its zero fields. A negative field, or MaxIdle above MaxOpen,
// is an error of Open.
func WithDBPool(p DBPool) Option {
	return func(o *options) error {
		o.forOpen("WithDBPool")
		d := p.withDefaults()
		if p.MaxOpen < 0 || p.MaxIdle < 0 || d.MaxIdle > d.MaxOpen || p.MaxLifetime < 0 || p.MaxIdleTime < 0 {
			return errors.New("whatsmeow: WithDBPool: negative field, or MaxIdle above MaxOpen")
		}
		o.pool = p
		return nil
	}
}

// Defaults of [WithPairRetry].
const (
	// defaultPairRetry is Pair's wait after its first failed attempt
	// to reach WhatsApp; each further failure doubles it.
	defaultPairRetry = 2 * time.Second
	// defaultMaxPairRetry is Pair's longest wait between attempts.
	defaultMaxPairRetry = MaxReconnectWait
)

// WithPairRetry sets how Pair waits between its attempts to reach
// WhatsApp: first after the first failure, doubling after each further one
// up to max. first must be positive and max at least first. Default:
// 2 s and 30 s.
func WithPairRetry(first, max time.Duration) Option {
	return func(o *options) error {
		o.forOpen("WithPairRetry")
		if first <= 0 || max < first {
			return errors.New("whatsmeow: WithPairRetry: need 0 < first <= max")
		}
		o.pairFirst, o.pairMax = first, max
		return nil
	}
}

// WithClientHook calls hook on each whatsmeow client before it connects,
// e.g. to set a proxy; nil is an error. Default: none.
func WithClientHook(hook func(name string, c *whatsmeow.Client)) Option {
	return func(o *options) error {
		o.forOpen("WithClientHook")
		if hook == nil {
			return errors.New("whatsmeow: WithClientHook: nil hook")
		}
		o.clientHook = hook
		return nil
	}
}

// settleSignalLogger makes libsignal set its package logger, which it
// otherwise sets on first use without a lock: the first handshakes of a
// Manager's sessions, connecting in parallel in Start, raced on it (-race
// reported it in a fresh process).
var settleSignalLogger sync.Once

// Open opens the store at dsn (empty: "bluetick.db"; "postgres://…" for
// PostgreSQL, otherwise a SQLite file path or "file:" URI), brings its
// schema up to date, and prepares a [Session] for every stored device. The
// clients are not connected until Start. It raises the process's soft
// limit on open descriptors to the hard one (see [Manager.Capacity]). The
// program registers the database/sql driver ("sqlite" of
// modernc.org/sqlite, "pgx" of github.com/jackc/pgx/v5/stdlib) with a
// blank import; without it Open fails naming the import. opts configure
// the Manager and every session it runs.
func Open(ctx context.Context, dsn string, opts ...Option) (*Manager, error) {
	o, err := newOptions(managerDefaults(), opts)
	if err != nil {
		return nil, err
	}
	raiseFDLimit()
	settleSignalLogger.Do(func() { signallog.Debug() })
	st, err := openDB(ctx, dsn, o.pool)
	if err != nil {
		return nil, err
	}
	m := &Manager{db: st.db, dialect: st.dialect, lock: st.lock, opts: o, sessions: make(map[string]*managed), slots: make(chan struct{}, o.connects),
		reserve: o.reserve(st.dialect), cache: newIndex(o.cacheSize)}
	if o.chatReadRate > 0 { // +Inf: a limiter that never waits
		m.chatReads = rate.NewLimiter(rate.Limit(o.chatReadRate), o.chatReadBurst)
	}
	m.life, m.endLife = context.WithCancel(context.Background())
	if err := m.load(ctx, st.dialect); err != nil {
		if m.messages != nil {
			m.messages.close()
		}
		st.close()
		return nil, err
	}
	return m, nil
}

const createNames = `CREATE TABLE IF NOT EXISTS bluetick_session (
	name TEXT PRIMARY KEY,
	jid  TEXT NOT NULL UNIQUE REFERENCES whatsmeow_device(jid) ON DELETE CASCADE ON UPDATE CASCADE
)`

func (m *Manager) load(ctx context.Context, dialect string) error {
	c, err := newContainer(ctx, m.db, dialect, newWALogger(m.opts.logger, "whatsmeow/store"))
	if err != nil {
		return err
	}
	m.container = c
	if _, err := m.db.ExecContext(ctx, createNames); err != nil {
		return fmt.Errorf("create bluetick_session: %w", err)
	}
	if m.messages, err = newMessageStore(ctx, m.db, m.opts.retention, m.opts.logger); err != nil {
		return err
	}
	names, err := m.storedNames(ctx)
	if err != nil {
		return err
	}
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	stored := make(map[string]bool, len(names)) // names taken in the store
	for _, name := range names {
		stored[name] = true
	}
	for _, dev := range devices {
		jid := dev.ID.String()
		name, ok := names[jid]
		if !ok {
			name = m.freeName(dev.ID.User, stored)
			stored[name] = true
			if err := m.saveName(ctx, name, *dev.ID); err != nil {
				return err
			}
		}
		if _, err := m.add(name, dev); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) storedNames(ctx context.Context) (map[string]string, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT name, jid FROM bluetick_session`)
	if err != nil {
		return nil, fmt.Errorf("read session names: %w", err)
	}
	defer rows.Close()
	names := make(map[string]string) // jid → name
	for rows.Next() {
		var name, jid string
		if err := rows.Scan(&name, &jid); err != nil {
			return nil, fmt.Errorf("read session names: %w", err)
		}
		names[jid] = name
	}
	return names, rows.Err()
}

func (m *Manager) saveName(ctx context.Context, name string, jid types.JID) error {
	_, err := m.db.ExecContext(ctx,
		`INSERT INTO bluetick_session (name, jid) VALUES ($1, $2) ON CONFLICT (jid) DO UPDATE SET name = excluded.name`,
		name, jid.String())
	if err != nil {
		return fmt.Errorf("save session name %q: %w", name, err)
	}
	return nil
}

// freeName returns base, or base-2, base-3… if taken by a session in
// memory or by a name in the store (another device's, which may not be
// loaded yet).
func (m *Manager) freeName(base string, stored map[string]bool) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	name := base
	for i := 2; m.sessions[name] != nil || stored[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// add creates the client and [Session] for dev under name, unless the name
// is taken.
func (m *Manager) add(name string, dev *store.Device) (*managed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	if _, taken := m.sessions[name]; taken {
		return nil, fmt.Errorf("%w: %q", ErrSessionExists, name)
	}
	ms, err := m.newManaged(name, dev, newGate())
	if err != nil {
		return nil, err
	}
	m.sessions[name] = ms
	return ms, nil
}

// newManaged creates the client and [Session] of an entry for dev, not
// connected and not in the registry.
func (m *Manager) newManaged(name string, dev *store.Device, g gate) (*managed, error) {
	client := whatsmeow.NewClient(dev, newWALogger(m.opts.logger.With("session", name), "whatsmeow"))
	client.EnableAutoReconnect = true
	client.InitialAutoReconnect = true
	if m.opts.clientHook != nil {
		m.opts.clientHook(name, client)
	}
	capReconnectWait(client)
	owner := fmt.Sprint(m.owners.Add(1))
	o := m.opts
	o.logger = m.opts.logger.With("session", name)
	_ = withStore(m.messages, m.cache, owner)(&o)
	o.chatReadBudget = m.chatReads
	sess := newSession(client, dev, o)
	sess.OnArrival(func(a session.Arrival) { m.arrived(name, a) })
	ms := &managed{name: name, client: client, session: sess, gate: g, attempt: make(chan error, 1)}
	ms.pristine.Store(true)
	// Not under m.life: Close disconnects before it cancels (see release).
	ms.conn, ms.cancel = context.WithCancel(context.Background())
	client.AddEventHandler(func(evt any) { m.handleEvent(ms, evt) })
	return ms, nil
}

// MaxReconnectWait is the longest a [Manager]'s client waits between two
// attempts to reconnect. whatsmeow waits 2 s × the number of failed
// attempts, without bound: after an hour offline it would wait minutes
// before trying again.
const MaxReconnectWait = 30 * time.Second

// capReconnectWait bounds whatsmeow's reconnection wait by
// [MaxReconnectWait]: after each failed attempt (AutoReconnectHook, called
// from the reconnecting goroutine itself) it lowers the failure count that
// the next wait is computed from. A hook set by [WithClientHook] still runs.
func capReconnectWait(client *whatsmeow.Client) {
	const maxSteps = int(MaxReconnectWait / (2 * time.Second))
	next := client.AutoReconnectHook
	client.AutoReconnectHook = func(err error) bool {
		if client.AutoReconnectErrors > maxSteps {
			client.AutoReconnectErrors = maxSteps
		}
		return next == nil || next(err)
	}
}

func (m *Manager) handleEvent(ms *managed, evt any) {
	switch e := evt.(type) {
	case *events.PairSuccess:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.saveName(ctx, ms.name, e.ID); err != nil {
			m.opts.logger.Error("saving the paired session's name failed", "session", ms.name, "error", err)
		}
	case *events.LoggedOut:
		m.opts.logger.Warn("session logged out by WhatsApp; it leaves the registry", "session", ms.name, "reason", e.Reason.String())
		ms.tell(fmt.Errorf("logged out by WhatsApp (%s)", e.Reason))
		m.observe(ms, EventLoggedOut)
		m.drop(ms)
	case *events.Connected:
		m.opts.logger.Info("session connected", "session", ms.name)
		ms.tell(nil)
		m.observe(ms, EventConnected)
	case *events.Disconnected:
		m.opts.logger.Warn("session disconnected", "session", ms.name)
		ms.tell(errors.New("disconnected before logging in"))
		m.observe(ms, EventDisconnected)
	case *events.ConnectFailure:
		ms.tell(fmt.Errorf("WhatsApp refused the login: %s %s", e.Reason, e.Message))
	case *events.TemporaryBan:
		ms.tell(fmt.Errorf("temporarily banned: %s", e))
	case *events.ClientOutdated:
		ms.tell(errors.New("WhatsApp says the client is outdated"))
	case *events.StreamReplaced:
		// whatsmeow does not reconnect after this, but leaves the socket
		// open to the server, and a close right behind the stream error
		// can reach it first (then it reconnects at once): releasing the
		// client closes the socket and ends any reconnection.
		m.opts.logger.Error("WhatsApp replaced the session's connection with another of its device (another process or tool uses it); not reconnecting", "session", ms.name)
		ms.acquired.Store(false)
		m.retire(ms.release)
		ms.tell(errors.New("replaced by another connection of the device"))
		m.observe(ms, EventReplaced)
	}
}

// tell hands the outcome of a connection attempt to an Acquire waiting for
// it; later outcomes are dropped.
func (ms *managed) tell(err error) {
	select {
	case ms.attempt <- err:
	default:
	}
}

// drop removes ms from the registry and stops its [Session] and client, in
// a goroutine that Close waits for: drop runs inside the client's own event
// dispatch (events.LoggedOut), which holds the lock that RemoveEventHandler
// (called by [Session.Close]) needs, so closing there would deadlock the
// client's event dispatch for good. Whoever takes ms out of the registry
// stops it, once: drop after Close does nothing.
func (m *Manager) drop(ms *managed) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[ms.name] != ms {
		return
	}
	delete(m.sessions, ms.name)
	m.retireLocked(ms.stop)
}

// retire runs f in a goroutine that Close waits for: from inside the
// client's event dispatch, what may wait on the client. Once the Manager
// is closed it does nothing (Close stops every session itself).
func (m *Manager) retire(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.retireLocked(f)
	}
}

func (m *Manager) retireLocked(f func()) {
	m.retiring.Add(1)
	go func() {
		defer m.retiring.Done()
		f()
	}()
}

// stop disconnects ms's client, then closes its session. In that order:
// whatsmeow answers the queries in flight when it disconnects (under its
// lock), whereas a query whose context is cancelled (as Session.Close
// cancels its background work) can race whatsmeow's delivery of the answer
// (request.go: cancelResponse closes the channel receiveResponse may be
// sending on).
func (ms *managed) stop() {
	ms.release()
	ms.session.Close()
}

// Start connects every paired session's client, as Acquire of them all:
// [WithConnectConcurrency] at a time. A client that cannot reach WhatsApp
// keeps retrying in the background; its session answers
// session.ErrNotConnected meanwhile. A session beyond [Manager.Capacity]
// is refused with [ErrCapacity] (logged at Error, an [EventRefused]), not
// connected, as by Acquire. Start only fails if ctx ends; the
// connections do not end with ctx.
func (m *Manager) Start(ctx context.Context) error {
	var names []string
	for _, ms := range m.list() {
		if ms.session.paired() {
			names = append(names, ms.name)
		}
	}
	err := m.acquireAll(ctx, true, names)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if err != nil {
		m.opts.logger.Warn("connecting failed", "error", err)
	}
	return nil
}

func (m *Manager) list() []*managed {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*managed, 0, len(m.sessions))
	for _, ms := range m.sessions {
		out = append(out, ms)
	}
	slices.SortFunc(out, func(a, b *managed) int { return cmp.Compare(a.name, b.name) })
	return out
}

// Lookup returns the session called name, or an error wrapping
// session.ErrSessionNotFound. A session being paired is found too; it
// answers session.ErrNotLoggedIn until pairing succeeds.
func (m *Manager) Lookup(_ context.Context, name string) (session.Session, error) {
	m.mu.RLock()
	ms, ok := m.sessions[name]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", session.ErrSessionNotFound, name)
	}
	return ms.session, nil
}

// Names returns the sessions' names, sorted.
func (m *Manager) Names() []string {
	var names []string
	for _, ms := range m.list() {
		names = append(names, ms.name)
	}
	return names
}

// Client returns the whatsmeow client of the session called name, for
// what bluetick does not do itself.
func (m *Manager) Client(name string) (*whatsmeow.Client, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ms, ok := m.sessions[name]
	if !ok {
		return nil, false
	}
	return ms.client, true
}

// Close stops the pairings that retry in the background, disconnects every
// client, writes the message index's queued writes and closes the store.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	all := m.sessions
	m.sessions = make(map[string]*managed)
	m.mu.Unlock()
	m.endLife()
	m.pairing.Wait()
	var wg sync.WaitGroup
	m.cache.clear() // at once, rather than each session's messages as it closes
	for _, ms := range all {
		wg.Go(ms.stop)
	}
	wg.Wait()
	m.connecting.Wait()
	m.retiring.Wait()
	m.messages.close() // writes what the sessions queued
	err := m.container.Close()
	if m.lock != nil {
		err = errors.Join(err, m.lock.Close())
	}
	return err
}

var _ session.ArrivalSource = (*Manager)(nil)

// SubscribeArrivals implements session.ArrivalSource: f is called with
// the session's name for each message its sessions offer for auto-read
// (see [WithAutoRead], given to [Open]), from whatsmeow's
// event dispatch, until stop is called.
func (m *Manager) SubscribeArrivals(f func(name string, a session.Arrival)) (stop func()) {
	m.arrivalMu.Lock()
	defer m.arrivalMu.Unlock()
	if m.arrivalSubs == nil {
		m.arrivalSubs = make(map[int]func(string, session.Arrival))
	}
	id := m.arrivalNext
	m.arrivalNext++
	m.arrivalSubs[id] = f
	return func() {
		m.arrivalMu.Lock()
		defer m.arrivalMu.Unlock()
		delete(m.arrivalSubs, id)
	}
}

// arrived hands an arrival of session name to the subscribers.
func (m *Manager) arrived(name string, a session.Arrival) {
	m.arrivalMu.Lock()
	defer m.arrivalMu.Unlock()
	for _, f := range m.arrivalSubs {
		f(name, a)
	}
}
