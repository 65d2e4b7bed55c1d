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
	"golang.org/x/net/netutil"

	"github.com/bluetick/bluetick/seenhandler"
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
	shutdownTimeout   = 10 * time.Second
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
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, hup: hup})
	signal.Stop(hup)
	stop()
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
	pairName string
	phone    string

	sessionRate, tokenRate   float64
	sessionBurst, tokenBurst int
	async                    bool
	asyncMin, asyncMax       time.Duration
	coalesce                 time.Duration
	dedup                    bool
	maxConns                 int

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
	fs.StringVar(&offline, "offline", "", "comma-separated -demo session `names` that act disconnected (503 session_not_connected), to test clients' retries")
	fs.BoolVar(&c.verbose, "v", false, "log each receipt sent as a JSON line on stdout")
	fs.StringVar(&c.db, "db", "", "session store: a SQLite file, or a Postgres `DSN` (postgres://… or host=… dbname=…) (default $"+dbEnv+", else "+bwm.DefaultDSN+")")
	fs.StringVar(&c.pairName, "pair", defaultPairName, "`name` of the session to pair when the store has none")
	fs.StringVar(&c.phone, "pair-phone", "", "pair by pair code for this phone `number` (+country code) instead of a QR code")
	fs.Float64Var(&c.sessionRate, "session-rate", -1, "requests a `second` per session, on average (0: no limit; default "+
		fmt.Sprint(realSessionRate)+" in real mode, none with -demo)")
	fs.IntVar(&c.sessionBurst, "session-burst", realSessionBurst, "requests per session at once, with -session-rate")
	fs.Float64Var(&c.tokenRate, "token-rate", 0, "requests a `second` per API token, on average (0: no limit)")
	fs.IntVar(&c.tokenBurst, "token-burst", 20, "requests per token at once, with -token-rate")
	fs.BoolVar(&c.async, "async", false, `answer 202 at once and send after a human-like delay, unless a request says "async": false (without -async, "async": true is refused)`)
	fs.DurationVar(&c.asyncMin, "async-min", seenhandler.DefaultAsyncMinDelay, "shortest delay of asynchronous receipts")
	fs.DurationVar(&c.asyncMax, "async-max", seenhandler.DefaultAsyncMaxDelay, "longest delay of asynchronous receipts")
	fs.DurationVar(&c.coalesce, "coalesce", 0, "batch receipts for the same chat and sender arriving within this `window` (e.g. 10ms; 0: off)")
	fs.BoolVar(&c.dedup, "dedup", false, "skip ids whose receipt was sent in the last 24 hours (reason duplicate)")
	fs.IntVar(&c.maxConns, "max-conns", defaultMaxConns, "most connections served at once; more wait until one closes (0: no limit)")
	fs.StringVar(&c.nodeID, "node-id", "", "this process's `id` among the nodes sharing a Postgres store (default: the host name)")
	fs.StringVar(&c.advertise, "advertise", "", "`URL` at which the other nodes reach this one, e.g. http://10.0.0.5:8080 (default: http:// and the address listened on)")
	fs.StringVar(&c.clusterSecret, "cluster-secret", "", "`secret` the nodes of a Postgres store share to forward requests to each other (default $"+clusterSecretEnv+"; none: no forwarding)")
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
	if c.db == "" {
		c.db = bwm.DefaultDSN
	}
	if c.clusterSecret == "" {
		c.clusterSecret = getenv(clusterSecretEnv)
	}
	return c, nil
}

