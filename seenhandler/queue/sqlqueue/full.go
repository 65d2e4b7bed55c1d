package sqlqueue

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bluetick/bluetick/session"
)

// What the databases answer when they are out of space.
const (
	// sqliteFull is SQLite's SQLITE_FULL result code ("database or disk is
	// full"): the disk, or the file's PRAGMA max_page_count.
	sqliteFull = 13
	// sqliteFullText is its message, which every SQLite driver includes.
	sqliteFullText = "database or disk is full"
	// pgDiskFull is PostgreSQL's disk_full SQLSTATE.
	pgDiskFull = "53100"
)

// full returns err wrapped in session.ErrStorageFull when it says the
// database is out of space, else err. It knows the drivers by the methods
// of their errors, without importing them: modernc.org/sqlite's *Error has
// Code() int (the result code, an extended one in its high bits); pgx's
// *pgconn.PgError and lib/pq's *pq.Error have SQLState() string.
func (q *Queue) full(err error) error {
	var (
		coded  interface{ Code() int }
		state  interface{ SQLState() string }
		isFull bool
	)
	switch q.dialect {
	case SQLite:
		isFull = errors.As(err, &coded) && coded.Code()&0xff == sqliteFull || strings.Contains(err.Error(), sqliteFullText)
	case Postgres:
		isFull = errors.As(err, &state) && state.SQLState() == pgDiskFull
	}
	if !isFull {
		return err
	}
	return fmt.Errorf("%w: %w", session.ErrStorageFull, err)
}
