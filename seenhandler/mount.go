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
// Router have this method. Any other router (gorilla/mux's Handle returns a
// *Route) registers [Routes] itself.
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Route is one of the handler's endpoints: a path and what serves it. To
// serve an endpoint at a path of your own, register the Handler of the
// Route whose Pattern is the standard one (e.g. [PathWawpStatus]'s for the
// status endpoint).
type Route struct {
	// Pattern is the path, without a method: the handler answers other
	// methods with a JSON 405 itself.
	Pattern string
	// Handler serves it.
	Handler http.Handler
}

// Routes returns h's endpoints, for any router to register: the seen
// endpoint at [PathWasend], PathWawp and PathWAHA, the status endpoint
// at [PathWawpStatus] and PathWAHAStatus, the
// session list at PathWAHASessions, and the
// [OpenAPI] document at the path given to [WithOpenAPI], if any. The
// patterns are ServeMux patterns; PathWAHAStatus's {session} is read with
// r.PathValue unless [WithPathSession] says how (gorilla/mux and chi read
// theirs differently). With gorilla/mux:
//
//	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth),
//		seenhandler.WithPathSession(func(r *http.Request) string { return mux.Vars(r)["session"] }))
//	…
//	for _, rt := range seenhandler.Routes(h) {
//		router.Handle(rt.Pattern, rt.Handler)
//	}
func Routes(h *Handler) []Route {
	status := h.endpoint(EndpointStatus, h.serveStatus)
	routes := []Route{{PathWasend, h}, {PathWawp, h}, {PathWAHA, h},
		{PathWawpStatus, status}, {PathWAHAStatus, status}, {PathWAHASessions, h.endpoint(EndpointSessions, h.serveSessions)}}
	if h.cfg.openAPIPath != "" {
		routes = append(routes, Route{h.cfg.openAPIPath, openAPIHandler()})
	}
	return routes
}

// Mount registers h's [Routes] on r. To serve under a prefix, mount on a
// router behind http.StripPrefix.
func Mount(r Router, h *Handler) {
	for _, rt := range Routes(h) {
		r.Handle(rt.Pattern, rt.Handler)
	}
}
