// Command server is a complete bluetick server: the three "mark as seen"
// endpoints (/sendSeen, /v2/send/seen, /api/sendSeen) behind a static API
// token, plus GET /healthz.
//
// Until the whatsmeow backend lands, it runs only with -demo, which answers
// from an in-memory fake (package sessiontest) instead of WhatsApp:
//
//	go run ./examples/server -demo   # token demo-token, session demo
//	go run ./examples/server -demo -v -sessions support,sales -addr 127.0.0.1:9090
//	BLUETICK_TOKEN=s3cret go run ./examples/server -demo
//	go run ./examples/server -demo -sessions demo,down -offline down   # "down" answers 503
//
// The start-up lines (address, sessions, a curl command to try) go to
// stderr. With -v each receipt sent is logged as one JSON line on stdout;
// without it, warnings and errors are logged as text on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Defaults of the flags and the environment.
const (
	defaultAddr     = "127.0.0.1:8080"
	defaultSessions = "demo"
	demoToken       = "demo-token"
	tokenEnv        = "BLUETICK_TOKEN"
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

// Errors run returns that main turns into exit status 2.
var (
	// errNoBackend: the real backend was asked for but does not exist yet.
	errNoBackend = errors.New("the real whatsmeow backend is not available yet")
	// errUsage: the flags are wrong; run has already said how.
	errUsage = errors.New("usage error")
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if code := exitCode(err); code != 0 {
		if !errors.Is(err, errUsage) && !errors.Is(err, errNoBackend) {
			fmt.Fprintln(os.Stderr, "server:", err)
		}
		os.Exit(code)
	}
}

// exitCode is the process status for run's error: 0 for success and -help,
// 2 for usage errors and a missing backend, 1 otherwise.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, errNoBackend):
		return 2
	}
	return 1
}

// config is the parsed command line.
type config struct {
	demo     bool
	addr     string
	token    string
	sessions []string
	offline  []string
	verbose  bool
}

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
	fs.StringVar(&sessions, "sessions", defaultSessions, "comma-separated session `names` of the -demo backend")
	var offline string
	fs.StringVar(&offline, "offline", "", "comma-separated -demo session `names` that act disconnected (503 session_not_connected), to test clients' retries")
	fs.BoolVar(&c.verbose, "v", false, "log each receipt sent as a JSON line on stdout")
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
	if c.token == "" {
		c.token = getenv(tokenEnv)
	}
	return c, nil
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
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if !c.demo {
		fmt.Fprintln(stderr, "server: the real WhatsApp (whatsmeow) backend is not available yet; it arrives with the whatsmeow issue.")
		fmt.Fprintln(stderr, "server: run with -demo for a fake backend that records receipts instead of sending them.")
		return errNoBackend
	}
	tokenShown := c.token
	switch {
	case c.token == "":
		c.token, tokenShown = demoToken, demoToken
	case c.token == getenv(tokenEnv):
		tokenShown = "$" + tokenEnv
	default:
		tokenShown = "<your -token>"
	}

	logger := newLogger(c.verbose, stdout, stderr)
	fake := sessiontest.New()
	for _, name := range c.offline {
		fake.Inject(sessiontest.Fault{Session: name, Err: session.ErrNotConnected})
	}
	auth, err := seenhandler.NewStaticAuth(map[string][]string{c.token: {seenhandler.AllSessions}})
	if err != nil {
		return err
	}
	h, err := seenhandler.New(fake.Registry(c.sessions...), seenhandler.WithAuth(auth), seenhandler.WithLogger(logger))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	mux.HandleFunc("GET /healthz", healthz)

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
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

	base := "http://" + dialAddr(ln.Addr())
	fmt.Fprintf(stderr, "listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stderr, "demo backend (nothing reaches WhatsApp); sessions: %s; token: %s\n", strings.Join(c.sessions, ", "), tokenShown)
	if len(c.offline) > 0 {
		fmt.Fprintf(stderr, "acting disconnected (503): %s\n", strings.Join(c.offline, ", "))
	}
	fmt.Fprintf(stderr, "try:\n  curl -sS %s%s -H \"Authorization: Bearer %s\" -H 'Content-Type: application/json' -d '{\"session\":\"%s\",\"to\":\"15551234567\",\"messageId\":\"3EB0C767D26A1D98A4\"}'\n",
		base, seenhandler.PathWasend, tokenShown, c.sessions[0])

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stderr, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stderr, "stopped")
	return nil
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
