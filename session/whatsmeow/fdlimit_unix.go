//go:build unix

package whatsmeow

import (
	"math"
	"syscall"
)

// fdLimit returns the process's limit on open descriptors (RLIMIT_NOFILE,
// the soft one), as it is now; no limit is math.MaxInt. It only reads: the
// Manager calls it under its lock, on every Acquire.
func fdLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return math.MaxInt
	}
	if uint64(r.Cur) >= math.MaxInt {
		return math.MaxInt
	}
	return int(r.Cur)
}

// raiseFDLimit raises the process's soft limit on open descriptors to the
// hard one if it can, once per [Open]: Go does so itself at startup since
// 1.19 (seen with Go 1.26 on Linux: a soft limit of 1,024 under a hard one
// of 20,000 read 19,999 in the program), but an embedding program may have
// lowered it since. A process-wide change: it belongs to construction, not
// to a getter.
func raiseFDLimit() {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur >= r.Max {
		return
	}
	r.Cur = r.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r) // a refusal leaves the limit as it was: Capacity reads it
}
