//go:build !unix

package whatsmeow

import "math"

// fdLimit returns math.MaxInt where the Manager knows of no limit on open
// descriptors.
func fdLimit() int {
	return math.MaxInt
}

// raiseFDLimit does nothing where the Manager knows of no limit.
func raiseFDLimit() {}
