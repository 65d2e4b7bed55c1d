// Package ratelimit holds [seenhandler.Limiter]s: [Memory], one token
// bucket per key in this process, and [Func], a function as a Limiter. It
// lives apart from seenhandler so that a handler without limits, or with
// limits over a shared store, links no bucket code.
//
//	perSession, err := ratelimit.NewMemory(1, 5) // 1 a second, 5 at once
//	if err != nil {
//		return err
//	}
//	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth), seenhandler.WithRateLimit(perSession, nil))
package ratelimit
