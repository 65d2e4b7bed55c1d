package cluster

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Devices is what a [Node] needs of the sessions it places: the sessions
// of one process's store. *whatsmeow.Manager implements it.
type Devices interface {
	session.Registry
	// Refresh loads the sessions that appeared in the shared store since
	// the last call (paired by another process), drops those whose device
	// is gone, and returns every name, sorted. It connects nothing.
	Refresh(ctx context.Context) ([]string, error)
	// Acquire connects the named sessions, re-reading their devices from
	// the store; it returns when each has connected or failed once.
	Acquire(ctx context.Context, names ...string) error
	// Release disconnects the named session and returns once it is
	// disconnected; it does not reconnect until acquired again.
	Release(ctx context.Context, name string) error
	// ReleaseAll disconnects every session now (self-fencing).
	ReleaseAll()
}

// capacity is how many sessions dev can hold connected: its Capacity()
// int method's answer if it has one (the whatsmeow Manager's descriptor
// budget), else no limit.
func capacity(dev Devices) int {
	if c, ok := dev.(interface{ Capacity() int }); ok {
		return c.Capacity()
	}
	return math.MaxInt32
}

// Defaults of [Config].
const (
	// DefaultLeaseTTL is how long a lease lives without renewal: a dead
	// node's sessions are free that long after its last renewal.
	DefaultLeaseTTL = 8 * time.Second
	// DefaultRenew is how often a node renews its leases and heartbeat and
	// revisits the placement.
	DefaultRenew = time.Second
	// DefaultConnectEstimate is what a Retry-After counts for connecting a
	// session once its new owner has its lease.
	DefaultConnectEstimate = 2 * time.Second
)

// handOverDrain bounds how long a hand-over waits for the session's sends
// in flight before it disconnects.
const handOverDrain = 5 * time.Second

