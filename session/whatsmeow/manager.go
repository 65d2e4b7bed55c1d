package whatsmeow

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

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
	dialect   string // whatsmeow's name: "sqlite" or "postgres"
	container *sqlstore.Container
	opts      managerOptions

	// life ends when Close begins: it stops the pairings that retry in
	// the background (pairing, which Close waits for).
	life    context.Context
	endLife context.CancelFunc
	pairing sync.WaitGroup

	mu       sync.RWMutex
	closed   bool
	sessions map[string]*managed
	// retiring counts the goroutines stopping dropped sessions; Close
	// waits for them.
	retiring sync.WaitGroup
}

var _ session.Registry = (*Manager)(nil)

type managed struct {
	name    string
	client  *whatsmeow.Client
	session *Session
}

// ManagerOption configures a [Manager]; see [Open]. A bad value is an error
// of Open, never clamped silently.
type ManagerOption func(*managerOptions) error

type managerOptions struct {
	logger      *slog.Logger
	sessionOpts []Option
	clientHook  func(name string, c *whatsmeow.Client)
	pairFirst   time.Duration // KeepPairing's first wait
	pairMax     time.Duration // and its longest
	pool        DBPool
}

// WithDBPool sets the store's connection pool; see [DBPool] for the
// defaults of its zero fields. A negative field, or MaxIdle above MaxOpen,
// is an error of Open.
func WithDBPool(p DBPool) ManagerOption {
	return func(o *managerOptions) error {
		d := p.withDefaults()
		if p.MaxOpen < 0 || p.MaxIdle < 0 || d.MaxIdle > d.MaxOpen || p.MaxLifetime < 0 || p.MaxIdleTime < 0 {
			return errors.New("whatsmeow: WithDBPool: negative field, or MaxIdle above MaxOpen")
		}
		o.pool = p
		return nil
	}
}

// WithManagerLogger sets the logger of the [Manager] and of whatsmeow's
// clients (their "module" attribute says which part of whatsmeow speaks).
// nil is an error. Default: discard.
func WithManagerLogger(l *slog.Logger) ManagerOption {
	return func(o *managerOptions) error {
		if l == nil {
			return errors.New("whatsmeow: WithManagerLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithSessionOptions sets the options of every [Session] the [Manager] runs.
// They are checked by Open. Default: none.
func WithSessionOptions(opts ...Option) ManagerOption {
	return func(o *managerOptions) error {
		o.sessionOpts = append(o.sessionOpts, opts...)
		_, err := newOptions(o.sessionOpts)
		return err
	}
}

// Defaults of [WithPairRetry].
const (
	// DefaultPairRetry is KeepPairing's wait after its first failed attempt
	// to reach WhatsApp; each further failure doubles it.
	DefaultPairRetry = 2 * time.Second
	// DefaultMaxPairRetry is KeepPairing's longest wait between attempts.
	DefaultMaxPairRetry = MaxReconnectWait
)

// WithPairRetry sets how KeepPairing waits between its attempts to reach
// WhatsApp: first after the first failure, doubling after each further one
// up to max. first must be positive and max at least first. Default:
// [DefaultPairRetry] (2 s) and [DefaultMaxPairRetry] (30 s).
func WithPairRetry(first, max time.Duration) ManagerOption {
	return func(o *managerOptions) error {
		if first <= 0 || max < first {
			return errors.New("whatsmeow: WithPairRetry: need 0 < first <= max")
		}
		o.pairFirst, o.pairMax = first, max
		return nil
	}
}

// WithClientHook calls hook on each whatsmeow client before it connects,
// e.g. to set a proxy; nil is an error. Default: none.
func WithClientHook(hook func(name string, c *whatsmeow.Client)) ManagerOption {
	return func(o *managerOptions) error {
		if hook == nil {
			return errors.New("whatsmeow: WithClientHook: nil hook")
		}
		o.clientHook = hook
		return nil
	}
}

// Open opens the store at dsn (see [DefaultDSN]; "postgres://…" for
// PostgreSQL, otherwise a SQLite file path or "file:" URI), brings its
// schema up to date, and prepares a [Session] for every stored device. The
// clients are not connected until Start.
func Open(ctx context.Context, dsn string, opts ...ManagerOption) (*Manager, error) {
	o := managerOptions{logger: slog.New(slog.DiscardHandler), pairFirst: DefaultPairRetry, pairMax: DefaultMaxPairRetry}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	db, dialect, err := openDB(ctx, dsn, o.pool)
	if err != nil {
		return nil, err
	}
	m := &Manager{db: db, dialect: dialect, opts: o, sessions: make(map[string]*managed)}
	m.life, m.endLife = context.WithCancel(context.Background())
	if err := m.load(ctx, dialect); err != nil {
		db.Close()
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
	client := whatsmeow.NewClient(dev, newWALogger(m.opts.logger.With("session", name), "whatsmeow"))
	client.EnableAutoReconnect = true
	client.InitialAutoReconnect = true
	if m.opts.clientHook != nil {
		m.opts.clientHook(name, client)
	}
	capReconnectWait(client)
	sess, err := New(client, dev, m.opts.sessionOpts...)
	if err != nil {
		return nil, err // checked by Open: unreachable
	}
	ms := &managed{name: name, client: client, session: sess}
	client.AddEventHandler(func(evt any) { m.handleEvent(ms, evt) })
	m.sessions[name] = ms
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
		m.drop(ms)
	case *events.Connected:
		m.opts.logger.Info("session connected", "session", ms.name)
	case *events.Disconnected:
		m.opts.logger.Warn("session disconnected", "session", ms.name)
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
	m.retiring.Add(1)
	go func() {
		defer m.retiring.Done()
		ms.stop()
	}()
}

// stop disconnects ms's client, then closes its session. In that order:
// whatsmeow answers the queries in flight when it disconnects (under its
// lock), whereas a query whose context is cancelled (as Session.Close
// cancels its background work) can race whatsmeow's delivery of the answer
// (request.go: cancelResponse closes the channel receiveResponse may be
// sending on).
func (ms *managed) stop() {
	ms.client.Disconnect()
	ms.session.Close()
}

// Start connects every paired session's client. A client that cannot reach
// WhatsApp keeps retrying in the background; its session answers
// session.ErrNotConnected meanwhile. Start only fails if ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	for _, ms := range m.list() {
		if !ms.session.paired() {
			continue
		}
		if err := ms.client.ConnectContext(ctx); err != nil && !errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			m.opts.logger.Warn("connecting failed", "session", ms.name, "error", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
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
// client and closes the store.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	all := m.sessions
	m.sessions = make(map[string]*managed)
	m.mu.Unlock()
	m.endLife()
	m.pairing.Wait()
	for _, ms := range all {
		ms.stop()
	}
	m.retiring.Wait()
	return m.container.Close()
}
