package whatsmeow

import (
	"database/sql"
	"testing"
	"time"
)

func TestSQLiteDSN(t *testing.T) {
	for in, want := range map[string]string{
		"bluetick.db":                         "file:bluetick.db?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&_pragma=journal_mode%28WAL%29",
		"file:/var/lib/bt.db":                 "file:/var/lib/bt.db?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&_pragma=journal_mode%28WAL%29",
		"file:x?mode=memory&cache=shared":     "file:x?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&cache=shared&mode=memory",
		"file:y.db?_pragma=busy_timeout(500)": "file:y.db?_pragma=busy_timeout%28500%29&_pragma=foreign_keys%281%29&_pragma=journal_mode%28WAL%29",
	} {
		if got, _ := sqliteDSN(in); got != want {
			t.Errorf("sqliteDSN(%q)\n got %s\nwant %s", in, got, want)
		}
	}
}

// The store's pool keeps its connections (database/sql's default keeps 2
// idle, so concurrent requests reconnect), with the defaults filled in.
func TestDBPool(t *testing.T) {
	store, err := openDB(t.Context(), "file:pool?mode=memory&cache=shared", DBPool{MaxOpen: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer store.close()
	db := store.db
	if st := db.Stats(); st.MaxOpenConnections != 4 {
		t.Errorf("MaxOpenConnections %d, want 4", st.MaxOpenConnections)
	}
	// Four connections in use at once, then released: all four stay idle.
	conns := make([]*sql.Conn, 4)
	for i := range conns {
		if conns[i], err = db.Conn(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if st := db.Stats(); st.Idle != 4 {
		t.Errorf("%d idle connections kept, want 4 (MaxIdle defaults to MaxOpen)", st.Idle)
	}
	if d := (DBPool{}).withDefaults(); d != (DBPool{MaxOpen: defaultDBMaxOpen, MaxIdle: defaultDBMaxOpen, MaxLifetime: defaultDBMaxLifetime, MaxIdleTime: defaultDBMaxIdleTime}) {
		t.Errorf("defaults %+v", d)
	}
	for _, p := range []DBPool{{MaxOpen: -1}, {MaxIdle: 5, MaxOpen: 2}, {MaxLifetime: -time.Second}} {
		if err := WithDBPool(p)(&options{}); err == nil {
			t.Errorf("WithDBPool(%+v) accepted", p)
		}
	}
}

func TestIsPostgres(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u@h/db": true, "POSTGRES://u@h/db": true, "postgresql://h/db": true,
		"bluetick.db": false, "file:x.db": false, "sqlite://x": false,
	} {
		if got := isPostgres(dsn); got != want {
			t.Errorf("isPostgres(%q) = %v", dsn, got)
		}
	}
}
