package whatsmeow

import (
	"os/exec"
	"strings"
	"testing"
)

// Without its driver registered, opening a store fails saying which import
// registers it: the package links none itself.
func TestMissingDriverNamesItsImport(t *testing.T) {
	for _, tc := range []struct{ driver, dialect, want string }{
		{"sqlite", "sqlite", `import _ "modernc.org/sqlite"`},
		{"pgx", "postgres", `import _ "github.com/jackc/pgx/v5/stdlib"`},
	} {
		err := checkDriver(tc.driver, tc.dialect, []string{"other"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %s", tc.driver, err, tc.want)
		}
		if err := checkDriver(tc.driver, tc.dialect, []string{"other", tc.driver}); err != nil {
			t.Errorf("%s registered: %v", tc.driver, err)
		}
	}
}

// Importing the package to wrap one's own client links no database driver,
// and the cluster does not import the HTTP handler above it: the program
// chooses its drivers (database/sql style).
func TestDependenciesLinkNoDriver(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".", "./cluster").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/jackc/pgx", "modernc.org/sqlite",
			"github.com/bluetick/bluetick/seenhandler"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("session/whatsmeow or its cluster depends on %s", dep)
			}
		}
	}
}
