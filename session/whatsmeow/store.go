package whatsmeow

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

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

// openDB opens dsn: "postgres://…" or "postgresql://…" through pgx, and
// anything else as SQLite through modernc.org/sqlite — a file path, or a
// "file:" URI (e.g. "file:test?mode=memory&cache=shared"). It returns the
// database and whatsmeow's name for its dialect.
func openDB(ctx context.Context, dsn string) (*sql.DB, string, error) {
	if dsn == "" {
		dsn = DefaultDSN
	}
	driver, dialect := "sqlite", "sqlite"
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		driver, dialect = "pgx", "postgres"
	} else {
		dsn = sqliteDSN(dsn)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, "", fmt.Errorf("open %s store: %w", dialect, err)
	}
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
