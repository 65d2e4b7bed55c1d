package seenhandler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limiter decides whether one more request may go now for a key (a token's
// digest, or a session name). A [MemoryLimiter] keeps its buckets in this
// process; when several replicas serve the same accounts, implement [Limiter]
// over a shared store.
//
// Reserve must be safe for concurrent use. It takes one request from the
// key's budget and reports whether the request may proceed and, if not, how
// long until one may. An error lets the request through (a broken limiter
// must not stop receipts) and is logged. The handler asks the token's
// limiter once the token is authenticated, and the session's once the
// registry found the session, so that only real tokens and sessions become
// keys.
type Limiter interface {
	Reserve(ctx context.Context, key string) (Reservation, error)
}

// Reservation is a [Limiter]'s answer for one request.
type Reservation struct {
	// OK: the request may proceed now.
	OK bool
	// RetryAfter is, when not OK, how long until a request of the key may
	// proceed.
	RetryAfter time.Duration
	// Cancel, when OK and not nil, gives the request back to the key's
	// budget. The handler calls it when a later limit refuses the request,
	// so that a session's limit does not spend the token's budget.
	Cancel func()
}

// cancel gives r back, if it can be.
func (r *Reservation) cancel() {
	if r != nil && r.Cancel != nil {
		r.Cancel()
	}
}

// LimiterFunc adapts a function to the [Limiter] interface.
type LimiterFunc func(ctx context.Context, key string) (Reservation, error)

// Reserve calls f(ctx, key).
func (f LimiterFunc) Reserve(ctx context.Context, key string) (Reservation, error) {
	return f(ctx, key)
}

// DefaultLimiterKeys is how many keys a [MemoryLimiter] tracks; past that
// it forgets the least recently used one (which then starts with a full
// bucket again).
const DefaultLimiterKeys = 10_000

// MemoryLimiter is a [Limiter] with one token bucket (golang.org/x/time/rate)
// per key, in memory, for at most [DefaultLimiterKeys] keys (least recently
// used forgotten first). It is safe for concurrent use.
type MemoryLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
}

// NewMemoryLimiter returns a [MemoryLimiter] that lets each key make perSecond
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

// Reserve implements [Limiter]; the [Reservation]'s Cancel gives back the
// token it took.
func (m *MemoryLimiter) Reserve(_ context.Context, key string) (Reservation, error) {
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
		return Reservation{RetryAfter: d}, nil
	}
	// [Reservation].CancelAt gives nothing back once the reservation's time
	// has come (as it has: it was for now), so the token is returned as a
	// reservation of -1: rate.Limiter then holds one token more, capped at
	// the burst when it next refills.
	return Reservation{OK: true, Cancel: func() { b.ReserveN(time.Now(), -1) }}, nil
}

// WithTokenRateLimit limits the requests of each API token (a digest of
// it is the key), once the [Authenticator] accepted it; with [WithNoAuth] no
// token is checked, so none is limited. Status requests ([Handler.ServeStatus],
// [Handler.ServeSessions]) take from a budget of their own per token, at
// the same rate (the key "status:" followed by the token's): polling them
// never spends the token's receipts. Requests over the limit get 429
// rate_limited with Retry-After. Default: no limit.
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
// It counts what sends receipts — requests to the seen endpoint and
// auto-read's arrivals — and not status requests, which send nothing to
// WhatsApp: a dashboard polling a session's status never spends its
// receipts. Only sessions the registry found are keys, and a request this
// limit refuses is given back to its token's limit.
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

// tokenID identifies a token in limiter keys ("token:" and it) and queued
// jobs (Job.Token): a digest, never the token itself.
func tokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:12])
}

// reserve asks l about key. It returns the reservation to cancel if a
// later check refuses the request (nil when there is none), or the
// refusal. A limiter error lets the request through.
func (c *config) reserve(ctx context.Context, l Limiter, what, key string) (*Reservation, error) {
	res, err := l.Reserve(ctx, key)
	switch {
	case err != nil:
		c.logger.LogAttrs(ctx, slog.LevelWarn, "rate limiter failed; letting the request through",
			slog.String("limit", what), slog.String("error", err.Error()))
		return nil, nil
	case !res.OK:
		return nil, &rateLimitedError{what: what, retryAfter: res.RetryAfter}
	}
	return &res, nil
}
