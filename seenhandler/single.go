package seenhandler

import "github.com/bluetick/bluetick/session"

// singleSession returns the name of reg's one session when reg is a
// session.SingleRegistry, possibly under wrappers that say what they wrap
// (session.Decorate's Unwrap), and "" otherwise. Every request to such a
// registry is served as that session, whatever name it carries or lacks: an
// app with one WhatsApp account has no name for clients to agree on, and
// rate limits, queues, authentication and answers keyed by one name cannot
// be split by clients sending several.
func singleSession(reg session.Registry) string {
	for reg != nil {
		if s, ok := reg.(*session.SingleRegistry); ok {
			return s.Name()
		}
		w, ok := reg.(interface{ Unwrap() session.Registry })
		if !ok {
			return ""
		}
		reg = w.Unwrap()
	}
	return ""
}
