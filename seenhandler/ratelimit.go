package seenhandler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"time"
)

// Limiter decides whether one more request may go now for a key (a token's
// digest, or a session name). seenhandler/ratelimit's Memory keeps its
// buckets in this process; when several replicas serve the same accounts,
// implement [Limiter] over a shared store.
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

// WithRateLimit limits requests per session and per API token; a nil
// [Limiter] sets no limit of its kind, and so does a nil pointer or func
// in one (a *ratelimit.Memory left nil when no rate was configured). Requests over a limit get 429
// rate_limited with Retry-After. seenhandler/ratelimit's Memory is a
// Limiter that keeps its buckets in this process. Default: no limit.
//
// perSession's key is the session's name, whatever token the request
// carries: it protects the WhatsApp account. It counts what sends receipts
// — requests to the seen endpoint and auto-read's arrivals — and not
// status requests, which send nothing to WhatsApp: a dashboard polling a
// session's status never spends its receipts. Only sessions the registry
// found are keys, and a request this limit refuses is given back to its
// token's limit.
//
// perToken's key is a digest of the token, once the [Authenticator]
// accepted it; with [WithNoAuth] no token is checked, so none is limited.
// Status requests (the status endpoint and the session list) take from a
// budget of their own per token, at the same rate (the key "status:"
// followed by the token's): polling them never spends the token's
// receipts.
func WithRateLimit(perSession, perToken Limiter) Option {
	return func(c *config) error {
		c.sessionLimiter, c.tokenLimiter = orNone(perSession), orNone(perToken)
		return nil
	}
}

// orNone returns l, or nil when l holds a nil pointer or func: calling it
// would panic on every request.
func orNone(l Limiter) Limiter {
	if l == nil {
		return nil
	}
	switch v := reflect.ValueOf(l); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		if v.IsNil() {
			return nil
		}
	}
	return l
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