// nodeIDPattern is what a node id may look like (a host name does).
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// Config configures a [Node]. NodeID is required; the zero value of every
// other field is its default.
type Config struct {
	// NodeID names this process among the nodes, e.g. its host name. Two
	// live processes cannot share one: Start waits for an earlier process
	// with this id to be gone (its heartbeat to expire), up to LeaseTTL.
	NodeID string
	// Advertise is the base URL at which the other nodes reach this
	// process's handler, e.g. "http://10.0.0.5:8080" (a forwarded request
	// keeps its path). Empty: requests are not forwarded to this node.
	Advertise string
	// Secret authenticates the nodes to each other: the first node of the
	// database records a proof of it, and [Open] refuses (ErrSecret) a
	// node whose secret does not match; each node row carries an HMAC
	// under it, and a row without (written by anything but a node with the
	// secret) is no member: nothing is placed on it or sent to it; each
	// forwarded request carries an HMAC-SHA256 of itself, and each answer
	// to one a seal (see [Node.Wrap]). Every node must have the same.
	// Empty: this node forwards nothing, and a request for a session
	// another node owns gets 503 session_not_connected; membership is
	// then the database's alone.
	Secret []byte
	// LeaseTTL is how long a lease lives unrenewed, which bounds a
	// failover (see the package documentation). Default: [DefaultLeaseTTL]
	// (8 s); at least 3 × Renew.
	LeaseTTL time.Duration
	// Renew is the period of the heartbeat, the renewals and the
	// placement. Default: [DefaultRenew] (1 s).
	Renew time.Duration
	// ConnectEstimate is what a Retry-After counts for connecting a session
	// once its new owner has its lease. Default: [DefaultConnectEstimate]
	// (2 s).
	ConnectEstimate time.Duration
	// Client forwards requests to their owners. A request forwarded for
	// the handler waits for the owner no longer than the handler's
	// deadline, less a tenth of the time left (at most a second), so that
	// a hung owner's callers get a 503 in time. Default: a client with a
	// 30 s timeout.
	Client *http.Client
	// Logger logs the node's decisions (ownership changes at Info, fencing
	// and lost leases at Error). Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if !nodeIDPattern.MatchString(c.NodeID) {
		return c, fmt.Errorf("cluster: NodeID %q: want 1 to 128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit", c.NodeID)
	}
	if c.Advertise != "" {
		u, err := url.Parse(c.Advertise)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("cluster: Advertise %q: want an http:// or https:// URL", c.Advertise)
		}
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Renew == 0 {
		c.Renew = DefaultRenew
	}
	if c.ConnectEstimate == 0 {
		c.ConnectEstimate = DefaultConnectEstimate
	}
	if c.Renew < 0 || c.LeaseTTL < 3*c.Renew || c.ConnectEstimate < 0 {
		return c, errors.New("cluster: need 0 < Renew, 3 × Renew <= LeaseTTL, 0 <= ConnectEstimate")
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// fenceAfter is how long after sending a renewal that succeeded a node
// still serves its sessions: two renewal periods short of the lease's
// life, so that it has disconnected them before anyone else may take them.
func (c Config) fenceAfter() time.Duration { return c.LeaseTTL - 2*c.Renew }

// Node is one process of a cluster: it implements session.Registry,
// session.Lister and seenhandler.Forwarder over the sessions of its
// [Devices], serving those it owns and forwarding the others to their
// owners. It is safe for concurrent use.
type Node struct {
	cfg         Config
	db          *sql.DB
	dev         Devices
	incarnation string

	life    context.Context
	endLife context.CancelFunc
	loops   sync.WaitGroup
	renewed chan struct{} // a renewal succeeded: the watchdog re-arms

	// acquiring is cancelled when the node fences itself, so that a
	// connect under way does not outlive the leases.
	acquireMu     sync.Mutex
	acquiring     context.Context
	stopAcquiring context.CancelFunc

	mu         sync.RWMutex
	started    bool
	closed     bool
	held       map[string]int64 // leases held: session name → epoch
	validUntil time.Time        // serve held sessions until then (fencing)
	fences     uint64           // counts the fences: a hand-over that failed gives its session back only if none came between
	view       view             // the last snapshot of the cluster
	// inflight counts the sends under way per session (see local);
	// landed is signalled when a count drops to 0.
	flightMu sync.Mutex
	inflight map[string]int
	landed   *sync.Cond

	// suspects are nodes a forwarded request could not reach, until when
	// they count as gone (their sessions as ownerless).
	suspects map[string]time.Time
	// ownerless are the sessions the lease table said nobody serves,
	// lately.
	ownerless ownerless
	// nonces are those of the forwarded requests accepted lately.
	nonces nonces
	// Refusals, each logged at Error once a period.
	untrustedRows, refusedRequests, unsealedAnswers logCounter
}

// view is a snapshot of the cluster's tables, taken each Renew.
type view struct {
	at     time.Time
	nodes  map[string]nodeRow
	leases map[string]leaseRow
	names  []string // the paired sessions, placed on the nodes, sorted
	all    []string // and those being paired here, sorted
}

type nodeRow struct {
	id, url  string
	capacity int
}

type leaseRow struct {
	node    string
	epoch   int64
	status  string
	live    bool
	remains time.Duration
}

// A Node is also a seenhandler.Forwarder (Forward): the match is
// structural, so that the cluster does not import the handler above it;
// the tests assert it.
var (
	_ session.Registry = (*Node)(nil)
	_ session.Lister   = (*Node)(nil)
)

// Open prepares a node of the cluster whose coordinator is the PostgreSQL
// database at dsn (a postgres:// URL: the same database as the sessions'
// store). It opens a small connection pool of its own, so that a busy
// store cannot starve the renewals, and creates its tables. Nothing is
// connected until Start. The program registers the database/sql driver
// "pgx" itself, database/sql style (import _ "github.com/jackc/pgx/v5/stdlib"):
// the package links no driver; without it Open fails saying so.
func Open(ctx context.Context, dsn string, dev Devices, cfg Config) (*Node, error) {
	if dev == nil {
		return nil, errors.New("cluster: nil Devices")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(sql.Drivers(), "pgx") {
		return nil, errors.New(`cluster: open the coordinator: no database/sql driver "pgx" is registered: import _ "github.com/jackc/pgx/v5/stdlib" in the program`)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("cluster: open the coordinator: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := createSchema(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := checkSecret(ctx, db, cfg.Secret); err != nil {
		db.Close()
		if errors.Is(err, ErrSecret) {
			cfg.Logger.Error("cluster: this node's secret is not the cluster's: it does not join", "node", cfg.NodeID, "error", err)
		}
		return nil, err
	}
	n := &Node{cfg: cfg, db: db, dev: dev, incarnation: rand.Text(),
		renewed: make(chan struct{}, 1), held: make(map[string]int64), inflight: make(map[string]int)}
	n.landed = sync.NewCond(&n.flightMu)
	n.life, n.endLife = context.WithCancel(context.Background())
	n.acquiring, n.stopAcquiring = context.WithCancel(n.life)
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Start registers the node (waiting, up to LeaseTTL, for an earlier
// process with its id to be gone), takes its share of the sessions and
// connects them, then keeps the placement up to date in the background
// until Close.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started || n.closed {
		n.mu.Unlock()
		return errors.New("cluster: Start called twice, or after Close")
	}
	n.started = true
	n.mu.Unlock()
	if err := n.register(ctx); err != nil {
		return err
	}
	if err := n.place(ctx); err != nil {
		n.cfg.Logger.Warn("cluster: the first placement failed; retrying in the background", "error", err)
	}
	n.loops.Add(3)
	go n.renewLoop()
	go n.placeLoop()
	go n.watchdog()
	return nil
}

// register heartbeats until this incarnation holds the node id.
func (n *Node) register(ctx context.Context) error {
	deadline := time.Now().Add(n.cfg.LeaseTTL + n.cfg.Renew)
	for {
		sent := time.Now()
		ok, err := n.heartbeat(ctx)
		if err != nil {
			return fmt.Errorf("cluster: register node %q: %w", n.cfg.NodeID, err)
		}
		if ok {
			n.markRenewed(sent)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: node id %q is used by another live process", n.cfg.NodeID)
		}
		n.cfg.Logger.Warn("cluster: another process holds this node id; waiting for its heartbeat to expire", "node", n.cfg.NodeID)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(n.cfg.Renew):
		}
	}
}

// closeTimeout bounds how long Close hands the sessions over before it
// disconnects those left.
const closeTimeout = 10 * time.Second

// Close hands the node's sessions over: it disconnects them, then frees
// their leases so that the other nodes take them at once, and leaves the
// membership. The sessions are handed over concurrently, each as soon as
// its sends in flight have landed; those not released in time (an Acquire
// or Release of theirs still holding them, say) are disconnected all at
// once before this node's leases may expire, as the watchdog would, and
// their leases are freed after, or left to expire: never is a client left
// connected without its lease. It does not close the Devices.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.endLife()
	n.loops.Wait()
	// Taken once the loops have stopped: a hand-over of the placement
	// that could not release its session gave it back.
	n.mu.Lock()
	held := n.held
	n.held = make(map[string]int64)
	validUntil := n.validUntil
	n.mu.Unlock()
	// Nothing renews the leases now, and the watchdog has stopped: every
	// session must be disconnected by validUntil, when another node may
	// take its lease. The hand-overs end a renewal period before, which
	// leaves that for the disconnection of what they did not release.
	handOverFor := min(time.Until(validUntil)-n.cfg.Renew, closeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), max(handOverFor, 0))
	defer cancel()
	var (
		mu    sync.Mutex
		errs  []error
		stuck = map[string]int64{} // not released: still connected
		wg    sync.WaitGroup
	)
	for name, epoch := range held {
		wg.Go(func() {
			released, err := n.handOver(ctx, name, epoch)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if !released {
				stuck[name] = epoch
			}
		})
	}
	wg.Wait()
	if len(stuck) > 0 {
		n.cfg.Logger.Error("cluster: closing, some sessions were not handed over in time; disconnecting every session",
			"node", n.cfg.NodeID, "sessions", sortedKeys(stuck))
		n.dev.ReleaseAll()
		// Disconnected now: their leases may go. A database too slow for
		// that leaves them to expire.
		fctx, fcancel := context.WithTimeout(context.Background(), n.cfg.Renew)
		for _, name := range sortedKeys(stuck) {
			if err := n.free(fctx, name, stuck[name]); err != nil {
				errs = append(errs, fmt.Errorf("%w (disconnected; the lease will expire)", err))
			}
		}
		fcancel()
	}
	lctx, lcancel := context.WithTimeout(context.Background(), closeTimeout)
	defer lcancel()
	if _, err := n.db.ExecContext(lctx, `DELETE FROM bluetick_node WHERE id = $1 AND incarnation = $2`, n.cfg.NodeID, n.incarnation); err != nil {
		errs = append(errs, fmt.Errorf("leave the membership: %w", err))
	}
	errs = append(errs, n.db.Close())
	return errors.Join(errs...)
}

