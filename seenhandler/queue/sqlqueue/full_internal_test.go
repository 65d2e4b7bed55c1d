package sqlqueue

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bluetick/bluetick/session"
)

// sqliteErr has the method of modernc.org/sqlite's *Error.
type sqliteErr struct{ code int }

// Error returns the error's text.
func (e *sqliteErr) Error() string { return fmt.Sprintf("sqlite error (%d)", e.code) }

// Code returns the SQLite result code.
func (e *sqliteErr) Code() int { return e.code }

// The errors a database out of space answers, as the drivers give them,
// are session.ErrStorageFull; others are left as they are. (TestStorageFull
// fills a real SQLite file; PostgreSQL's disk_full is hard to cause on
// purpose, so its error is built here as pgx returns it.)
func TestFullClassifies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dialect Dialect
		err     error
		want    bool
	}{
		{"SQLITE_FULL", SQLite, fmt.Errorf("enqueue: %w", &sqliteErr{code: 13}), true},
		{"SQLite's message, another driver", SQLite, errors.New("database or disk is full"), true},
		{"SQLITE_BUSY", SQLite, &sqliteErr{code: 5}, false},
		{"PostgreSQL disk_full", Postgres, fmt.Errorf("enqueue: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}), true},
		{"PostgreSQL out of memory", Postgres, &pgconn.PgError{Code: "53200"}, false},
		{"a code of another dialect", Postgres, &sqliteErr{code: 13}, false},
	} {
		q := &Queue{dialect: tc.dialect}
		got := q.full(tc.err)
		if errors.Is(got, session.ErrStorageFull) != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("%s: full(%v) = %v; ErrStorageFull %v, want %v", tc.name, tc.err, got, errors.Is(got, session.ErrStorageFull), tc.want)
		}
	}
}
