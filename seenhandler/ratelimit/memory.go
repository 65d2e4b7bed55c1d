package ratelimit

import (
	"context"
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/bluetick/bluetick/seenhandler"
)

// Func adapts a function to the [seenhandler.Limiter] interface.
type Func func(ctx context.Context, key string) (seenhandler.Reservation, error)

// Reserve calls f(ctx, key).
func (f Func) Reserve(ctx context.Context, key string) (seenhandler.Reservation, error) {
	return f(ctx, key)
}

var (
	_ seenhandler.Limiter = Func(nil)
	_ seenhandler.Limiter = (*Memory)(nil)
)

// DefaultKeys is how many keys a [Memory] tracks; past that
// it forgets the least recently used one (which then starts with a full
// bucket again).
const DefaultKeys = 10_000

// Memory is a [seenhandler.Limiter] with one token bucket (golang.org/x/time/rate)
// per key, in memory, for at most [DefaultKeys] keys (least recently
// used forgotten first). It is safe for concurrent use.
type Memory struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
}

// NewMemory returns a [Memory] that lets each key make perSecond
// requests a second on average, and burst at once.
func NewMemory(perSecond float64, burst int) (*Memory, error) {
	if perSecond <= 0 || burst < 1 {
		return nil, errors.New("ratelimit: NewMemory: rate and burst must be positive")
	}
	buckets, err := lru.New[string, *rate.Limiter](DefaultKeys)
	if err != nil {
		return nil, err
	}
	return &Memory{limit: rate.Limit(perSecond), burst: burst, buckets: buckets}, nil
}

// Reserve implements [seenhandler.Limiter]; the Reservation's Cancel gives back the
// token it took.
func (m *Memory) Reserve(_ context.Context, key string) (seenhandler.Reservation, error) {
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
		return seenhandler.Reservation{RetryAfter: d}, nil
	}
	// rate.Reservation.CancelAt gives nothing back once the reservation's time
	// has come (as it has: it was for now), so the token is returned as a
	// reservation of -1: rate.Limiter then holds one token more, capped at
	// the burst when it next refills.
	return seenhandler.Reservation{OK: true, Cancel: func() { b.ReserveN(time.Now(), -1) }}, nil
}
