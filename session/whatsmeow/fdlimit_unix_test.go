//go:build unix

package whatsmeow_test

import (
	"context"
	"math"
	"path/filepath"
	"syscall"
	"testing"

	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// Open raises the soft descriptor limit to the hard one; Capacity only
// reads the limit: a getter called under the Manager's lock changes
// nothing process-wide.
//
// Before, Capacity raised the limit itself, on every call.
func TestCapacityOnlyReadsTheLimit(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Skip(err)
	}
	if orig.Cur != orig.Max || orig.Max < 1024 || uint64(orig.Max) > math.MaxInt32 {
		t.Skipf("needs a finite soft limit raised to its hard one (have %d of %d)", orig.Cur, orig.Max)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restore the limit: %v", err)
		}
	})
	lower := func() {
		t.Helper()
		low := orig
		low.Cur = orig.Max - 1
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
	}
	soft := func() uint64 {
		t.Helper()
		var r syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			t.Fatal(err)
		}
		return uint64(r.Cur)
	}

	lower()
	m, err := bwm.Open(context.Background(), filepath.Join(t.TempDir(), "bluetick.db"), bwm.WithFDReserve(10))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := soft(); got != uint64(orig.Max) {
		t.Errorf("soft limit after Open = %d, want the hard one, %d", got, orig.Max)
	}

	lower()
	if got, want := m.Capacity(), int(orig.Max-1)-10; got != want {
		t.Errorf("Capacity = %d, want %d (the soft limit as it is, less the reserve)", got, want)
	}
	if got := soft(); got != uint64(orig.Max-1) {
		t.Errorf("soft limit after Capacity = %d, want %d: the getter changed it", got, orig.Max-1)
	}
}
