//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package whatsmeow

import "os"

// lockFile takes no lock on systems without flock(2): it returns nil, and
// nothing stops a second process from opening the same SQLite store.
func lockFile(string) (*os.File, error) {
	return nil, nil
}
