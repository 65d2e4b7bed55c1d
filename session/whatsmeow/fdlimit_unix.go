//go:build unix

package whatsmeow

import (
	"math"
	"syscall"
)

// fdLimit returns the process's limit on open descriptors (RLIMIT_NOFILE),
// having raised the soft limit to the hard one if it can: Go does so
// itself at startup since 1.19 (seen with Go 1.26 on Linux: a soft limit of
// 1,024 under a hard one of 20,000 read 19,999 in the program), but an
// embedding program may have lowered it since. No limit is math.MaxInt.
func fdLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return math.MaxInt
	}
	if r.Cur < r.Max {
		raised := r
		raised.Cur = r.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			r = raised
		}
	}
	if uint64(r.Cur) >= math.MaxInt {
		return math.MaxInt
	}
	return int(r.Cur)
}
