package validate

import (
	"errors"
	"strconv"
)

// MaxSessionNameLen is the longest session name accepted.
const MaxSessionNameLen = 128

// ErrInvalidSessionName is wrapped by every error SessionName returns.
var ErrInvalidSessionName = errors.New("invalid session name")

// SessionName checks a session name (Wasend's session, Wawp's instance_id):
// 1 to MaxSessionNameLen characters of printable ASCII. Errors wrap
// ErrInvalidSessionName.
func SessionName(s string) error {
	switch {
	case s == "":
		return &reasonError{kind: ErrInvalidSessionName, reason: "is empty"}
	case len(s) > MaxSessionNameLen:
		return &reasonError{kind: ErrInvalidSessionName,
			reason: "must be at most " + strconv.Itoa(MaxSessionNameLen) + " characters"}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return &reasonError{kind: ErrInvalidSessionName, reason: "must be printable ASCII"}
		}
	}
	return nil
}
