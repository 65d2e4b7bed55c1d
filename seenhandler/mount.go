package seenhandler

import "net/http"

// The standard paths of the three dialects.
const (
	// PathWasend is Wasend's path: {"session","to","messageId"} with
	// Authorization: Bearer.
	PathWasend = "/sendSeen"
	// PathWawp is Wawp's path: {"instance_id","access_token","chatId",
	// "messageIds","participant"}; the instance may come in an
	// X-Instance-ID header instead, as Wawp's SDK sends it.
	PathWawp = "/v2/send/seen"
	// PathWAHA is WAHA's path: {"session","chatId","messageIds",
	// "participant"} with X-Api-Key; every success is a 201, as WAHA's.
	PathWAHA = "/api/sendSeen"
)

// Router is what [Mount] needs of a router: net/http's ServeMux and chi's
// Router have this method. (gorilla/mux's returns a *Route: register
// [Handler] and [Handler.ServeStatus] on it yourself, as examples/mux does.)
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Mount registers h on r: the seen endpoint at [PathWasend], PathWawp and
// PathWAHA, the status endpoint ([Handler.ServeStatus]) at [PathWawpStatus]
// and PathWAHAStatus, the session list ([Handler.ServeSessions]) at
// PathWAHASessions, and the [OpenAPI] document at the path given to
// [WithOpenAPI], if any. The patterns carry no method, so that h itself
// answers other methods with a JSON 405. To serve under a prefix, mount on
// a router behind http.StripPrefix.
func Mount(r Router, h *Handler) {
	for _, p := range []string{PathWasend, PathWawp, PathWAHA} {
		r.Handle(p, h)
	}
	status := http.HandlerFunc(h.ServeStatus)
	r.Handle(PathWawpStatus, status)
	r.Handle(PathWAHAStatus, status)
	r.Handle(PathWAHASessions, http.HandlerFunc(h.ServeSessions))
	if h.cfg.openAPIPath != "" {
		r.Handle(h.cfg.openAPIPath, OpenAPIHandler())
	}
}
