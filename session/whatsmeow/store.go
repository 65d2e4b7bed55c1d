package whatsmeow

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"go.mau.fi/whatsmeow/store/sqlstore"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go

	waLog "go.mau.fi/whatsmeow/util/log"
)

// DefaultDSN is the store Open uses when given an empty DSN: a SQLite file
// in the working directory.
const DefaultDSN = "bluetick.db"

// sqlitePragmas are added to a SQLite DSN unless it sets them itself:
// whatsmeow's schema needs foreign keys; a busy timeout and (for files) WAL
// let the clients of several sessions write at once.
var sqlitePragmas = []struct {
	name, value string
	fileOnly    bool
}{
	{"foreign_keys", "foreign_keys(1)", false},
	{"busy_timeout", "busy_timeout(10000)", false},
	{"journal_mode", "journal_mode(WAL)", true},
}

// DBPool sets the connection pool of the store's *sql.DB (see
// [WithDBPool]); a zero field takes its default. database/sql's own
// defaults keep only 2 idle connections: under concurrent requests a
// Postgres store then opens and closes a connection for nearly every query
// (4,349 connections for 66,000 requests at 32 clients, measured for issue
// 10), halving throughput.
type DBPool struct {
	// MaxOpen bounds the open connections. Default: [DefaultDBMaxOpen] (32).
	MaxOpen int
	// MaxIdle bounds the idle connections kept for reuse, at most MaxOpen.
	// Default: MaxOpen, so that a burst does not reconnect.
	MaxIdle int
	// MaxLifetime closes a connection that old, and MaxIdleTime one idle
	// that long, so that a database restart or failover is picked up.
	// Defaults: [DefaultDBMaxLifetime] (30 min), [DefaultDBMaxIdleTime]
	// (5 min).
	MaxLifetime, MaxIdleTime time.Duration
}

// Defaults of DBPool. With SQLite the connections share one file; WAL lets
// them read at once while one writes.
const (
	DefaultDBMaxOpen     = 32
	DefaultDBMaxLifetime = 30 * time.Minute
	DefaultDBMaxIdleTime = 5 * time.Minute
)

// withDefaults fills p's zero fields.
func (p DBPool) withDefaults() DBPool {
	if p.MaxOpen == 0 {
		p.MaxOpen = DefaultDBMaxOpen
	}
	if p.MaxIdle == 0 {
		p.MaxIdle = p.MaxOpen
	}
	if p.MaxLifetime == 0 {
		p.MaxLifetime = DefaultDBMaxLifetime
	}
	if p.MaxIdleTime == 0 {
		p.MaxIdleTime = DefaultDBMaxIdleTime
	}
	return p
}

// isPostgres reports whether dsn is a postgres:// or postgresql:// URL, the
// scheme in any case.
func isPostgres(dsn string) bool {
	scheme, _, ok := strings.Cut(dsn, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// openDB opens dsn: a postgres:// or postgresql:// URL (any case) through
// pgx, and anything else as SQLite through modernc.org/sqlite — a file
// path, or a "file:" URI (e.g. "file:test?mode=memory&cache=shared"), with
// pool as its connection pool. It returns the database and whatsmeow's name
// for its dialect.
func openDB(ctx context.Context, dsn string, pool DBPool) (*sql.DB, string, error) {
	if dsn == "" {
		dsn = DefaultDSN
	}
	driver, dialect := "sqlite", "sqlite"
	if isPostgres(dsn) {
		driver, dialect = "pgx", "postgres"
	} else {
		dsn = sqliteDSN(dsn)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, "", fmt.Errorf("open %s store: %w", dialect, err)
	}
	pool = pool.withDefaults()
	db.SetMaxOpenConns(pool.MaxOpen)
	db.SetMaxIdleConns(pool.MaxIdle)
	db.SetConnMaxLifetime(pool.MaxLifetime)
	db.SetConnMaxIdleTime(pool.MaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, "", fmt.Errorf("open %s store: %w", dialect, err)
	}
	return db, dialect, nil
}

// sqliteDSN turns a path or file: URI into a "file:" URI with the pragmas
// bluetick needs, keeping any the caller set.
func sqliteDSN(dsn string) string {
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	values, err := url.ParseQuery(query)
	if err != nil {
		values = url.Values{}
	}
	have := strings.Join(values["_pragma"], ",")
	memory := values.Get("mode") == "memory" || path == ":memory:"
	for _, p := range sqlitePragmas {
		if !strings.Contains(have, p.name) && !(p.fileOnly && memory) {
			values.Add("_pragma", p.value)
		}
	}
	return "file:" + path + "?" + values.Encode()
}

// newContainer opens whatsmeow's device store on db and brings its schema
// up to date.
func newContainer(ctx context.Context, db *sql.DB, dialect string, log waLog.Logger) (*sqlstore.Container, error) {
	c := sqlstore.NewWithDB(db, dialect, log)
	if err := c.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("upgrade whatsmeow store: %w", err)
	}
	return c, nil
}

// OpenDB opens the store at dsn as [Open] does (same DSNs, pragmas and
// pool), without touching its tables, and returns it with its dialect:
// "sqlite" or "postgres". It is for a process that keeps only bluetick's
// own tables there, e.g. the durable queue of seenhandler/sqlqueue in
// examples/server -demo -db FILE. The caller closes the database.
func OpenDB(ctx context.Context, dsn string, pool DBPool) (*sql.DB, string, error) {
	return openDB(ctx, dsn, pool)
}

// DB returns the Manager's store database and its dialect ("sqlite" or
// "postgres"), so that bluetick's other tables (seenhandler/sqlqueue's
// queue) live in the same file or database. The Manager closes it in
// Close: stop its users first.
func (m *Manager) DB() (*sql.DB, string) {
	return m.db, m.dialect
}
