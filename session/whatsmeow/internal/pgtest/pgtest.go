// Package pgtest gives a test a PostgreSQL database of its own on the server
// of $BLUETICK_TEST_POSTGRES, dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Env names the environment variable that holds the DSN of a PostgreSQL
// server (13 or newer) whose role may create databases, e.g.
// postgres://postgres@127.0.0.1:54329/postgres?sslmode=disable. Unset, the
// tests that need it are skipped, unless CI=true, where they fail (.ci/run
// starts a server and sets it).
const Env = "BLUETICK_TEST_POSTGRES"

// New creates a fresh database for t and returns its DSN; it is dropped
// (connections and all) when t ends.
func New(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(Env)
	if admin == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(Env + " is not set, and CI=true: the PostgreSQL tests must run in CI (.ci/run starts a server and sets it)")
		}
		t.Skip(Env + " is not set: PostgreSQL tests skipped")
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL: %q", Env, admin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	// Lower-case letters and digits: a name that needs no quoting.
	name := "bluetick_test_" + strings.ToLower(rand.Text())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		t.Fatalf("create the test database on %s: %v", Env, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop the test database %s: %v", name, err)
		}
	})
	dsn := *u
	dsn.Path = "/" + name
	return dsn.String()
}
