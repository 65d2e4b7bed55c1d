package seenhandler

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bluetick/bluetick/session"
)

// Defaults for the options of New.
const (
	// DefaultMaxBodyBytes is the largest request body accepted (64 KiB).
	DefaultMaxBodyBytes = 64 << 10
	// DefaultMaxMessageIDs is the most message ids one request may carry.
	DefaultMaxMessageIDs = 100
	// DefaultTimeout bounds the backend calls of one request.
	DefaultTimeout = 10 * time.Second
	// DefaultRetryAfter is the Retry-After sent with 503 Service Unavailable.
	DefaultRetryAfter = 5 * time.Second
	// DefaultTypingTimeout is how long the account shows typing after a
	// request with "typing" (as Meta's Cloud API: 25 s).
	DefaultTypingTimeout = 25 * time.Second
)

// Option configures a [Handler]; see New.
type Option func(*config) error

type config struct {
	auth          Authenticator
	noAuth        bool
	logger        *slog.Logger
	maxBodyBytes  int64
	maxMessageIDs int
	timeout       time.Duration
	retryAfter    time.Duration
	typingTimeout time.Duration
	pathSession   func(*http.Request) string // never nil
	openAPIPath   string
	observer      Observer
	forwarder     Forwarder // nil: every session is served here

	tokenLimiter   Limiter
	sessionLimiter Limiter
	later          Later // nil: no asynchronous requests
	asyncByDefault bool
}

func defaultConfig() config {
	return config{
		logger:        slog.New(slog.DiscardHandler),
		maxBodyBytes:  DefaultMaxBodyBytes,
		maxMessageIDs: DefaultMaxMessageIDs,
		timeout:       DefaultTimeout,
		retryAfter:    DefaultRetryAfter,
		typingTimeout: DefaultTypingTimeout,
		pathSession:   pathValue("session"),
	}
}

// newConfig applies opts over the defaults and checks the result.
func newConfig(reg session.Registry, opts []Option) (config, error) {
	if reg == nil {
		return config{}, errors.New("seenhandler: nil Registry")
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return config{}, err
		}
	}
	switch {
	case cfg.auth == nil && !cfg.noAuth:
		return config{}, errors.New("seenhandler: no authenticator: pass WithAuth, or WithNoAuth to accept every request")
	case cfg.auth != nil && cfg.noAuth:
		return config{}, errors.New("seenhandler: WithAuth and WithNoAuth both given")
	case cfg.asyncByDefault && cfg.later == nil:
		return config{}, errors.New("seenhandler: WithAsyncByDefault needs WithLater: asynchronous requests need a Later to keep them")
	}
	return cfg, nil
}

// WithAuth sets the [Authenticator] that checks each request's token. There is
// no default: New fails unless [WithAuth] or [WithNoAuth] is given, so that a
// handler is never open by accident. See [NewStaticAuth] for the built-in one.
func WithAuth(a Authenticator) Option {
	return func(c *config) error {
		if a == nil {
			return errors.New("seenhandler: WithAuth: nil Authenticator")
		}
		c.auth = a
		return nil
	}
}

// WithNoAuth accepts every request without a token: for tests, or when a
// middleware in front of the handler authenticates. Not the default.
func WithNoAuth() Option {
	return func(c *config) error {
		c.noAuth = true
		return nil
	}
}

// WithLogger sets the logger. Each receipt sent is logged at Info with the
// message "receipt sent"; a request that failed on the server's side (5xx)
// at Warn with the backend's error text, which never reaches the client; a
// request refused for the client's fault (4xx) and each request's summary at
// Debug. Default: a logger that discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("seenhandler: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRequestLimits bounds what one request may carry: a body larger than
// maxBodyBytes gets 413 body_too_large, more than maxMessageIDs distinct
// message ids 400 validation_failed. A zero leaves that limit at its
// default; a negative one is an error. Default: [DefaultMaxBodyBytes]
// (64 KiB) and [DefaultMaxMessageIDs] (100).
func WithRequestLimits(maxBodyBytes int64, maxMessageIDs int) Option {
	return func(c *config) error {
		if maxBodyBytes < 0 || maxMessageIDs < 0 {
			return errors.New("seenhandler: WithRequestLimits: limits must not be negative")
		}
		if maxBodyBytes > 0 {
			c.maxBodyBytes = maxBodyBytes
		}
		if maxMessageIDs > 0 {
			c.maxMessageIDs = maxMessageIDs
		}
		return nil
	}
}

// WithTimeout bounds the work of one request once its body is read:
// authentication, rate limits and the backend calls (session lookup,
// message resolution, sending); when it passes the client gets 504
// timeout. Default: DefaultTimeout (10 s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("seenhandler: WithTimeout: timeout must be positive")
		}
		c.timeout = d
		return nil
	}
}

// WithRetryAfter sets the Retry-After header of 503 session_not_connected
// answers, rounded up to whole seconds. Default: DefaultRetryAfter (5 s).
func WithRetryAfter(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("seenhandler: WithRetryAfter: duration must be positive")
		}
		c.retryAfter = d
		return nil
	}
}

// WithTypingTimeout sets how long the account shows typing in the chat
// after a request with "typing": true (or Meta's "typing_indicator"),
// before the session clears it. Default: [DefaultTypingTimeout] (25 s).
func WithTypingTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("seenhandler: WithTypingTimeout: duration must be positive")
		}
		c.typingTimeout = d
		return nil
	}
}

// WithPathSession takes the session name from the request's URL, for routes
// such as "/sessions/{session}/seen". extract returns "" when the URL names
// none; the body's (or, for the status endpoint, the query's) session or
// instance_id is then used, and when both name one they must agree. Use
// func(r *http.Request) string { return r.PathValue("name") } for net/http's
// ServeMux and chi, and a function over mux.Vars
// for gorilla/mux. Default: r.PathValue("session"), the {session} wildcard
// of a ServeMux pattern (such as PathWAHAStatus), if any. Over a
// session.Single registry no name is read: every request goes to its one
// session.
func WithPathSession(extract func(*http.Request) string) Option {
	return func(c *config) error {
		if extract == nil {
			return errors.New("seenhandler: WithPathSession: nil extractor")
		}
		c.pathSession = extract
		return nil
	}
}

// WithOpenAPI makes [Mount] also serve the [OpenAPI] document (see [OpenAPI]) at
// GET path, e.g. "/openapi.yaml". Default: not served.
func WithOpenAPI(path string) Option {
	return func(c *config) error {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " {}") {
			return errors.New("seenhandler: WithOpenAPI: path must start with / and hold no spaces or wildcards")
		}
		c.openAPIPath = path
		return nil
	}
}

// pathValue returns an extractor for [WithPathSession] that reads the named
// wildcard of a net/http ServeMux pattern.
func pathValue(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.PathValue(name) }
}