// minRate is the lowest non-zero -session-rate and -token-rate: one
// request in 1,000 s, so that Retry-After stays within a quarter of an hour
// and a typo (1e-9) does not lock a client out for years.
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
	}{{"coalesce", c.coalesce}, {"async-min", c.asyncMin}, {"async-max", c.asyncMax}} {
		if d.d < 0 {
			return fmt.Errorf("-%s must not be negative (use 0 for off), not %v", d.name, d.d)
		}
	}
	if c.asyncMin > c.asyncMax {
		return fmt.Errorf("-async-min %v is longer than -async-max %v", c.asyncMin, c.asyncMax)
	}
	if c.maxConns < 0 {
		return errors.New("-max-conns must be 0 (no limit) or more")
	}
	return nil
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
	)
	if c.demo {
		fake := sessiontest.New(sessiontest.WithMaxRecords(demoRecords))
		for _, name := range c.offline {
			fake.Inject(sessiontest.Fault{Session: name, Err: session.ErrNotConnected})
		}
		reg = fake.Registry(c.sessions...)
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
		go startSessions(ctx, m, node, pairing, c, e.stderr, logger)
	}
	// The decorators (coalescing, dedup) live with the registry, which
	// owns them: closed after the handler's Shutdown, below.
	decorated := session.Decorate(reg, decorateOptions(c))
	hopts, err := handlerOptions(c)
	if err != nil {
		return err
	}
	opts = append(opts, hopts...)
	h, err := seenhandler.New(decorated, append(opts, seenhandler.WithAuth(auth), seenhandler.WithLogger(logger),
		seenhandler.WithOpenAPI(openAPIPath))...)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	mux.HandleFunc("GET /healthz", healthz)

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
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
			fmt.Fprintf(stderr, "acting disconnected (503): %s\n", strings.Join(c.offline, ", "))
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

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(e.stderr, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	// No request comes in any more: send what is queued, then what is
	// batched.
	st, err := h.Shutdown(sctx)
	if cerr := decorated.Close(sctx); err == nil {
		err = cerr
	}
	if node != nil {
		// Hand the sessions over to the other nodes now, not when the
		// leases expire.
		if cerr := node.Close(); err == nil {
			err = cerr
		}
	}
	fmt.Fprintf(e.stderr, "stopped; asynchronous receipts: %d accepted, %d sent, %d failed, %d pending\n",
		st.Accepted, st.Sent, st.Failed, st.Pending)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// listen listens on addr, serving at most maxConns connections at once
// (0: no limit): a connection beyond is accepted only once one closes, so
// that many stalled clients cannot grow the server's memory without bound.
func listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || maxConns == 0 {
		return ln, err
	}
	return netutil.LimitListener(ln, maxConns), nil
}

// managerRegistry is the whatsmeow Manager as a session.Lister too, for
// WAHA's GET /api/sessions.
type managerRegistry struct{ *bwm.Manager }

// ListSessions implements session.Lister.
func (m managerRegistry) ListSessions(context.Context) ([]string, error) {
	return m.Names(), nil
}

// handlerOptions turns the flags into the handler's throughput options.
func handlerOptions(c config) ([]seenhandler.Option, error) {
	var opts []seenhandler.Option
	rate := c.sessionRate
	if rate < 0 { // not set: protective in real mode, none in demo mode
		rate = 0
		if !c.demo {
			rate = realSessionRate
		}
	}
	if rate > 0 {
		lim, err := seenhandler.NewMemoryLimiter(rate, c.sessionBurst)
		if err != nil {
			return nil, err
		}
		opts = append(opts, seenhandler.WithSessionRateLimit(lim))
	}
	if c.tokenRate > 0 {
		lim, err := seenhandler.NewMemoryLimiter(c.tokenRate, c.tokenBurst)
		if err != nil {
			return nil, err
		}
		opts = append(opts, seenhandler.WithTokenRateLimit(lim))
	}
	if c.async {
		opts = append(opts, seenhandler.WithAsync(seenhandler.AsyncOptions{Default: true, MinDelay: c.asyncMin, MaxDelay: c.asyncMax}))
	}
	return opts, nil
}

// decorateOptions turns the flags into the registry's decorators.
func decorateOptions(c config) session.DecorateOptions {
	var o session.DecorateOptions
	if c.coalesce > 0 {
		o.Coalesce = &session.CoalesceOptions{Window: c.coalesce}
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
	opts := []bwm.ManagerOption{bwm.WithManagerLogger(logger), bwm.WithSessionOptions(bwm.WithLogger(logger))}
	if c.maxConns > 0 {
		// Descriptors for the HTTP connections too, not only the
		// listener: sessions beyond the rest are refused, not connected
		// into "too many open files".
		opts = append(opts, bwm.WithFDReserve(bwm.DefaultFDReserve+3*bwm.DefaultDBMaxOpen+c.maxConns))
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
		if events, err = m.KeepPairing(ctx, c.pairName, c.phone); err != nil {
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
