package main

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"

	// The store's database/sql drivers: session/whatsmeow and its cluster
	// link none themselves, so that a program wrapping its own client
	// links no database; this server takes both kinds of -db.
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", for postgres:// stores and the cluster
	_ "modernc.org/sqlite"             // "sqlite", pure Go, for SQLite files
)

// dbEnv holds the store's DSN when -db is not given, so that a password
// stays out of the process list.
const dbEnv = "BLUETICK_DB"

// defaultConnectTimeout bounds each attempt to reach Postgres, in seconds,
// unless the DSN sets connect_timeout: a silent listener would otherwise
// hang startup.
const defaultConnectTimeout = "10"

// masked replaces a password in what is printed.
const masked = "xxxxx"

// storeDSN is a -db value as session/whatsmeow.Open wants it, with what the
// banner and errors may show of it.
type storeDSN struct {
	dsn      string // for Open
	shown    string // the DSN with its password masked
	password string // to mask in error texts; "" when none
	postgres bool   // a PostgreSQL store: the server runs as a cluster node
}

// parseStoreDSN recognises Postgres DSNs that session/whatsmeow would take
// for SQLite file names: a URL whose scheme is postgres or postgresql in
// any case ("POSTGRES://…"), and libpq's keyword form ("host=… dbname=…"),
// which becomes a URL. A Postgres DSN gets connect_timeout (10 s) unless it
// sets one. Anything else is a SQLite path or file: URI, left as it is.
func parseStoreDSN(dsn string) (storeDSN, error) {
	scheme, _, isURL := strings.Cut(dsn, "://")
	switch {
	case isURL && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")):
		u, err := url.Parse("postgres://" + dsn[len(scheme)+3:])
		if err != nil {
			return storeDSN{}, errors.New("-db: the postgres URL cannot be parsed")
		}
		return pgURL(u), nil
	case isKeywordDSN(dsn):
		u, err := keywordURL(dsn)
		if err != nil {
			return storeDSN{}, err
		}
		return pgURL(u), nil
	}
	return storeDSN{dsn: dsn, shown: dsn}, nil
}

// pgURL adds the default connect timeout to u and masks its password.
func pgURL(u *url.URL) storeDSN {
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", defaultConnectTimeout)
		u.RawQuery = q.Encode()
	}
	s := storeDSN{dsn: u.String(), shown: u.Redacted(), postgres: true}
	if p, ok := u.User.Password(); ok {
		s.password = p
		if q.Get("password") == "" {
			return s
		}
	}
	if p := q.Get("password"); p != "" { // a password in the query
		s.password = p
		q.Set("password", masked)
		shown := *u
		shown.RawQuery = q.Encode()
		if _, ok := u.User.Password(); ok {
			shown.User = url.UserPassword(u.User.Username(), masked)
		}
		s.shown = shown.String()
	}
	return s
}

// keywords that make a DSN libpq's keyword form rather than a file name.
var pgKeywords = []string{"host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "connect_timeout"}

func isKeywordDSN(dsn string) bool {
	for _, f := range strings.Fields(dsn) {
		k, _, ok := strings.Cut(f, "=")
		if ok && slices.Contains(pgKeywords, strings.TrimSpace(k)) {
			return true
		}
	}
	return false
}

// keywordURL turns libpq's "key=value key='quoted value'" form into a
// postgres URL: host, port, user, password and dbname go where a URL
// puts them, the other keys into its query.
func keywordURL(dsn string) (*url.URL, error) {
	u := &url.URL{Scheme: "postgres"}
	q := url.Values{}
	var host, port, user, password string
	var hasPassword bool
	s := strings.TrimSpace(dsn)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New("-db: a keyword DSN must be key=value pairs")
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			s = s[1:]
			closed := false
			for len(s) > 0 {
				c := s[0]
				s = s[1:]
				if c == '\\' && len(s) > 0 {
					val.WriteByte(s[0])
					s = s[1:]
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("-db: a quoted value in the keyword DSN is not closed")
			}
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.ReplaceAll(s[:end], `\`, ""))
			s = s[end:]
		}
		s = strings.TrimLeft(s, " \t")
		switch v := val.String(); key {
		case "host":
			host = v
		case "port":
			port = v
		case "user":
			user = v
		case "password":
			password, hasPassword = v, true
		case "dbname":
			u.Path = "/" + v
		default:
			q.Set(key, v)
		}
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	u.Host = host
	switch {
	case hasPassword:
		u.User = url.UserPassword(user, password)
	case user != "":
		u.User = url.User(user)
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// redactedError is an error whose text has the store's password masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks s's password in err's text.
func (s storeDSN) redact(err error) error {
	if err == nil || s.password == "" || !strings.Contains(err.Error(), s.password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), s.password, masked), err: err}
}