// handOver gives up the session called name, which this node no longer
// serves (no new send enters): it waits for the sends in flight (up to
// handOverDrain, or ctx's deadline), then disconnects the session, then
// frees its lease (taken at epoch), so that another node may connect it
// at once. It reports whether the session was released: when it cannot
// be, its lease is kept, to expire on its own, and the caller must
// disconnect it otherwise.
func (n *Node) handOver(ctx context.Context, name string, epoch int64) (released bool, err error) {
	wait := handOverDrain
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline))
	}
	n.drain(wait, func() bool { return n.inflight[name] > 0 })
	if err := n.dev.Release(ctx, name); errors.Is(err, session.ErrSessionNotFound) {
		return true, n.free(ctx, name, epoch) // gone from the store: nothing to disconnect
	} else if err != nil {
		return false, fmt.Errorf("release %q: %w", name, err)
	}
	return true, n.free(ctx, name, epoch)
}

// serving reports whether this node serves name now: it holds its lease
// and has renewed recently enough.
func (n *Node) serving(name string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	_, ok := n.held[name]
	return ok && time.Now().Before(n.validUntil)
}

// Local reports whether this node's worker delivers the queued receipts of
// the session called name now (seenhandler/queue's Options.Local): those of
// the sessions it serves, and those of a session whose device has left the
// store (see orphaned), so that they fail at once as session_not_found, as
// on a single process, instead of waiting for an owner that never comes.
func (n *Node) Local(name string) bool { return n.serving(name) || n.orphaned(name) }

