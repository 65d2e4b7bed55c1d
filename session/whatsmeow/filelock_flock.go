//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package whatsmeow

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on path, created if missing,
// without waiting: the returned file holds it until closed, or until the
// process dies (the kernel releases it). A lock is held per open file, so
// a second lockFile of the same path fails within one process too. It
// returns errLocked when someone else holds the lock.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}
