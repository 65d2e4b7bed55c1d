package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mdp/qrterminal/v3"
	"go.mau.fi/whatsmeow"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/sqlqueue"
	"github.com/bluetick/bluetick/seenhandler/ratelimit"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
)

// Defaults of the flags and the environment.
const (
	defaultAddr     = "127.0.0.1:8080"
	defaultSessions = "demo"
	demoToken       = "demo-token"
	tokenEnv        = "BLUETICK_TOKEN"
	// clusterSecretEnv holds the secret of -cluster-secret.
	clusterSecretEnv = "BLUETICK_CLUSTER_SECRET"
	defaultPairName  = "default"
	// demoRecords is how many calls the -demo backend remembers: it keeps
	// the last ones only, so that its memory stays flat however long it runs.
	demoRecords = 1000
	// openAPIPath serves the OpenAPI document, without a token.
	openAPIPath = "/openapi.yaml"
	// defaultMaxConns caps the connections served at once; more wait in
	// the kernel's backlog until one closes.
	defaultMaxConns = 1024
)

// Server timeouts. Writes get the handler's backend timeout plus a margin.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = seenhandler.DefaultTimeout + 5*time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// defaultShutdownTimeout is the default of -shutdown-timeout: the wait
	// for requests in flight, then again for the asynchronous queue.
	defaultShutdownTimeout = 10 * time.Second
)

// errUsage: the flags are wrong; run has already said how. main turns it
// into exit status 2.
var errUsage = errors.New("usage error")

// env is what run talks to; tests substitute their own.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// clientHook, when set, is called on each whatsmeow client before it
	// connects (tests use it to keep clients off the network).
	clientHook func(name string, c *whatsmeow.Client)
	// hup delivers SIGHUP: the -tokens file is reloaded.
	hup <-chan os.Signal
	// term delivers SIGINT and SIGTERM: the first stops the server
	// gracefully (as ctx ending does), a second during the stop cuts it
	// short.
	term <-chan os.Signal
}

func main() {
	term := make(chan os.Signal, 2)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := run(context.Background(), os.Args[1:], env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, hup: hup, term: term})
	signal.Stop(hup)
	signal.Stop(term)
	if code := exitCode(err); code != 0 {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "server:", err)
		}
		os.Exit(code)
	}
}

// exitCode is the process status for run's error: 0 for success and -help,
// 2 for usage errors, 1 otherwise.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

// config is the parsed command line.
type config struct {
	demo     bool
	addr     string
	token    string
	tokens   string // -tokens FILE
	sessions []string
	offline  []string
	verbose  bool
	db       string
	dbGiven  bool // -db or $BLUETICK_DB was set (-demo keeps its queue there)
	pairName string
	phone    string

	sessionRate, tokenRate   float64
	sessionBurst, tokenBurst int
	async                    bool
	asyncMin, asyncMax       time.Duration
	asyncPace, asyncRetry    time.Duration
	shutdownTimeout          time.Duration
	coalesce                 time.Duration
	groupCommit              bool
	dedup                    bool
	maxConns                 int
	presence                 string
	presenceIdle             time.Duration
	clearUnreadMarks         bool
	autoRead, autoReadGroups bool
	autoReadMin, autoReadMax time.Duration

	// Cluster mode (a Postgres store).
	nodeID, advertise, clusterSecret string
}

