package whatsmeow

import "testing"

func TestSQLiteDSN(t *testing.T) {
	for in, want := range map[string]string{
		"bluetick.db":                         "file:bluetick.db?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&_pragma=journal_mode%28WAL%29",
		"file:/var/lib/bt.db":                 "file:/var/lib/bt.db?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&_pragma=journal_mode%28WAL%29",
		"file:x?mode=memory&cache=shared":     "file:x?_pragma=foreign_keys%281%29&_pragma=busy_timeout%2810000%29&cache=shared&mode=memory",
		"file:y.db?_pragma=busy_timeout(500)": "file:y.db?_pragma=busy_timeout%28500%29&_pragma=foreign_keys%281%29&_pragma=journal_mode%28WAL%29",
	} {
		if got := sqliteDSN(in); got != want {
			t.Errorf("sqliteDSN(%q)\n got %s\nwant %s", in, got, want)
		}
	}
}
