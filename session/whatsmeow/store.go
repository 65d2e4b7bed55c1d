package whatsmeow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// defaultDSN is the store Open uses when given an empty DSN: a SQLite file
// in the working directory.
const defaultDSN = "bluetick.db"

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
// (4,349 connections for 66,000 requests at 32 clients, measured),
// halving throughput.
type DBPool struct {
	// MaxOpen bounds the open connections. Default: 32.
	MaxOpen int
	// MaxIdle bounds the idle connections kept for reuse, at most MaxOpen.
	// Default: MaxOpen, so that a burst does not reconnect.
	MaxIdle int
	// MaxLifetime closes a connection that old, and MaxIdleTime one idle
	// that long, so that a database restart or failover is picked up.
	// Defaults: 30 min, defaultDBMaxIdleTime
	// (5 min).
	MaxLifetime, MaxIdleTime time.Duration
}

// Defaults of DBPool. With SQLite the connections share one file; WAL lets
// them read at once while one writes.
const (
	defaultDBMaxOpen     = 32
	defaultDBMaxLifetime = 30 * time.Minute
	defaultDBMaxIdleTime = 5 * time.Minute
)

// withDefaults fills p's zero fields.
func (p DBPool) withDefaults() DBPool {
	if p.MaxOpen == 0 {
		p.MaxOpen = defaultDBMaxOpen
	}
	if p.MaxIdle == 0 {
		p.MaxIdle = p.MaxOpen
	}
	if p.MaxLifetime == 0 {
		p.MaxLifetime = defaultDBMaxLifetime
	}
	if p.MaxIdleTime == 0 {
		p.MaxIdleTime = defaultDBMaxIdleTime
	}
	return p
}

// isPostgres reports whether dsn is a postgres:// or postgresql:// URL, the
// scheme in any case.
func isPostgres(dsn string) bool {
	scheme, _, ok := strings.Cut(dsn, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// ErrStoreInUse is returned by Open for a SQLite store that another
// process — or another [Manager] of this one — has open: a SQLite store
// serves one process (run several on PostgreSQL). Open holds an exclusive
// flock(2) on the file named as the store with ".lock" appended (left in
// place; it holds no data) until Close, and the system releases it when
// the process dies. On systems without flock (Windows, Plan 9, AIX…) no
// lock is taken.
var ErrStoreInUse = errors.New("the SQLite store is in use by another process; a SQLite store serves one process: use PostgreSQL to run several")

// errLocked is lockFile's answer when another open file holds the lock.
var errLocked = errors.New("locked")

// storeDB is an open database, with a SQLite file's lock.
type storeDB struct {
	db      *sql.DB
	dialect string // whatsmeow's name: "sqlite" or "postgres"
	lock    *os.File
}

// close closes the database, then releases the lock.
func (s *storeDB) close() error {
	err := s.db.Close()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}

// openDB opens dsn: a postgres:// or postgresql:// URL (any case) through
// pgx, and anything else as SQLite through modernc.org/sqlite — a file
// path, or a "file:" URI (e.g. "file:test?mode=memory&cache=shared"), with
// pool as its connection pool. A SQLite file is locked first (see
// [ErrStoreInUse]).
func openDB(ctx context.Context, dsn string, pool DBPool) (*storeDB, error) {
	if dsn == "" {
		dsn = defaultDSN
	}
	driver, dialect := "sqlite", "sqlite"
	var lock *os.File
	if isPostgres(dsn) {
		driver, dialect = "pgx", "postgres"
	}
	if err := checkDriver(driver, dialect, sql.Drivers()); err != nil {
		return nil, err
	}
	if dialect == "sqlite" {
		var path string
		dsn, path = sqliteDSN(dsn)
		if path != "" {
			var err error
			if lock, err = lockFile(path + ".lock"); errors.Is(err, errLocked) {
				return nil, fmt.Errorf("open sqlite store %s: %w", path, ErrStoreInUse)
			} else if err != nil {
				return nil, fmt.Errorf("open sqlite store %s: lock: %w", path, err)
			}
		}
	}
	s, err := openPool(ctx, driver, dialect, dsn, pool)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// driverImports name, by database/sql driver, the package a program
// imports to register it. The package links no driver itself, database/sql
// style: a program that wraps its own client links none, and one that opens
// a store links the one it chose.
var driverImports = map[string]string{
	"sqlite": "modernc.org/sqlite",
	"pgx":    "github.com/jackc/pgx/v5/stdlib",
}

// checkDriver returns an error naming the import that registers driver,
// when it is not among the registered drivers (sql.Drivers()).
func checkDriver(driver, dialect string, registered []string) error {
	if slices.Contains(registered, driver) {
		return nil
	}
	return fmt.Errorf("open %s store: no database/sql driver %q is registered: import _ %q in the program", dialect, driver, driverImports[driver])
}

// openPool opens and pings a database/sql pool.
func openPool(ctx context.Context, driver, dialect, dsn string, pool DBPool) (*storeDB, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	pool = pool.withDefaults()
	db.SetMaxOpenConns(pool.MaxOpen)
	db.SetMaxIdleConns(pool.MaxIdle)
	db.SetConnMaxLifetime(pool.MaxLifetime)
	db.SetConnMaxIdleTime(pool.MaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	return &storeDB{db: db, dialect: dialect}, nil
}

// sqliteDSN turns a path or file: URI into a "file:" URI with the pragmas
// bluetick needs, keeping any the caller set. It returns the file's path
// too, empty for an in-memory database.
func sqliteDSN(dsn string) (string, string) {
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
	file := path
	if memory {
		file = ""
	}
	return "file:" + path + "?" + values.Encode(), file
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
// pool, and a SQLite file locked to this process: see [ErrStoreInUse]),
// without touching its tables, and returns it with its dialect: "sqlite"
// or "postgres", and the function that closes it and releases the lock. It
// is for a process that keeps only bluetick's own tables there, e.g. the
// durable queue of seenhandler/queue/sqlqueue in examples/server -demo -db FILE.
func OpenDB(ctx context.Context, dsn string, pool DBPool) (db *sql.DB, dialect string, close func() error, err error) {
	st, err := openDB(ctx, dsn, pool)
	if err != nil {
		return nil, "", nil, err
	}
	return st.db, st.dialect, st.close, nil
}

// DB returns the Manager's store database and its dialect ("sqlite" or
// "postgres"), so that bluetick's other tables (seenhandler/queue/sqlqueue's
// queue) live in the same file or database. The Manager closes it in
// Close: stop its users first.
func (m *Manager) DB() (*sql.DB, string) {
	return m.db, m.dialect
}