// Protective defaults of real mode, for one WhatsApp account: bursts of a
// CRM opening a conversation pass, a loop hammering the account does not.
const (
	realSessionRate  = 2  // requests a second, on average
	realSessionBurst = 20 // at once
)

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c        config
		sessions string
	)
	fs.BoolVar(&c.demo, "demo", false, "answer from an in-memory fake backend instead of WhatsApp")
	fs.StringVar(&c.addr, "addr", defaultAddr, "`host:port` to listen on")
	fs.StringVar(&c.token, "token", "", "API `token` clients must send (default $"+tokenEnv+", or "+demoToken+" with -demo)")
	fs.StringVar(&c.tokens, "tokens", "", "`file` of API tokens, one \"token: session,…\" per line (* for every session), reloaded on SIGHUP; with -token, both work")
	fs.StringVar(&sessions, "sessions", defaultSessions, "comma-separated session `names` of the -demo backend")
	var offline string
	fs.StringVar(&offline, "offline", "", "comma-separated -demo session `names` that act disconnected (503 session_not_connected; asynchronous receipts wait for them), each for good or, as NAME:DURATION, for DURATION after the start")
	fs.BoolVar(&c.verbose, "v", false, "log each receipt sent as a JSON line on stdout")
	fs.StringVar(&c.db, "db", "", "session store: a SQLite file, or a Postgres `DSN` (postgres://… or host=… dbname=…) (default $"+dbEnv+", else "+defaultDB+"); it also keeps the -async queue, with -demo too")
	fs.StringVar(&c.pairName, "pair", defaultPairName, "`name` of the session to pair when the store has none")
	fs.StringVar(&c.phone, "pair-phone", "", "pair by pair code for this phone `number` (+country code) instead of a QR code")
	fs.Float64Var(&c.sessionRate, "session-rate", -1, "receipt requests a `second` per session, on average; status polls are not counted (0: no limit; default "+
		fmt.Sprint(realSessionRate)+" in real mode, none with -demo)")
	fs.IntVar(&c.sessionBurst, "session-burst", realSessionBurst, "requests per session at once, with -session-rate")
	fs.Float64Var(&c.tokenRate, "token-rate", 0, "requests a `second` per API token, on average, status polls in a budget of their own (0: no limit)")
	fs.IntVar(&c.tokenBurst, "token-burst", 20, "requests per token at once, with -token-rate")
	fs.BoolVar(&c.async, "async", false, `answer 202 at once and send after a human-like delay, unless a request says "async": false (without -async, "async": true is refused)`)
	fs.DurationVar(&c.asyncMin, "async-min", queue.DefaultMinDelay, "shortest delay of asynchronous receipts")
	fs.DurationVar(&c.asyncMax, "async-max", queue.DefaultMaxDelay, "longest delay of asynchronous receipts")
	fs.DurationVar(&c.asyncPace, "async-pace", queue.DefaultPace, "least time between two asynchronous jobs of one session (a backlog is not sent as a burst)")
	fs.DurationVar(&c.asyncRetry, "async-retry", queue.DefaultRetryFor, "how long asynchronous receipts for a session that is down are retried before they count as failed")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM: the wait for requests in flight, then for the memory queue's flush")
	fs.DurationVar(&c.coalesce, "coalesce", 0, "deprecated: batching no longer waits on a timer; a positive `window` turns -group-commit on and is otherwise ignored")
	fs.BoolVar(&c.groupCommit, "group-commit", true, "batch receipts for the same chat and sender that arrive while one is being sent (group commit: nothing waits on a timer; false: each request its own call)")
	fs.BoolVar(&c.dedup, "dedup", false, "skip ids whose receipt was sent in the last 24 hours (reason duplicate)")
	fs.IntVar(&c.maxConns, "max-conns", defaultMaxConns, "most connections served at once (0: no limit); when full, the connection that has sent nothing for longest (idle, or not yet sending a request) is closed to admit a new one, which waits only while every connection is busy")
	fs.StringVar(&c.presence, "presence", string(bwm.PresenceReading), "what WhatsApp is told of the account being online: `mode` reading (unavailable with the name at connection, available while marking read, unavailable after -presence-idle: as a person, the phone keeps notifying), online (available while connected: delivery receipts show two grey ticks, but the account shows online and the phone stops notifying) or off (whatsmeow's raw behaviour: nothing; delivery receipts are inactive)")
	fs.DurationVar(&c.presenceIdle, "presence-idle", defaultPresenceIdle, "with -presence reading: how long after the last receipt the account goes unavailable")
	fs.BoolVar(&c.clearUnreadMarks, "clear-unread-marks", true, "once a chat its owner marked unread (on the phone or another device) is read, clear the mark there with an app-state patch, as WhatsApp Web does; other chats never get one (their read receipts clear the badge). false: never send app-state patches — such a chat stays marked unread until opened")
	fs.BoolVar(&c.autoRead, "auto-read", false, "mark incoming messages read by themselves after a human-like delay (between -auto-read-min and -auto-read-max, longer for longer messages), through the rate limits and the asynchronous queue; direct chats only unless -auto-read-groups; nothing while the account is active on the phone")
	fs.DurationVar(&c.autoReadMin, "auto-read-min", defaultAutoReadMin, "with -auto-read: the shortest delay from a message's arrival to its receipt")
	fs.DurationVar(&c.autoReadMax, "auto-read-max", defaultAutoReadMax, "with -auto-read: the longest delay from a message's arrival to its receipt")
	fs.BoolVar(&c.autoReadGroups, "auto-read-groups", false, "with -auto-read: group chats too")
	fs.StringVar(&c.nodeID, "node-id", "", "this process's `id` among the nodes sharing a Postgres store, and with -demo in the claims of the -async queue it keeps there (default: the host name)")
	fs.StringVar(&c.advertise, "advertise", "", "`URL` at which the other nodes reach this one, e.g. http://10.0.0.5:8080 (default: http:// and the address listened on)")
	fs.StringVar(&c.clusterSecret, "cluster-secret", "", "`secret` the nodes of a Postgres store share: a node with another one refuses to start, and it signs the requests they forward to each other and their answers (default $"+clusterSecretEnv+"; none: no forwarding)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "server: unexpected arguments %q\n", fs.Args())
		return c, errUsage
	}
	c.sessions, c.offline = splitNames(sessions), splitNames(offline)
	if len(c.sessions) == 0 {
		fmt.Fprintln(stderr, "server: -sessions names no session")
		return c, errUsage
	}
	if err := checkFlags(fs, c); err != nil {
		fmt.Fprintln(stderr, "server:", err)
		return c, errUsage
	}
	if c.token == "" {
		c.token = getenv(tokenEnv)
	}
	if c.db == "" {
		c.db = getenv(dbEnv)
	}
	c.dbGiven = c.db != ""
	if c.db == "" {
		c.db = defaultDB
	}
	if c.clusterSecret == "" {
		c.clusterSecret = getenv(clusterSecretEnv)
	}
	return c, nil
}

