package whatsmeow

// The store backends the store tests run on: SQLite always, PostgreSQL when
// BLUETICK_TEST_POSTGRES holds a DSN. Its names are exported for the tests of
// package whatsmeow_test too (test files only: not part of the API).

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// EnvTestPostgres names the environment variable that holds the DSN of a
// PostgreSQL server for the store tests, e.g.
// postgres://postgres@127.0.0.1:54329/postgres?sslmode=disable, of
// PostgreSQL 13 or newer. The role must be allowed to create databases: each
// test gets a fresh one, dropped afterwards. Unset, the PostgreSQL subtests
// are skipped, unless CI=true, where they fail (.ci/run starts a server and
// sets it).
const EnvTestPostgres = pgtest.Env

// TestStore is a fresh, empty store of one backend.
type TestStore struct {
	// Backend is "sqlite" or "postgres", the subtest's name.
	Backend string
	// DSN is what Open takes.
	DSN string
	// Dialect is whatsmeow's name of the SQL dialect: "sqlite" or "postgres".
	Dialect string
	// Driver and DriverDSN open the same database with database/sql
	// (driver "sqlite" or "pgx").
	Driver, DriverDSN string
	// BadDSN is a DSN of the same backend that Open must refuse: a file in a
	// missing directory, a database that does not exist.
	BadDSN string
}

// ForEachStore runs f as a subtest on a fresh store of each backend.
func ForEachStore(t *testing.T, f func(t *testing.T, st TestStore)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, newSQLiteStore(t))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, newPostgresStore(t))
	})
}

// ForEachBenchStore is ForEachStore for benchmarks.
func ForEachBenchStore(b *testing.B, f func(b *testing.B, st TestStore)) {
	b.Helper()
	b.Run("sqlite", func(b *testing.B) {
		f(b, newSQLiteStore(b))
	})
	b.Run("postgres", func(b *testing.B) {
		f(b, newPostgresStore(b))
	})
}

// newSQLiteStore returns a SQLite file store in t's temporary directory.
func newSQLiteStore(t testing.TB) TestStore {
	dir := t.TempDir()
	path := filepath.Join(dir, "bluetick.db")
	return TestStore{
		Backend:   "sqlite",
		DSN:       path,
		Dialect:   "sqlite",
		Driver:    "sqlite",
		DriverDSN: "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)",
		BadDSN:    filepath.Join(dir, "no", "such", "dir", "x.db"),
	}
}

// newPostgresStore creates a database of its own for t on the server of
// EnvTestPostgres, and drops it when t ends.
func newPostgresStore(t testing.TB) TestStore {
	t.Helper()
	u, err := url.Parse(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	dsn, bad := *u, *u
	bad.Path = u.Path + "_missing"
	return TestStore{
		Backend:   "postgres",
		DSN:       dsn.String(),
		Dialect:   "postgres",
		Driver:    "pgx",
		DriverDSN: dsn.String(),
		BadDSN:    bad.String(),
	}
}

// DB opens the store with database/sql, for direct SQL; it is closed when t
// ends.
func (st TestStore) DB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open(st.Driver, st.DriverDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// SaveDevice stores a paired device whose JID user is user, as a previous
// run of the server would have.
func (st TestStore) SaveDevice(t testing.TB, user string) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open(st.Driver, st.DriverDSN)
	if err != nil {
		t.Fatal(err)
	}
	c := sqlstore.NewWithDB(db, st.Dialect, nil)
	defer c.Close()
	if err := c.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	dev := c.NewDevice()
	id := types.NewADJID(user, 0, 1)
	dev.ID = &id
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
}
