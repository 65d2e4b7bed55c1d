package seenhandler

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Errors an [Authenticator] returns (possibly wrapped).
var (
	// [ErrUnauthorized]: the token is missing or unknown. HTTP 401.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the token is known but may not use the session. HTTP 403.
	ErrForbidden = errors.New("forbidden")
)

// Credentials is what a request presents to an [Authenticator].
type Credentials struct {
	// Token is the API token, taken from "Authorization: Bearer <token>",
	// then "X-Api-Key: <token>", then the body's "access_token"; "" when the
	// request carries none.
	Token string
	// Session is the session the request wants to use; "" when it names none
	// (the handler then answers 400 if the token is accepted).
	Session string
}

// Authenticator decides whether a request may use a session, and says who
// is asking.
//
// Authenticate must be safe for concurrent use. To allow the request it
// returns a nil error and the context to serve the request in: ctx itself,
// or ctx with the principal the token stands for (under the
// [Authenticator]'s own context key), which then reaches the
// session.Registry's Lookup, the Session and the [Observer]. A nil context
// means ctx. It returns an error wrapping [ErrUnauthorized] when the token
// is missing or unknown, and one wrapping [ErrForbidden] when the token may
// not use c.Session. When c.Session is "" it checks the token alone. Any
// other error becomes 500. ctx carries the request's timeout ([WithTimeout]).
//
// A "mark as seen" request whose token is in a header is authenticated
// twice: before its body is read, with the session of the URL or "" (so
// that an unknown token is refused without reading the body), and once the
// body is decoded, with the session it names. The session list
// (the session list, PathWAHASessions) asks once more for each session, and leaves
// out those refused with [ErrForbidden].
//
// # Authenticating in the app's own middleware
//
// ctx is the request's context (r.Context()) with the handler's timeout
// added, so whatever the app's middleware put in the request's context is
// there: an app that authenticates its users itself (a session cookie, a
// JWT, an auth proxy's header) wraps the handler, or the router it is
// mounted on, in that middleware, puts the principal in the context under
// its own key, and gives [WithAuth] an [AuthenticatorFunc] that reads it
// and ignores c.Token:
//
//	seenhandler.WithAuth(seenhandler.AuthenticatorFunc(func(ctx context.Context, c seenhandler.Credentials) (context.Context, error) {
//		user, ok := ctx.Value(userKey{}).(*User) // set by the app's middleware
//		switch {
//		case !ok:
//			return nil, seenhandler.ErrUnauthorized // 401, the answer a missing token gets
//		case c.Session != "" && !user.MayUse(c.Session):
//			return nil, seenhandler.ErrForbidden // 403
//		}
//		return ctx, nil
//	}))
//
// Requests that reach the handler without passing through the middleware
// then get the 401 of a missing token. c.Token is whatever API token the
// request carries (usually "" then), and only a token limits a request
// under [WithRateLimit]; limit such users in the middleware.
type Authenticator interface {
	Authenticate(ctx context.Context, c Credentials) (context.Context, error)
}

// AuthenticatorFunc adapts a function to the [Authenticator] interface.
type AuthenticatorFunc func(ctx context.Context, c Credentials) (context.Context, error)

// Authenticate calls f(ctx, c).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, c Credentials) (context.Context, error) {
	return f(ctx, c)
}

// [AllSessions], in the session list of [NewStaticAuth], lets a token use every
// session.
const AllSessions = "*"

// staticAuth is [NewStaticAuth]'s Authenticator.
type staticAuth struct {
	tokens []staticToken
}

type staticToken struct {
	hash     [sha256.Size]byte
	all      bool
	sessions []string
}

// NewStaticAuth returns an [Authenticator] over a fixed set of tokens:
// tokens maps each token to the sessions it may use ([AllSessions] for
// every session). Tokens are compared in constant time; the context is
// returned unchanged. It is safe for concurrent use. An empty token or an
// empty session list is an error.
func NewStaticAuth(tokens map[string][]string) (Authenticator, error) {
	a := &staticAuth{}
	for token, sessions := range tokens {
		if token == "" {
			return nil, errors.New("seenhandler: NewStaticAuth: empty token")
		}
		if len(sessions) == 0 {
			return nil, errors.New("seenhandler: NewStaticAuth: a token may use no session (list names, or AllSessions)")
		}
		a.tokens = append(a.tokens, staticToken{
			hash:     sha256.Sum256([]byte(token)),
			all:      slices.Contains(sessions, AllSessions),
			sessions: slices.Clone(sessions),
		})
	}
	return a, nil
}

func (a *staticAuth) Authenticate(ctx context.Context, c Credentials) (context.Context, error) {
	if c.Token == "" {
		return nil, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	return a.allow(ctx, c, a.match(c.Token))
}

// match returns the index in a.tokens of token, or -1 if it is none of
// them. Hashing first gives equal lengths; every token is compared, so the
// time taken does not tell which one matched.
func (a *staticAuth) match(token string) int {
	h := sha256.Sum256([]byte(token))
	match := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(h[:], a.tokens[i].hash[:]) == 1 {
			match = i
		}
	}
	return match
}

// allow answers as Authenticate does for c, whose token, not "", match
// found at that index of a.tokens (-1: none). The handler asks about a
// request's token twice (before its body is read, then with its session)
// and has it matched once (see Handler.ask): a SHA-256 saved per request.
func (a *staticAuth) allow(ctx context.Context, c Credentials, match int) (context.Context, error) {
	if match < 0 {
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	t := a.tokens[match]
	if c.Session == "" || t.all || slices.Contains(t.sessions, c.Session) {
		return ctx, nil
	}
	return nil, fmt.Errorf("%w: token may not use session %q", ErrForbidden, c.Session)
}

// requestToken returns the token from the Authorization (Bearer) header, the
// X-Api-Key header, or the body's access_token, in that order.
func requestToken(r *http.Request, bodyToken string) string {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token != "" {
			return token
		}
	}
	if token := strings.TrimSpace(r.Header.Get("X-Api-Key")); token != "" {
		return token
	}
	return bodyToken
}