// minRate is the lowest non-zero -session-rate and -token-rate: one
// request in 1,000 s, so that Retry-After stays within a quarter of an hour
// and a typo (1e-9) does not lock a client out for years.
// The defaults of session/whatsmeow (stated in its options' docs), as the
// flags' defaults show them.
const (
	defaultDB           = "bluetick.db"
	defaultPresenceIdle = 30 * time.Second
	defaultAutoReadMin  = 3 * time.Second
	defaultAutoReadMax  = 30 * time.Second
	// defaultFDReserve is WithFDReserve's default for a SQLite store: 256
	// descriptors, and 3 for each of the pool's 32 connections (the file,
	// its WAL and its shared memory).
	defaultFDReserve = 256 + 3*32
)

const minRate = 0.001

// checkFlags refuses flag values that would silently mean something else
// than they say: a NaN or infinite rate (a NaN -session-rate used to switch
// the protective default off), a tiny one, a burst below 1, a negative
// duration (-coalesce -1s used to mean off), async delays out of order, a
// negative -max-conns.
func checkFlags(fs *flag.FlagSet, c config) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, r := range []struct {
		name  string
		rate  float64
		burst int
	}{{"session", c.sessionRate, c.sessionBurst}, {"token", c.tokenRate, c.tokenBurst}} {
		if !set[r.name+"-rate"] {
			continue
		}
		switch {
		case math.IsNaN(r.rate) || math.IsInf(r.rate, 0) || r.rate < 0:
			return fmt.Errorf("-%s-rate must be a number of requests a second, 0 (no limit) or more, not %v", r.name, r.rate)
		case r.rate > 0 && r.rate < minRate:
			return fmt.Errorf("-%s-rate %v is below %v requests a second; use 0 for no limit", r.name, r.rate, minRate)
		case r.rate > 0 && r.burst < 1:
			return fmt.Errorf("-%s-burst must be 1 or more", r.name)
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"coalesce", c.coalesce}, {"async-min", c.asyncMin}, {"async-max", c.asyncMax},
		{"async-pace", c.asyncPace}, {"async-retry", c.asyncRetry}, {"shutdown-timeout", c.shutdownTimeout},
		{"presence-idle", c.presenceIdle}, {"auto-read-min", c.autoReadMin}, {"auto-read-max", c.autoReadMax}} {
		if d.d < 0 {
			return fmt.Errorf("-%s must not be negative (use 0 for off), not %v", d.name, d.d)
		}
	}
	switch bwm.PresenceMode(c.presence) {
	case bwm.PresenceOnline, bwm.PresenceReading, bwm.PresenceOff:
	default:
		return fmt.Errorf("-presence must be online, reading or off, not %q", c.presence)
	}
	if c.autoReadMin > c.autoReadMax {
		return fmt.Errorf("-auto-read-min %v is longer than -auto-read-max %v", c.autoReadMin, c.autoReadMax)
	}
	if c.autoRead && c.demo {
		return errors.New("-auto-read needs the whatsmeow backend: the -demo backend receives no messages")
	}
	if c.asyncMin > c.asyncMax {
		return fmt.Errorf("-async-min %v is longer than -async-max %v", c.asyncMin, c.asyncMax)
	}
	if c.maxConns < 0 {
		return errors.New("-max-conns must be 0 (no limit) or more")
	}
	for _, o := range c.offline {
		if _, _, err := parseOffline(o); err != nil {
			return err
		}
	}
	return nil
}

