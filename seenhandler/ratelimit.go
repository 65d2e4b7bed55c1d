package seenhandler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limiter decides whether one more request may go now for a key (a token's
// digest, or a session name). A MemoryLimiter keeps its buckets in this
// process; when several replicas serve the same accounts, implement Limiter
// over a shared store.
//
// Allow must be safe for concurrent use. It reports whether the request may
// proceed and, if not, how long until one may. An error lets the request
// through (a broken limiter must not stop receipts) and is logged.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// LimiterFunc adapts a function to the Limiter interface.
type LimiterFunc func(ctx context.Context, key string) (bool, time.Duration, error)

// Allow calls f(ctx, key).
func (f LimiterFunc) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	return f(ctx, key)
}

// DefaultLimiterKeys is how many keys a MemoryLimiter tracks; past that
// it forgets the least recently used one (which then starts with a full
// bucket again).
const DefaultLimiterKeys = 10_000

// MemoryLimiter is a Limiter with one token bucket (golang.org/x/time/rate)
// per key, in memory, for at most DefaultLimiterKeys keys (least recently
// used forgotten first). It is safe for concurrent use.
type MemoryLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
}

// NewMemoryLimiter returns a MemoryLimiter that lets each key make perSecond
// requests a second on average, and burst at once.
func NewMemoryLimiter(perSecond float64, burst int) (*MemoryLimiter, error) {
	if perSecond <= 0 || burst < 1 {
		return nil, errors.New("seenhandler: NewMemoryLimiter: rate and burst must be positive")
	}
	buckets, err := lru.New[string, *rate.Limiter](DefaultLimiterKeys)
	if err != nil {
		return nil, err
	}
	return &MemoryLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: buckets}, nil
}

// Allow implements Limiter.
func (m *MemoryLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	now := time.Now()
	b, ok := m.buckets.Get(key)
	if !ok {
		// Two first requests of a key may race here: the second bucket
		// wins, and the key got one request extra. Harmless.
		b = rate.NewLimiter(m.limit, m.burst)
		m.buckets.Add(key, b)
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, nil
	}
	return true, 0, nil
}

// WithTokenRateLimit limits the requests of each API token (a digest of
// it is the key). Requests over the limit get 429 rate_limited with
// Retry-After. Default: no limit.
func WithTokenRateLimit(l Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("seenhandler: WithTokenRateLimit: nil Limiter")
		}
		c.tokenLimiter = l
		return nil
	}
}

// WithSessionRateLimit limits the requests for each session (its name is
// the key), whatever token they carry: it protects the WhatsApp account.
// Requests over the limit get 429 rate_limited with Retry-After. Default: no
// limit.
func WithSessionRateLimit(l Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("seenhandler: WithSessionRateLimit: nil Limiter")
		}
		c.sessionLimiter = l
		return nil
	}
}

// rateLimitedError is a request over a limit.
type rateLimitedError struct {
	what       string // "token" or "session"
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("%s rate limit: retry after %v", e.what, e.retryAfter)
}

// tokenKey is the limiter key of a token: never the token itself.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "token:" + hex.EncodeToString(sum[:12])
}

// checkLimit asks l about key; a limiter error lets the request through.
func (c *config) checkLimit(ctx context.Context, l Limiter, what, key string) error {
	if l == nil {
		return nil
	}
	var (
		ok    bool
		after time.Duration
	)
	err := safeCall("limiter", func() (err error) {
		ok, after, err = l.Allow(ctx, key)
		return err
	})
	switch {
	case err != nil:
		c.logger.Warn("rate limiter failed; letting the request through", "limit", what, "error", err)
		return nil
	case !ok:
		return &rateLimitedError{what: what, retryAfter: after}
	}
	return nil
}