// Owner returns the id of the node that holds the lease of the session
// called name, as of the last snapshot, and whether one does.
func (n *Node) Owner(name string) (string, bool) {
	if n.serving(name) {
		return n.cfg.NodeID, true
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	l, ok := n.view.leases[name]
	if !ok || !l.live || !n.alive(l.node) {
		return "", false
	}
	return l.node, true
}

// alive reports whether node heartbeats and was not found unreachable
// lately; n.mu must be held.
func (n *Node) alive(node string) bool {
	if _, ok := n.view.nodes[node]; !ok {
		return false
	}
	until, ok := n.suspects[node]
	return !ok || time.Now().After(until)
}

// suspect counts node as gone for two renewal periods: a request could not
// reach it.
func (n *Node) suspect(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.suspects == nil {
		n.suspects = make(map[string]time.Time)
	}
	n.suspects[node] = time.Now().Add(2 * n.cfg.Renew)
}

// Held returns the names of the sessions this node holds, sorted.
func (n *Node) Held() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return sortedKeys(n.held)
}

// retryAfter is how long a client should wait for the session called name
// to have an owner again: what remains of a lease nobody renews, then a
// placement round and a connect.
func (n *Node) retryAfter(name string) time.Duration {
	n.mu.RLock()
	defer n.mu.RUnlock()
	d := n.cfg.Renew + n.cfg.ConnectEstimate
	if l, ok := n.view.leases[name]; ok && l.live {
		d += l.remains
	}
	return d
}