// parseOffline splits an -offline entry, NAME or NAME:DURATION (0: for
// good).
func parseOffline(entry string) (string, time.Duration, error) {
	name, d, ok := strings.Cut(entry, ":")
	if !ok {
		return name, 0, nil
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		return "", 0, fmt.Errorf("-offline %s: want NAME or NAME:DURATION, a positive duration such as 30s", entry)
	}
	return name, dur, nil
}

// splitNames splits a comma-separated list, dropping blanks.
func splitNames(list string) []string {
	var names []string
	for name := range strings.SplitSeq(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// run parses args, serves until ctx ends, then shuts down gracefully. It
// prints "listening on http://ADDR" to stderr once the listener is bound, so
// that a caller passing -addr 127.0.0.1:0 can learn the port.
func run(ctx context.Context, args []string, e env) error {
	c, err := parseFlags(args, e.getenv, e.stderr)
	if err != nil {
		return err
	}
	// The first SIGINT or SIGTERM stops the server as ctx ending does.
	ctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	var tokenShown string // the token as the banner shows it
	switch {
	case c.token == "" && c.tokens == "" && !c.demo:
		fmt.Fprintf(e.stderr, "server: a token is required outside -demo: -token, $%s or -tokens FILE\n", tokenEnv)
		return errUsage
	case c.token == "" && c.tokens != "":
		tokenShown = "<a token of " + c.tokens + ">"
	case c.token == "":
		c.token, tokenShown = demoToken, demoToken
	case c.token == e.getenv(tokenEnv):
		tokenShown = "$" + tokenEnv
	default:
		tokenShown = "<your -token>"
	}

	logger := newLogger(c.verbose, e.stdout, e.stderr)
	auth, err := newTokenAuth(c.tokens, c.token)
	if err != nil {
		fmt.Fprintln(e.stderr, "server:", err)
		return errUsage
	}
	if c.tokens != "" {
		fmt.Fprintf(e.stderr, "tokens: %d from %s (reloaded on SIGHUP)\n", auth.count.Load(), c.tokens)
		if e.hup != nil {
			go auth.reloadOn(ctx, e.hup, e.stderr, logger)
		}
	}
	ln, err := listen(c.addr, c.maxConns)
	if err != nil {
		return err
	}
	defer ln.Close() // on an early return; Serve closes it otherwise
	base := "http://" + dialAddr(ln.Addr())
	var (
		reg        session.Registry
		manager    *bwm.Manager  // in real mode
		node       *cluster.Node // in real mode on a Postgres store
		pairing    <-chan bwm.PairEvent
		storeShown string // the store's DSN, its password masked
		opts       []seenhandler.Option
		jobs       queue.Queue // nil: in memory
		queueShown = "in memory, lost if the process dies; -db FILE keeps it"
	)
	if c.demo {
		fake := sessiontest.New(sessiontest.WithMaxRecords(demoRecords))
		for _, entry := range c.offline {
			name, d, _ := parseOffline(entry) // checked by parseFlags
			back := fake.Inject(sessiontest.Fault{Session: name, Err: session.ErrNotConnected})
			if d > 0 {
				t := time.AfterFunc(d, back) // the session "reconnects"
				defer t.Stop()
			}
		}
		reg = fake.Registry(c.sessions...)
		if c.async && c.dbGiven {
			store, err := parseStoreDSN(c.db)
			if err != nil {
				fmt.Fprintln(e.stderr, "server:", err)
				return errUsage
			}
			db, dialect, closeDB, err := bwm.OpenDB(ctx, store.dsn, bwm.DBPool{})
			if err != nil {
				return store.redact(err)
			}
			defer closeDB()
			// A name of its own that outlives the process: restarted, it
			// takes its claims back at once (PostgreSQL), not a queue lease
			// later.
			if jobs, err = sqlqueue.New(ctx, db, sqlqueue.Dialect(dialect), sqlqueue.Options{Node: queueNode(c)}); err != nil {
				return store.redact(err)
			}
			queueShown = "in " + store.shown
		}
	} else {
		store, err := parseStoreDSN(c.db)
		if err != nil {
			fmt.Fprintln(e.stderr, "server:", err)
			return errUsage
		}
		c.db, storeShown = store.dsn, store.shown
		m, events, err := openManager(ctx, c, e, logger)
		if err != nil {
			return store.redact(err)
		}
		defer m.Close()
		manager, reg, pairing = m, managerRegistry{m}, events
		if store.postgres {
			if c.advertise == "" {
				c.advertise = base
			}
			if node, err = openNode(ctx, c, m, logger); err != nil {
				return store.redact(err)
			}
			defer node.Close() // before m.Close: hands the sessions over
			reg = node
			opts = append(opts, seenhandler.WithForwarder(node))
		} else if c.nodeID != "" || c.advertise != "" || c.clusterSecret != "" {
			fmt.Fprintln(e.stderr, "server: -node-id, -advertise and a cluster secret need a Postgres store (-db postgres://…); a SQLite store serves one process")
			return errUsage
		}
		if c.async || c.autoRead { // auto-read goes through the queue
			qopts := sqlqueue.Options{}
			if node != nil {
				qopts.Node = node.ID() // its claims are its own again after a restart
			}
			db, dialect := m.DB()
			if jobs, err = sqlqueue.New(ctx, db, sqlqueue.Dialect(dialect), qopts); err != nil {
				return store.redact(err)
			}
			queueShown = "in the store"
		}
		go startSessions(ctx, m, node, pairing, c, e.stderr, logger)
	}
	// The decorators (coalescing, dedup) live with the registry, which
	// owns them: closed after the handler's Shutdown, below.
	decorated := session.Decorate(reg, decorateOptions(c))
	var local func(string) bool // in a cluster, the worker sends the receipts of this node's sessions
	if node != nil {
		local = node.Local
	}
	var arrivals session.ArrivalSource // auto-read's, through the queue
	if c.autoRead && manager != nil {
		arrivals = manager
	}
	worker, err := newWorker(c, jobs, local, arrivals, logger)
	if err != nil {
		return err
	}
	hopts, err := handlerOptions(c, worker)
	if err != nil {
		return err
	}
	opts = append(opts, hopts...)
	h, err := seenhandler.New(decorated, append(opts, seenhandler.WithAuth(auth), seenhandler.WithLogger(logger),
		seenhandler.WithOpenAPI(openAPIPath))...)
	if err != nil {
		return err
	}
	if worker != nil {
		worker.Start(h)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	mux.HandleFunc("GET /healthz", healthz)
	var handler http.Handler = mux
	if node != nil {
		handler = node.Wrap(mux, seenhandler.WriteError) // checks the requests other nodes forward here, seals the answers
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cl, ok := ln.(*connLimit); ok {
		srv.ConnState = cl.ConnState
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	stderr := e.stderr
	fmt.Fprintf(stderr, "listening on http://%s\n", ln.Addr())
	example := c.pairName
	if c.demo {
		example = c.sessions[0]
		fmt.Fprintf(stderr, "demo backend (nothing reaches WhatsApp); sessions: %s; token: %s\n", strings.Join(c.sessions, ", "), tokenShown)
		if len(c.offline) > 0 {
			fmt.Fprintf(stderr, "acting disconnected (503; asynchronous receipts wait for them): %s\n", strings.Join(c.offline, ", "))
		}
	} else {
		names := manager.Names()
		if len(names) > 0 {
			example = names[0]
		}
		list := strings.Join(names, ", ")
		if list == "" {
			list = "none yet"
		}
		fmt.Fprintf(stderr, "whatsmeow backend; store: %s; sessions: %s; token: %s\n", storeShown, list, tokenShown)
		if node != nil {
			forwarding := "on"
			if c.clusterSecret == "" {
				forwarding = "off (no $" + clusterSecretEnv + ")"
			}
			fmt.Fprintf(stderr, "cluster node %s, reached at %s; forwarding %s\n", node.ID(), c.advertise, forwarding)
		}
	}
	fmt.Fprintf(stderr, "try:\n  curl -sS %s%s -H \"Authorization: Bearer %s\" -H 'Content-Type: application/json' -d '{\"session\":\"%s\",\"to\":\"15551234567\",\"messageId\":\"3EB0C767D26A1D98A4\"}'\n",
		base, seenhandler.PathWasend, tokenShown, example)
	fmt.Fprintf(stderr, "  curl -sS %s/api/sessions/%s -H \"Authorization: Bearer %s\"\n", base, example, tokenShown)

	if c.async || c.autoRead {
		fmt.Fprintf(stderr, "asynchronous queue: %s\n", queueShown)
	}
	if c.autoRead {
		groups := "direct chats"
		if c.autoReadGroups {
			groups = "direct and group chats"
		}
		fmt.Fprintf(stderr, "auto-read: %s, %s to %s after arrival\n", groups, c.autoReadMin, c.autoReadMax)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	case <-e.term:
	}
	stopServing()
	return shutdown(c, e, srv, served, h, worker, decorated, jobs != nil)
}

// errCutShort: a second signal stopped the server before it was done.
var errCutShort = errors.New("stopped at once by a second signal")

// shutdown stops the server gracefully, in the queue package's order: no
// new connections; the requests in flight get -shutdown-timeout, then are
// cut; then the handler refuses new requests and the asynchronous worker
// (nil: none) stops (a memory queue is sent, paced, for up to
// -shutdown-timeout more; a durable one keeps its jobs), and the
// decorators flush. The counts are printed whatever happened before. A
// second signal (e.term) cuts each wait short: the durable queue keeps
// what is not sent, the memory queue counts it failed.
func shutdown(c config, e env, srv *http.Server, served <-chan error, h *seenhandler.Handler, worker *queue.Worker, decorated *session.Decorated, durable bool) error {
	fmt.Fprintln(e.stderr, "shutting down")
	hard, cutShort := context.WithCancel(context.Background())
	defer cutShort()
	watched := make(chan struct{})
	defer close(watched)
	go func() {
		select {
		case <-e.term:
			fmt.Fprintln(e.stderr, "second signal: stopping at once")
			cutShort()
		case <-watched:
		}
	}()

	hctx, cancel := context.WithTimeout(hard, c.shutdownTimeout)
	err := srv.Shutdown(hctx)
	cancel()
	if err != nil {
		fmt.Fprintf(e.stderr, "requests still in flight after %s: their connections are cut\n", c.shutdownTimeout)
		_ = srv.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		fmt.Fprintln(e.stderr, "server: serve:", serr)
	}
	// No request comes in any more: send (memory) or keep (durable) what
	// is queued, then what the decorators batched.
	fctx, cancel := context.WithTimeout(hard, c.shutdownTimeout)
	defer cancel()
	_ = h.Shutdown(fctx) // it returns at once
	var (
		st   queueTotals
		qerr error
	)
	if worker != nil {
		qerr = worker.Shutdown(fctx)
		// The final counts, read with a timeout of their own: fctx may have
		// ended.
		sctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
		st = totalsOf(sctx, worker, e.stderr)
		cancel()
	}
	cctx, cancel := context.WithTimeout(hard, decoratorsTimeout)
	defer cancel()
	derr := decorated.Close(cctx)
	kept := ""
	if durable && st.Pending > 0 {
		kept = " (kept in the store for the next start)"
	}
	fmt.Fprintf(e.stderr, "stopped; asynchronous receipts: %d accepted, %d sent, %d failed, %d pending%s\n",
		st.Accepted, st.Sent, st.Failed, st.Pending, kept)
	switch {
	case hard.Err() != nil:
		return errCutShort
	case qerr != nil:
		return fmt.Errorf("shutdown: asynchronous queue: %w", qerr)
	case derr != nil:
		return fmt.Errorf("shutdown: %w", derr)
	}
	return nil
}

// statsTimeout bounds the reading of the queue's counts at shutdown.
const statsTimeout = 10 * time.Second

// queueTotals sums the queue's counts over its sessions.
type queueTotals struct{ Accepted, Sent, Failed, Pending int64 }

// totalsOf reads w's counts; a queue that cannot answer is said so on
// stderr, and counts zero.
func totalsOf(ctx context.Context, w *queue.Worker, stderr io.Writer) queueTotals {
	sessions, err := w.Stats(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "server: reading the queue's counts:", err)
		return queueTotals{}
	}
	sum := queue.Total(sessions)
	return queueTotals{Accepted: sum.Sent + sum.Failed + sum.Pending, Sent: sum.Sent, Failed: sum.Failed, Pending: sum.Pending}
}

// decoratorsTimeout bounds the flush of the decorators' batches at
// shutdown (coalescing windows are milliseconds).
const decoratorsTimeout = 5 * time.Second

// listen listens on addr, serving at most maxConns connections at once
// (0: no limit; see connLimit: when full, the connection that has sent
// nothing for longest gives its slot to a new one; only busy connections
// make a new one wait), so that many stalled clients cannot grow the
// server's memory without bound. The server's ConnState must be the
// listener's, when it is a *connLimit.
func listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || maxConns == 0 {
		return ln, err
	}
	return newConnLimit(ln, maxConns), nil
}

// queueNode names a -demo process in the claims of its durable queue:
// -node-id, else the host name (else a random name, sqlqueue's default).
// Two -demo processes on one Postgres database need different ones.
func queueNode(c config) string {
	if c.nodeID != "" {
		return c.nodeID
	}
	host, _ := os.Hostname()
	return host
}

// managerRegistry is the whatsmeow Manager as a session.Lister too, for
// WAHA's GET /api/sessions.
type managerRegistry struct{ *bwm.Manager }

// ListSessions implements session.Lister.
func (m managerRegistry) ListSessions(context.Context) ([]string, error) {
	return m.Names(), nil
}

// handlerOptions turns the flags into the handler's throughput options;
// worker is the asynchronous queue's, or nil for none.
func handlerOptions(c config, worker *queue.Worker) ([]seenhandler.Option, error) {
	var opts []seenhandler.Option
	rate := c.sessionRate
	if rate < 0 { // not set: protective in real mode, none in demo mode
		rate = 0
		if !c.demo {
			rate = realSessionRate
		}
	}
	var perSession, perToken seenhandler.Limiter // nil: no limit
	if rate > 0 {
		lim, err := ratelimit.NewMemory(rate, c.sessionBurst)
		if err != nil {
			return nil, err
		}
		perSession = lim
	}
	if c.tokenRate > 0 {
		lim, err := ratelimit.NewMemory(c.tokenRate, c.tokenBurst)
		if err != nil {
			return nil, err
		}
		perToken = lim
	}
	opts = append(opts, seenhandler.WithRateLimit(perSession, perToken))
	if worker != nil {
		// Without -async, only auto-read uses the queue; "async": true is
		// accepted then too.
		opts = append(opts, seenhandler.WithLater(worker))
		if c.async {
			opts = append(opts, seenhandler.WithAsyncByDefault())
		}
	}
	return opts, nil
}

// newWorker returns the asynchronous queue's worker, over jobs (nil: in
// memory), with auto-read's arrivals (nil: none), when -async or
// -auto-read asks for one; else nil. local limits it to this node's
// sessions (nil: all).
func newWorker(c config, jobs queue.Queue, local func(string) bool, arrivals session.ArrivalSource, logger *slog.Logger) (*queue.Worker, error) {
	if !c.async && !c.autoRead {
		return nil, nil
	}
	return queue.New(queue.Options{Queue: jobs, MinDelay: c.asyncMin, MaxDelay: c.asyncMax, Pace: c.asyncPace,
		RetryFor: c.asyncRetry, Local: local, Arrivals: arrivals, Logger: logger})
}

// decorateOptions turns the flags into the registry's decorators. A
// -coalesce window, from when batching waited on a timer, asks for
// batching: group commit, which waits on none.
func decorateOptions(c config) session.DecorateOptions {
	var o session.DecorateOptions
	if c.groupCommit || c.coalesce > 0 {
		o.Coalesce = &session.CoalesceOptions{}
	}
	if c.dedup {
		o.Dedup = &session.DedupOptions{}
	}
	return o
}

// openManager opens the whatsmeow session store and, when it holds none,
// starts pairing one: registered at once (SCAN_QR_CODE, 503
// session_not_logged_in) and retried while WhatsApp is unreachable; the
// pairing's events come on the channel. startSessions connects the rest.
func openManager(ctx context.Context, c config, e env, logger *slog.Logger) (*bwm.Manager, <-chan bwm.PairEvent, error) {
	opts := []bwm.Option{bwm.WithLogger(logger),
		bwm.WithPresence(bwm.PresenceMode(c.presence), c.presenceIdle), bwm.WithMarkChatRead(c.clearUnreadMarks)}
	if c.autoRead {
		opts = append(opts, bwm.WithAutoRead(bwm.AutoRead{
			MinDelay: c.autoReadMin, MaxDelay: c.autoReadMax, Groups: c.autoReadGroups}))
	}
	if c.maxConns > 0 {
		// Descriptors for the HTTP connections too, not only the
		// listener: sessions beyond the rest are refused, not connected
		// into "too many open files".
		opts = append(opts, bwm.WithFDReserve(defaultFDReserve+c.maxConns))
	}
	if e.clientHook != nil {
		opts = append(opts, bwm.WithClientHook(e.clientHook))
	}
	m, err := bwm.Open(ctx, c.db, opts...)
	if err != nil {
		return nil, nil, err
	}
	var events <-chan bwm.PairEvent
	if len(m.Names()) == 0 {
		if events, err = m.Pair(ctx, c.pairName, c.phone); err != nil {
			m.Close()
			return nil, nil, err
		}
	}
	return m, events, nil
}

// startSessions connects the stored sessions — all of them, or in a
// cluster this node's share — then prints the pairing's events, if any.
func startSessions(ctx context.Context, m *bwm.Manager, node *cluster.Node, events <-chan bwm.PairEvent, c config, w io.Writer, logger *slog.Logger) {
	var err error
	if node != nil {
		err = node.Start(ctx)
	} else {
		err = m.Start(ctx)
	}
	if err != nil && ctx.Err() == nil {
		logger.Error("starting sessions failed", "error", err)
		fmt.Fprintln(w, "server: starting sessions failed:", err)
	}
	if events != nil {
		pair(events, c, w) // ends when the Manager closes at the latest
	}
}

// pair prints the pairing of session c.pairName on w: its QR codes (or pair
// code), the attempts to reach WhatsApp, and the outcome.
func pair(events <-chan bwm.PairEvent, c config, w io.Writer) {
	for ev := range events {
		switch ev.Kind {
		case bwm.PairRetrying:
			fmt.Fprintf(w, "pairing session %q: WhatsApp is unreachable (%v); trying again in %s\n", c.pairName, ev.Err, ev.Timeout)
		case bwm.PairPhoneCode:
			fmt.Fprintf(w, "pair code for session %q: %s\n  on the phone %s: WhatsApp › Linked devices › Link a device › Link with phone number\n", c.pairName, ev.Code, c.phone)
		case bwm.PairQRCode:
			if c.phone == "" {
				fmt.Fprintf(w, "session %q: scan this QR code with WhatsApp › Linked devices › Link a device (valid %s):\n", c.pairName, ev.Timeout)
				qrterminal.GenerateHalfBlock(ev.Code, qrterminal.L, w)
			}
		case bwm.PairSucceeded:
			fmt.Fprintf(w, "session %q paired as %s\n", c.pairName, ev.JID)
		case bwm.PairTimedOut:
			fmt.Fprintf(w, "session %q: pairing timed out; restart the server to try again\n", c.pairName)
		case bwm.PairFailed:
			fmt.Fprintf(w, "session %q: pairing failed: %v\n", c.pairName, ev.Err)
		}
	}
}

// newLogger logs Info and above as JSON on stdout when verbose, and Warn
// and above as text on stderr otherwise.
func newLogger(verbose bool, stdout, stderr io.Writer) *slog.Logger {
	if verbose {
		return slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, `{"ok":true}`+"\n")
}

// dialAddr is addr as a client on this machine dials it: an unspecified
// host (0.0.0.0, ::) becomes loopback.
func dialAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	ip := net.IPv4(127, 0, 0, 1)
	if tcp.IP.To4() == nil {
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}
