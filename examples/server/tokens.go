package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"github.com/bluetick/bluetick/seenhandler"
)

// parseTokens reads a tokens file: one "token: session, session…" per line
// ("*" for every session), blank lines and lines starting with # ignored.
// Errors name the line, never the token.
func parseTokens(r io.Reader) (map[string][]string, error) {
	tokens := map[string][]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		token, list, ok := strings.Cut(line, ":")
		token = strings.TrimSpace(token)
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d: want token: session,…", n)
		case token == "" || strings.ContainsAny(token, " \t"):
			return nil, fmt.Errorf("line %d: the token is empty or has blanks", n)
		case tokens[token] != nil:
			return nil, fmt.Errorf("line %d: the token is listed twice", n)
		}
		sessions := splitNames(list)
		if len(sessions) == 0 {
			return nil, fmt.Errorf("line %d: the token may use no session (list names, or *)", n)
		}
		tokens[token] = sessions
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return tokens, nil
}

// tokenAuth is the server's Authenticator: seenhandler.NewStaticAuth's over
// the -token and the -tokens file, replaced as a whole when the file is
// reloaded. It is safe for concurrent use.
type tokenAuth struct {
	file  string            // "" without -tokens
	extra map[string]string // -token (or the demo token): every session
	cur   atomic.Pointer[seenhandler.Authenticator]
	count atomic.Int64 // tokens in cur
}

// newTokenAuth loads file (if any) and adds token (if any) for every
// session.
func newTokenAuth(file, token string) (*tokenAuth, error) {
	a := &tokenAuth{file: file, extra: map[string]string{}}
	if token != "" {
		a.extra[token] = seenhandler.AllSessions
	}
	return a, a.load()
}

// load (re)reads the file; on error the tokens in use stay.
func (a *tokenAuth) load() error {
	tokens := map[string][]string{}
	if a.file != "" {
		b, err := os.ReadFile(a.file)
		if err != nil {
			return fmt.Errorf("-tokens: %w", err)
		}
		if tokens, err = parseTokens(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("-tokens %s: %w", a.file, err)
		}
	}
	for token, all := range a.extra {
		tokens[token] = []string{all} // -token may use every session
	}
	if len(tokens) == 0 {
		return fmt.Errorf("-tokens %s: no token", a.file)
	}
	auth, err := seenhandler.NewStaticAuth(tokens)
	if err != nil {
		return err
	}
	a.cur.Store(&auth)
	a.count.Store(int64(len(tokens)))
	return nil
}

// Authenticate implements seenhandler.Authenticator.
func (a *tokenAuth) Authenticate(ctx context.Context, c seenhandler.Credentials) (context.Context, error) {
	return (*a.cur.Load()).Authenticate(ctx, c)
}

// reloadOn reloads the file each time hup delivers, until ctx ends, and
// says so on w (failures also in the log; the tokens in use then stay).
func (a *tokenAuth) reloadOn(ctx context.Context, hup <-chan os.Signal, w io.Writer, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if err := a.load(); err != nil {
			logger.Error("reloading the tokens failed; the tokens in use stay", "error", err)
			fmt.Fprintf(w, "tokens not reloaded: %v\n", err)
			continue
		}
		fmt.Fprintf(w, "tokens reloaded from %s: %d\n", a.file, a.count.Load())
	}
}
