package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Postgres DSNs in every spelling are recognised, get a
// connect timeout, and show no password.
func TestParseStoreDSN(t *testing.T) {
	tests := []struct {
		in, dsn, shown string
	}{
		{"bluetick.db", "bluetick.db", "bluetick.db"},
		{"file:test?mode=memory", "file:test?mode=memory", "file:test?mode=memory"},
		{"postgres://bt:pw@127.0.0.1:5432/bluetick?sslmode=disable",
			"postgres://bt:pw@127.0.0.1:5432/bluetick?connect_timeout=10&sslmode=disable",
			"postgres://bt:xxxxx@127.0.0.1:5432/bluetick?connect_timeout=10&sslmode=disable"},
		{"POSTGRES://bt:pw@db/bluetick", "postgres://bt:pw@db/bluetick?connect_timeout=10", "postgres://bt:xxxxx@db/bluetick?connect_timeout=10"},
		{"PostgreSQL://db/bluetick?connect_timeout=3", "postgres://db/bluetick?connect_timeout=3", "postgres://db/bluetick?connect_timeout=3"},
		{"postgres://db/x?password=pw", "postgres://db/x?connect_timeout=10&password=pw", "postgres://db/x?connect_timeout=10&password=xxxxx"},
		{"host=127.0.0.1 port=5432 user=bt password='p w\\'d' dbname=bluetick sslmode=disable",
			"postgres://bt:p%20w%27d@127.0.0.1:5432/bluetick?connect_timeout=10&sslmode=disable",
			"postgres://bt:xxxxx@127.0.0.1:5432/bluetick?connect_timeout=10&sslmode=disable"},
		{"dbname=bluetick", "postgres:///bluetick?connect_timeout=10", "postgres:///bluetick?connect_timeout=10"},
	}
	for _, tc := range tests {
		got, err := parseStoreDSN(tc.in)
		if err != nil || got.dsn != tc.dsn || got.shown != tc.shown {
			t.Errorf("parseStoreDSN(%q) = %q shown %q, %v; want %q shown %q", tc.in, got.dsn, got.shown, err, tc.dsn, tc.shown)
		}
	}
	if _, err := parseStoreDSN("host=x password='open"); err == nil {
		t.Error("an unclosed quote was accepted")
	}
}

// The password reaches neither the banner nor the error, whichever way the
// DSN came; a keyword DSN is opened as Postgres (not a SQLite file of that
// name). Postgres at 127.0.0.1:1 refuses at once.
func TestStoreSecrets(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"url flag", []string{"-db", "postgres://bt:hunter2@127.0.0.1:1/x?sslmode=disable"}, nil},
		{"upper-case scheme", []string{"-db", "POSTGRES://bt:hunter2@127.0.0.1:1/x?sslmode=disable"}, nil},
		{"keyword flag", []string{"-db", "host=127.0.0.1 port=1 user=bt password=hunter2 dbname=x sslmode=disable"}, nil},
		{"environment", nil, map[string]string{dbEnv: "postgres://bt:hunter2@127.0.0.1:1/x?sslmode=disable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{tokenEnv: "s3cret"}
			for k, v := range tc.env {
				vars[k] = v
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tc.args...),
				env{getenv: func(k string) string { return vars[k] }, stdout: &stdout, stderr: &stderr, clientHook: offline})
			if err == nil || !strings.Contains(err.Error(), "postgres") || strings.Contains(err.Error(), "hunter2") ||
				strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("run = %v; stderr %s", err, &stderr)
			}
		})
	}
	// A SQLite file from the environment is used.
	dir := t.TempDir()
	db := filepath.Join(dir, "from-env.db")
	s := startReal(t, map[string]string{tokenEnv: "s3cret", dbEnv: db})
	if out := s.stop(t); !strings.Contains(out, "store: "+db) {
		t.Errorf("banner does not show the store from $%s:\n%s", dbEnv, out)
	}
	if m, _ := filepath.Glob(db + "*"); len(m) == 0 {
		t.Error("no store created at $" + dbEnv)
	}
}
